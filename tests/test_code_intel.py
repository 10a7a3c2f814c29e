"""JediIntel and the code-intelligence tools, against a copy of fixtures/multimodule."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from lsp_agent.code_intel.jedi_intel import (
    JediIntel,
    QueryResult,
    SymbolLocation,
    default_cache_dir,
    find_symbol_column,
)
from lsp_agent.code_intel.jedi_worker import close_channel, open_channel
from lsp_agent.server.language_features import register_language_features
from lsp_agent.tools.base import ToolContext, ToolError, ToolPool
from lsp_agent.tools.code_intel import (
    CODE_INTEL_TOOLS,
    Definition,
    DocumentSymbols,
    DocumentSymbolsInput,
    Hover,
    References,
    SymbolAtLine,
    WorkspaceSymbols,
    WorkspaceSymbolsInput,
)
from lsp_agent.workspace.documents import DiskDocuments, DocumentSnapshot

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "multimodule"


# --------------------------------------------------------------------------- fixtures


class RecordingProposals:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []

    async def propose(self, tool_use_id: str, changes: list) -> str:
        self.calls.append((tool_use_id, changes))
        return "recorded"


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


class EditorBuffers:
    """A DocumentSource with some files open in the editor with unsaved text."""

    def __init__(self, buffers: dict[Path, str]):
        self.buffers = buffers

    def snapshot(self, path: Path) -> DocumentSnapshot:
        if path in self.buffers:
            return DocumentSnapshot(path=path, text=self.buffers[path], version=7)
        return DiskDocuments().snapshot(path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def jedi_cache(tmp_path_factory) -> Path:
    """One jedi cache for the module: each JediIntel runs a fresh worker process, and parsed
    stubs cached on disk spare each of them parsing the standard library again."""
    return tmp_path_factory.mktemp("jedi-cache")


@pytest.fixture(scope="module", autouse=True)
def shared_worker(jedi_cache: Path):
    """Keep the module's jedi worker between tests, as a server keeps it between queries (the
    last JediIntel to close would otherwise stop it and the next test would start cold)."""
    channel = open_channel(jedi_cache)
    yield channel
    close_channel(channel)


@pytest.fixture
def make_intel(project: Path, jedi_cache: Path):
    created: list[JediIntel] = []

    def make(documents=None, **kwargs) -> JediIntel:
        kwargs.setdefault("cache_dir", jedi_cache)
        intel = JediIntel(project, documents or DiskDocuments(), **kwargs)
        created.append(intel)
        return intel

    yield make
    for intel in created:
        intel.close()


@pytest.fixture
def intel(make_intel) -> JediIntel:
    return make_intel()


def make_ctx(project: Path, tmp_path: Path, intel: JediIntel | None) -> ToolContext:
    return ToolContext(
        workspace=project,
        documents=DiskDocuments(),
        proposals=RecordingProposals(),
        diagnostics=NoDiagnostics(),
        results_dir=tmp_path / "results",
        code_intel=intel,
    )


@pytest.fixture
def ctx(project: Path, tmp_path: Path, intel: JediIntel) -> ToolContext:
    return make_ctx(project, tmp_path, intel)


def position(path: Path, line_contains: str, symbol: str) -> tuple[int, int]:
    """0-based (line, column) of ``symbol`` on the first line containing ``line_contains``."""
    text = path.read_text()
    for number, line in enumerate(text.splitlines()):
        if line_contains in line:
            column = find_symbol_column(text, number, symbol)
            assert column is not None, f"{symbol!r} not on line {line!r}"
            return number, column
    raise AssertionError(f"no line containing {line_contains!r} in {path}")


def line_of(path: Path, line_contains: str) -> int:
    """0-based number of the first line containing ``line_contains``."""
    for number, line in enumerate(path.read_text().splitlines()):
        if line_contains in line:
            return number
    raise AssertionError(f"no line containing {line_contains!r} in {path}")


def only(result: QueryResult[SymbolLocation]) -> SymbolLocation:
    assert not result.timed_out
    assert len(result.items) == 1, result.items
    return result.items[0]


# --------------------------------------------------------------------------- definition


async def test_definition_from_usage_in_pricing_reaches_class_in_models(intel, project):
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "def shipping_cost(cart: Cart)", "Cart")

    loc = only(await intel.definition(pricing, line, column))

    models = project / "shop" / "models.py"
    assert loc.path == models
    assert loc.line == line_of(models, "class Cart:")
    assert loc.column == len("class ")
    assert loc.end_column == loc.column + len("Cart")
    assert loc.kind == "class"
    assert loc.line_text == "class Cart:"


async def test_definition_through_import_alias(intel, project):
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "FREE_SHIPPING_FROM = m.Money.of(50)", "m.Money")

    loc = only(await intel.definition(pricing, line, column))

    money = project / "shop" / "util" / "money.py"
    assert loc.path == money
    assert loc.line == line_of(money, "class Money:")
    assert loc.full_name == "shop.util.money.Money"


async def test_definition_through_package_reexport(intel, project):
    test_file = project / "tests" / "test_pricing.py"
    line, column = position(test_file, "total = PriceCalculator().total(", "PriceCalculator")

    loc = only(await intel.definition(test_file, line, column))

    pricing = project / "shop" / "pricing.py"
    assert loc.path == pricing
    assert loc.line == line_of(pricing, "class PriceCalculator:")


async def test_definition_of_method_called_on_attribute(intel, project):
    orders = project / "shop" / "orders.py"
    line, column = position(orders, "inventory.reserve(cart)", "inventory.reserve")

    loc = only(await intel.definition(orders, line, column))

    inventory = project / "shop" / "inventory.py"
    assert (loc.path, loc.line) == (inventory, line_of(inventory, "def reserve("))


# --------------------------------------------------------------------------- references


async def test_references_of_function_used_across_modules(intel, project):
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")

    result = await intel.references(money, line, column)

    assert not result.truncated and not result.timed_out
    files = {loc.path.relative_to(project).as_posix() for loc in result.items}
    assert {
        "shop/util/money.py",
        "shop/pricing.py",
        "shop/inventory.py",
        "shop/orders.py",
        "tests/test_pricing.py",
        "tests/test_inventory.py",
    } <= files
    assert all(loc.name == "round_money" for loc in result.items)
    # both uses on one line of orders.py are reported
    orders_refund = line_of(project / "shop" / "orders.py", "order.total.amount * round_money")
    orders_hits = [loc for loc in result.items if loc.path.name == "orders.py"]
    assert sum(loc.line == orders_refund for loc in orders_hits) == 2
    assert (money, line) in {(loc.path, loc.line) for loc in result.items}


async def test_references_without_declaration_drop_only_the_definition(intel, project):
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")

    everything = await intel.references(money, line, column)
    usages = await intel.references(money, line, column, include_declaration=False)

    assert (money, line) not in {(loc.path, loc.line) for loc in usages.items}
    assert len(usages.items) == len(everything.items) - 1


async def test_references_are_capped_and_flagged(make_intel, project):
    intel = make_intel(max_results=1)
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")

    result = await intel.references(money, line, column)

    assert len(result.items) == 1
    assert result.truncated


# --------------------------------------------------------------------------- hover


async def test_hover_has_signature_and_docstring(intel, project):
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "discounted = apply_discount(", "apply_discount")

    result = await intel.hover(pricing, line, column)

    info = result.items[0]
    assert info.signature == "def apply_discount(price: m.Money, rate: float) -> m.Money"
    assert info.docstring.startswith("Reduce ``price`` by ``rate``")
    assert info.markdown.startswith("```python\ndef apply_discount(")
    assert "Reduce ``price``" in info.markdown
    assert (info.span.line, info.span.column) == (line, column)
    assert info.span.end_column == column + len("apply_discount")


async def test_hover_on_variable_shows_inferred_type(intel, project):
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "gross = cart.gross_total()", "gross")

    info = (await intel.hover(pricing, line, column)).items[0]

    assert info.signature == "gross: Money"


async def test_hover_on_property_shows_its_type(intel, project):
    orders = project / "shop" / "orders.py"
    line, column = position(orders, "if cart.is_empty:", "cart.is_empty")

    info = (await intel.hover(orders, line, column)).items[0]

    assert info.kind == "property"
    assert info.signature == "property is_empty: bool"


async def test_hover_on_blank_space_is_empty(intel, project):
    pricing = project / "shop" / "pricing.py"
    blank = line_of(pricing, "") + 1  # line 2 of the module is empty
    assert pricing.read_text().splitlines()[blank] == ""

    result = await intel.hover(pricing, blank, 0)

    assert result.items == [] and not result.timed_out


# --------------------------------------------------------------------------- symbols


async def test_document_symbols_nest_methods_in_classes(intel, project):
    models = project / "shop" / "models.py"

    result = await intel.document_symbols(models)

    top = {symbol.name: symbol for symbol in result.items if symbol.kind != "import"}
    assert list(top) == ["CustomerTier", "Product", "Customer", "CartLine", "Cart"]
    cart = top["Cart"]
    assert cart.kind == "class"
    assert cart.selection.line == line_of(models, "class Cart:")
    children = {child.name: child.kind for child in cart.children}
    assert children == {
        "customer": "attribute",
        "lines": "attribute",
        "add": "method",
        "remove": "method",
        "is_empty": "property",
        "item_count": "method",
        "gross_total": "method",
    }
    add = next(child for child in cart.children if child.name == "add")
    assert add.children == []  # locals and parameters stay out of the outline
    assert cart.range.line <= add.range.line and add.range.end_line <= cart.range.end_line


async def test_document_symbols_list_imports_and_classify_module_variables(intel, project):
    money = project / "shop" / "util" / "money.py"

    result = await intel.document_symbols(money)

    kinds = {symbol.name: symbol.kind for symbol in result.items}
    assert kinds["dataclass"] == "import" and kinds["Decimal"] == "import"
    assert kinds["CURRENCY_SYMBOLS"] == "constant"
    assert kinds["round_money"] == "function"


OUTLINE_WITH_INSTANCE_ATTRIBUTES = """\
import os
from json import loads as parse


class Account:
    kind = "plain"

    def __init__(self, owner):
        self.owner = owner
        self.kind = "shadowed"  # also a class attribute: listed once
        local = 1

    def close(self):
        from shutil import rmtree

        self.closed_at = os.times()
        self.owner = None  # already listed

    @classmethod
    def build(cls):
        cls.registry = {}
        return cls(parse("{}"))


def helper():
    value = 2
    return value
"""


async def test_document_symbols_include_instance_attributes_and_imports(intel, project):
    path = project / "shop" / "accounts.py"
    path.write_text(OUTLINE_WITH_INSTANCE_ATTRIBUTES)

    result = await intel.document_symbols(path)

    top = [(symbol.name, symbol.kind) for symbol in result.items]
    assert top == [("os", "import"), ("parse", "import"), ("Account", "class"),
                   ("helper", "function")]
    account = result.items[2]
    members = [(child.name, child.kind) for child in account.children]
    assert members == [("kind", "attribute"), ("__init__", "method"), ("owner", "attribute"),
                       ("close", "method"), ("closed_at", "attribute"), ("build", "method"),
                       ("registry", "attribute")]
    owner = account.children[2]
    assert owner.selection.line == 8 and owner.selection.column == len("        self.")
    init = account.children[1]
    assert init.children == []  # `local` and the parameters stay out
    close = account.children[3]
    assert [(child.name, child.kind) for child in close.children] == [("rmtree", "import")]
    assert result.items[3].children == []


async def test_document_symbols_are_complete_on_large_files(intel, project):
    path = project / "shop" / "generated_api.py"
    path.write_text("".join(f"def handler_{n}():\n    return {n}\n\n\n" for n in range(450)))

    result = await intel.document_symbols(path)

    assert len(result.items) == 450 and not result.truncated
    assert result.items[-1].name == "handler_449"


async def test_document_symbols_truncate_at_an_explicit_cap(make_intel, project):
    intel = make_intel(max_results=1)

    result = await intel.document_symbols(project / "shop" / "models.py")

    assert [symbol.name for symbol in result.items] == ["annotations"]
    assert result.truncated


async def test_workspace_symbols_prefix_search(intel, project):
    result = await intel.workspace_symbols("PriceCalc")

    assert [(loc.name, loc.kind) for loc in result.items] == [("PriceCalculator", "class")]
    assert result.items[0].path == project / "shop" / "pricing.py"


async def test_workspace_symbols_dotted_query_and_no_parameters(intel, project):
    dotted = await intel.workspace_symbols("Cart.add")
    amount = await intel.workspace_symbols("amount")

    assert [(loc.name, loc.path.name) for loc in dotted.items] == [("add", "models.py")]
    # `amount` is a dataclass field of Money and a parameter in several functions
    assert {(loc.name, loc.kind) for loc in amount.items} == {("amount", "statement")}


async def test_workspace_symbols_skip_local_variables(intel):
    result = await intel.workspace_symbols("cart")

    # tests define local variables named `cart`; only the classes are project symbols
    assert sorted((loc.name, loc.kind) for loc in result.items) == [
        ("Cart", "class"),
        ("CartLine", "class"),
    ]


async def test_workspace_symbols_stay_inside_the_workspace(intel, project):
    result = await intel.workspace_symbols("json")

    assert all(loc.path.is_relative_to(project) for loc in result.items)


async def test_workspace_symbols_limit_flags_truncation(intel):
    result = await intel.workspace_symbols("s", limit=2)

    assert len(result.items) == 2
    assert result.truncated


# --------------------------------------------------------------------------- editor buffers


async def test_unsaved_buffer_is_used_instead_of_disk(make_intel, project):
    pricing = project / "shop" / "pricing.py"
    on_disk = pricing.read_text()
    edited = on_disk + (
        "\n\ndef loyalty_points(cart: Cart) -> int:\n"
        '    """Points earned for a cart."""\n'
        "    return cart.item_count() * 10\n"
        "\n\nBONUS = loyalty_points\n"
    )
    intel = make_intel(documents=EditorBuffers({pricing: edited}))
    usage_line = len(edited.splitlines()) - 1

    loc = only(await intel.definition(pricing, usage_line, len("BONUS = ")))
    outline = await intel.document_symbols(pricing)

    assert "loyalty_points" not in pricing.read_text()
    assert loc.path == pricing
    assert loc.line == edited.splitlines().index("def loyalty_points(cart: Cart) -> int:")
    assert "loyalty_points" in {symbol.name for symbol in outline.items}


# --------------------------------------------------------------------------- timeouts


# A worker whose hover never returns for files named stuck.py: a jedi call that cannot end.
STUCK_WORKER = """
import time
from lsp_agent.code_intel import jedi_worker

real_queries = jedi_worker._queries


def hanging_on_stuck_py(engine):
    table = real_queries(engine)
    hover = table["hover"]

    def hover_or_hang(request):
        if request["path"].endswith("stuck.py"):
            time.sleep(3600)
        return hover(request)

    table["hover"] = hover_or_hang
    return table


jedi_worker._queries = hanging_on_stuck_py
jedi_worker.main()
"""


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_stuck_jedi_call_costs_only_its_own_timeout(make_intel, project, tmp_path):
    script = tmp_path / "stuck_worker.py"
    script.write_text(STUCK_WORKER)
    command = [sys.executable, str(script)]
    # Two clients of one worker pool (same cache and command), as the LSP features and the
    # agent's tools are: one with a short timeout that hangs, one with a generous one.
    hanging = make_intel(worker_command=command, timeout=1.0)
    patient = make_intel(worker_command=command, timeout=60.0)
    stuck = project / "shop" / "stuck.py"
    stuck.write_text("value = 1\n")
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "discounted = apply_discount(", "apply_discount")
    assert (await patient.hover(pricing, line, column)).items  # a worker is up
    first_pid = patient._channel.pids()[0]

    first = asyncio.create_task(hanging.hover(stuck, 0, 0))  # takes the warm worker
    await asyncio.sleep(0)
    second = asyncio.create_task(patient.hover(pricing, line, column))
    first, second = await asyncio.gather(first, second)

    assert first.timed_out and first.items == []
    assert not second.timed_out
    assert second.items[0].name == "apply_discount"  # answered by another worker
    assert first_pid not in patient._channel.pids()
    assert process_gone(first_pid), "the stuck worker must be killed, not abandoned"


async def test_huge_buffer_is_not_given_to_jedi_and_other_files_are_answered(
    make_intel, project
):
    huge = project / "shop" / "generated.py"
    huge.write_text("x = 1\n")
    fifty_mb = "value = 1\n" * 5_000_000
    intel = make_intel(documents=EditorBuffers({huge: fifty_mb}))
    pricing = project / "shop" / "pricing.py"
    line, column = position(pricing, "discounted = apply_discount(", "apply_discount")

    big, other = await asyncio.gather(intel.hover(huge, 0, 0),
                                      intel.hover(pricing, line, column))

    assert big.items == [] and not big.timed_out
    assert big.skipped and "too large" in big.skipped and "50,000,000" in big.skipped
    assert not other.timed_out and other.items[0].name == "apply_discount"


async def test_code_intel_tool_says_a_huge_file_was_skipped(make_intel, project, tmp_path):
    huge = project / "shop" / "generated.py"
    huge.write_text("value = 1\n")
    intel = make_intel(documents=EditorBuffers({huge: "value = 1\n" * 300_000}),
                       max_chars=1_000_000)
    ctx = make_ctx(project, tmp_path, intel)
    ctx.documents = intel.documents

    with pytest.raises(ToolError, match="too large for Python code intelligence"):
        await Hover().call(SymbolAtLine(path="shop/generated.py", symbol="value", line=1), ctx)


def test_cache_directory_comes_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LSP_AGENT_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("LSP_AGENT_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "lsp-agent" / "jedi"


async def test_intel_points_jedi_cache_at_configured_directory(make_intel, project, tmp_path):
    intel = make_intel(cache_dir=tmp_path / "own-cache")
    orders = project / "shop" / "orders.py"
    line, column = position(orders, "if cart.is_empty:", "cart.is_empty")
    assert (await intel.hover(orders, line, column)).items
    # the worker's jedi keeps its parsed modules there (and nowhere else we chose)
    assert any((tmp_path / "own-cache").iterdir())


# --------------------------------------------------------------------------- find_symbol_column


@pytest.mark.parametrize(
    ("line_text", "symbol", "expected"),
    [
        ("def shipping_cost(cart: Cart) -> m.Money:", "Cart", 24),
        ("def shipping_cost(cart: Cart) -> m.Money:", "cart", 18),  # case-sensitive
        ("carts = cart_lines + cart", "cart", 21),  # whole word only
        ("FREE = m.Money.of(50)", "m.Money", 9),  # dotted: column of the last part
        ("FREE = m . Money", "m.Money", 11),
        ("x = summary.Money", "Money", 12),  # an attribute alone
        ("x = am.Money", "m.Money", None),
        ("value = total", "tot", None),
        ("value = total", "total()", None),  # not an identifier
        ("value = total", "", None),
        ("naïve = 1", "naïve", 0),
    ],
)
def test_find_symbol_column(line_text, symbol, expected):
    assert find_symbol_column(line_text, 0, symbol) == expected


def test_find_symbol_column_out_of_range_lines():
    assert find_symbol_column("a = 1\n", 1, "a") is None
    assert find_symbol_column("a = 1\n", -1, "a") is None


# --------------------------------------------------------------------------- tools


async def test_definition_tool_reports_workspace_relative_location(ctx, project):
    pricing_line = line_of(project / "shop" / "pricing.py", "def shipping_cost(") + 1

    out = await Definition().call(
        SymbolAtLine(path="shop/pricing.py", symbol="Cart", line=pricing_line), ctx
    )

    cart_line = line_of(project / "shop" / "models.py", "class Cart:") + 1
    assert f"shop/models.py:{cart_line}" in out
    assert "class Cart:" in out
    assert str(project) not in out


async def test_definition_tool_searches_nearby_lines_and_says_so(ctx, project):
    real = line_of(project / "shop" / "pricing.py", "def shipping_cost(") + 1

    out = await Definition().call(
        SymbolAtLine(path="shop/pricing.py", symbol="shipping_cost", line=real - 2), ctx
    )

    assert out.startswith(f"Note: `shipping_cost` is not on line {real - 2}; used line {real}.")
    assert f"shop/pricing.py:{real}" in out


async def test_tool_lists_identifiers_when_symbol_is_absent(ctx, project):
    line = line_of(project / "shop" / "pricing.py", "FREE_SHIPPING_FROM = ") + 1

    with pytest.raises(ToolError) as err:
        await Hover().call(SymbolAtLine(path="shop/pricing.py", symbol="Nope", line=line), ctx)

    message = str(err.value)
    assert f"`Nope` does not appear as a whole word on line {line}" in message
    assert "FREE_SHIPPING_FROM, m, Money, of" in message


async def test_tool_rejects_line_past_end_of_file(ctx):
    with pytest.raises(ToolError, match=r"past the end of shop/pricing.py \(\d+ lines\)"):
        await Hover().call(SymbolAtLine(path="shop/pricing.py", symbol="m", line=9999), ctx)


async def test_references_tool_groups_by_file(ctx, project):
    line = line_of(project / "shop" / "util" / "money.py", "def round_money(") + 1

    out = await References().call(
        SymbolAtLine(path="shop/util/money.py", symbol="round_money", line=line), ctx
    )

    header = out.splitlines()[0]
    assert header.startswith("14 references to `round_money` in 6 files")
    assert "\nshop/inventory.py\n" in out
    assert f"\n  {line}: def round_money(amount: float | Decimal) -> Decimal:" in out
    assert "truncated" not in out


async def test_references_tool_notes_a_provider_cap(make_intel, project, tmp_path):
    ctx = make_ctx(project, tmp_path, make_intel(max_results=2))
    line = line_of(project / "shop" / "util" / "money.py", "def round_money(") + 1

    out = await References().call(
        SymbolAtLine(path="shop/util/money.py", symbol="round_money", line=line), ctx
    )

    assert out.startswith("2+ references")
    assert out.endswith("(showing 2 of 2+; narrow with Grep in one folder, or ask about a more "
                        "specific name)")


async def test_hover_tool_output(ctx, project):
    line = line_of(project / "shop" / "models.py", "self.lines.append(CartLine(") + 1

    out = await Hover().call(SymbolAtLine(path="shop/models.py", symbol="CartLine", line=line), ctx)

    assert out.startswith("`CartLine` (class):\n```python\nclass CartLine(product: Product")


async def test_document_symbols_tool_outline(ctx, project):
    out = await DocumentSymbols().call(DocumentSymbolsInput(path="shop/models.py"), ctx)

    lines = out.splitlines()
    assert lines[0].startswith("shop/models.py: ")
    add_line = line_of(project / "shop" / "models.py", "def add(") + 1
    cart_line = line_of(project / "shop" / "models.py", "class Cart:") + 1
    assert f"class Cart (line {cart_line})" in lines
    assert f"  method add (line {add_line})" in lines


async def test_workspace_symbols_tool_output(ctx):
    out = await WorkspaceSymbols().call(WorkspaceSymbolsInput(query="round_"), ctx)

    assert out.splitlines() == [
        "1 symbols matching `round_`:",
        "function round_money  shop/util/money.py:15  (shop.util.money.round_money)",
    ]


async def test_tools_state_timeouts(make_intel, project, tmp_path):
    intel = make_intel(timeout=5.0)

    async def timed_out(*args, **kwargs):
        return QueryResult(timed_out=True)

    intel.references = timed_out  # type: ignore[method-assign]
    ctx = make_ctx(project, tmp_path, intel)

    with pytest.raises(ToolError, match="timed out after 5s"):
        await References().call(
            SymbolAtLine(path="shop/pricing.py", symbol="apply_discount", line=28), ctx
        )


async def test_non_python_file_gets_clear_error(ctx, project):
    (project / "README.md").write_text("# Shop\n\nSee `Cart`.\n")

    with pytest.raises(ToolError, match=r"for \.md files is not available.*use Grep"):
        await Definition().call(SymbolAtLine(path="README.md", symbol="Cart", line=3), ctx)


async def test_tools_without_code_intel_suggest_grep(project, tmp_path):
    ctx = make_ctx(project, tmp_path, None)

    with pytest.raises(ToolError, match="not available in this session; use Grep"):
        await WorkspaceSymbols().call(WorkspaceSymbolsInput(query="Cart"), ctx)


async def test_missing_file_is_a_tool_error(ctx):
    with pytest.raises(ToolError, match=r"File not found: shop/nothing\.py"):
        await DocumentSymbols().call(DocumentSymbolsInput(path="shop/nothing.py"), ctx)


def test_tool_definitions_are_read_only_with_described_inputs():
    pool = ToolPool([tool() for tool in CODE_INTEL_TOOLS])

    assert pool.names() == [
        "Definition",
        "DocumentSymbols",
        "Hover",
        "References",
        "WorkspaceSymbols",
    ]
    for tool in pool:
        assert tool.read_only
        schema = tool.api_schema()["input_schema"]
        assert all(prop.get("description") for prop in schema["properties"].values())
    definition_schema = pool.get("Definition").api_schema()["input_schema"]
    assert definition_schema["required"] == ["path", "symbol", "line"]


# --------------------------------------------------------------------------- LSP handlers


def _registered_handlers(intel_for):
    server = LanguageServer("test-code-intel", "0")
    register_language_features(server, intel_for)
    return server.protocol.fm.features


async def test_lsp_handlers_answer_nothing_when_features_are_off(project):
    handlers = _registered_handlers(lambda: None)
    document = types.TextDocumentIdentifier(uri=from_fs_path(str(project / "shop" / "orders.py")))

    assert {
        types.TEXT_DOCUMENT_DEFINITION,
        types.TEXT_DOCUMENT_REFERENCES,
        types.TEXT_DOCUMENT_HOVER,
        types.TEXT_DOCUMENT_DOCUMENT_SYMBOL,
        types.WORKSPACE_SYMBOL,
    } <= set(handlers)
    hover = handlers[types.TEXT_DOCUMENT_HOVER]
    params = types.HoverParams(text_document=document, position=types.Position(line=0, character=0))
    assert await hover(params) is None
    symbols = handlers[types.WORKSPACE_SYMBOL]
    assert await symbols(types.WorkspaceSymbolParams(query="Cart")) is None


async def test_lsp_definition_handler_returns_locations(intel, project):
    handlers = _registered_handlers(lambda: intel)
    orders = project / "shop" / "orders.py"
    line, column = position(orders, "from shop import Cart, PriceCalculator", "PriceCalculator")
    params = types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=from_fs_path(str(orders))),
        position=types.Position(line=line, character=column),
    )

    locations = await handlers[types.TEXT_DOCUMENT_DEFINITION](params)

    pricing = project / "shop" / "pricing.py"
    assert [loc.uri for loc in locations] == [from_fs_path(str(pricing))]
    assert locations[0].range.start.line == line_of(pricing, "class PriceCalculator:")


async def test_lsp_handler_reports_timeout_as_request_failure(intel, project):
    async def timed_out(*args, **kwargs):
        return QueryResult(timed_out=True)

    intel.hover = timed_out  # type: ignore[method-assign]
    handlers = _registered_handlers(lambda: intel)
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(
            uri=from_fs_path(str(project / "shop" / "orders.py"))
        ),
        position=types.Position(line=0, character=0),
    )

    with pytest.raises(JsonRpcException) as err:
        await handlers[types.TEXT_DOCUMENT_HOVER](params)
    assert err.value.code == types.LSPErrorCodes.RequestFailed
