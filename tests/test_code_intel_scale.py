"""Code intelligence that scales (issue 16): complete answers for the editor, tools that say
when they show fewer, cancellation that frees the jedi worker, and the symbol index behind
workspace/symbol."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path

from lsp_agent.code_intel import jedi_intel
from lsp_agent.code_intel.index_worker import file_symbols
from lsp_agent.code_intel.jedi_intel import JediIntel, find_symbol_column
from lsp_agent.code_intel.jedi_worker import close_channel, open_channel
from lsp_agent.code_intel.symbol_index import SymbolIndex
from lsp_agent.server.language_features import register_language_features
from lsp_agent.tools.base import ToolContext, ToolError
from lsp_agent.tools.code_intel import (
    Hover,
    References,
    SymbolAtLine,
    WorkspaceSymbols,
    WorkspaceSymbolsInput,
)
from lsp_agent.workspace.documents import DiskDocuments

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "multimodule"
CALLS_PER_FILE = 100
CALLER_FILES = 3


@pytest.fixture(scope="module")
def jedi_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jedi-cache")


@pytest.fixture(scope="module", autouse=True)
def shared_worker(jedi_cache: Path):
    channel = open_channel(jedi_cache)
    yield channel
    close_channel(channel)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def crowded(tmp_path: Path) -> Path:
    """A package whose one function is called 300 times from three modules."""
    root = tmp_path / "crowded"
    package = root / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("def target(value):\n    return value\n")
    for n in range(CALLER_FILES):
        calls = "".join(f"    target({i})\n" for i in range(CALLS_PER_FILE))
        (package / f"caller_{n}.py").write_text(
            f"from pkg.core import target\n\n\ndef run_{n}():\n{calls}")
    return root


@pytest.fixture
def make_intel(jedi_cache: Path):
    created: list[JediIntel] = []

    def make(root: Path, **kwargs) -> JediIntel:
        kwargs.setdefault("cache_dir", jedi_cache)
        intel = JediIntel(root, DiskDocuments(), **kwargs)
        created.append(intel)
        return intel

    yield make
    for intel in created:
        intel.close()
        if intel.index is not None:
            intel.index.close()


class Unused:
    async def propose(self, tool_use_id: str, changes: list) -> str:
        raise AssertionError("code-intel tools propose nothing")

    async def diagnostics(self, path: Path) -> list[dict]:
        return []


def tool_context(root: Path, tmp_path: Path, intel: JediIntel) -> ToolContext:
    return ToolContext(workspace=root, documents=DiskDocuments(), proposals=Unused(),
                       diagnostics=Unused(), results_dir=tmp_path / "r", code_intel=intel)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def eventually(check, within: float = 60.0) -> None:
    """Poll ``check`` (a generous bound only against hangs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- completeness


async def test_references_beyond_two_hundred_are_complete(make_intel, crowded):
    intel = make_intel(crowded)
    core = crowded / "pkg" / "core.py"

    result = await intel.references(core, 0, len("def "))

    calls = [loc for loc in result.items if loc.line_text and "target(" in loc.line_text
             and "def" not in loc.line_text]
    assert len(calls) == CALLER_FILES * CALLS_PER_FILE
    assert not result.truncated


async def test_lsp_references_answer_every_location(make_intel, crowded):
    intel = make_intel(crowded)
    server = LanguageServer("test-scale", "0")
    register_language_features(server, lambda: intel)
    core = crowded / "pkg" / "core.py"
    params = types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=from_fs_path(str(core)) or ""),
        position=types.Position(line=0, character=len("def ")),
        context=types.ReferenceContext(include_declaration=True))

    locations = await server.protocol.fm.features[types.TEXT_DOCUMENT_REFERENCES](params)

    # 300 calls, 3 imports, the definition
    assert len(locations) == CALLER_FILES * CALLS_PER_FILE + CALLER_FILES + 1


async def test_references_tool_says_how_many_it_does_not_show(make_intel, crowded, tmp_path):
    ctx = tool_context(crowded, tmp_path, make_intel(crowded))

    out = await References().call(SymbolAtLine(path="pkg/core.py", symbol="target", line=1), ctx)

    total = CALLER_FILES * CALLS_PER_FILE + CALLER_FILES + 1
    assert out.startswith(f"{total} references to `target` in 4 files:")
    assert out.endswith(f"(showing 200 of {total}; narrow with Grep in one folder, or ask "
                        "about a more specific name)")
    shown = [row for row in out.splitlines() if row.startswith("  ")]
    assert len(shown) == 200


async def test_workspace_symbols_tool_counts_what_it_does_not_show(make_intel, crowded,
                                                                   tmp_path):
    ctx = tool_context(crowded, tmp_path, make_intel(crowded))

    out = await WorkspaceSymbols().call(WorkspaceSymbolsInput(query="run_", limit=2), ctx)

    lines = out.splitlines()
    assert lines[0] == "3 symbols matching `run_`:"
    assert len(lines) == 4
    assert lines[-1] == ("(showing 2 of 3; narrow with a longer prefix or a dotted name such "
                         "as `Cart.add`)")


# --------------------------------------------------------------------------- cancellation


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


@pytest.fixture
def stuck_intel(make_intel, project, tmp_path):
    script = tmp_path / "stuck_worker.py"
    script.write_text(STUCK_WORKER)
    (project / "shop" / "stuck.py").write_text("value = 1\n")
    intel = make_intel(project, worker_command=[sys.executable, str(script)], timeout=3600.0)
    assert intel._channel is not None
    intel._channel.cancel_grace = 0.2
    return intel


def pricing_position(project: Path) -> tuple[Path, int, int]:
    pricing = project / "shop" / "pricing.py"
    text = pricing.read_text()
    line = next(n for n, row in enumerate(text.splitlines()) if "discounted = apply_discount("
                in row)
    column = find_symbol_column(text, line, "apply_discount")
    assert column is not None
    return pricing, line, column


async def test_cancelled_query_frees_its_worker_and_others_are_not_starved(stuck_intel,
                                                                           project):
    intel = stuck_intel
    pricing, line, column = pricing_position(project)
    assert (await intel.hover(pricing, line, column)).items  # one worker is up and warm
    stuck_pid = intel._channel.pids()[0]

    stuck = asyncio.create_task(intel.hover(project / "shop" / "stuck.py", 0, 0))
    await eventually(lambda: intel._channel._free == [w for w in intel._channel.workers
                                                      if w.pid != stuck_pid])
    # While one worker hangs (its limit is an hour), the other answers.
    other = await intel.hover(pricing, line, column)
    assert other.items[0].name == "apply_discount"

    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck

    await eventually(lambda: process_gone(stuck_pid))  # killed after the grace, not abandoned
    await eventually(lambda: len(intel._channel._free) == len(intel._channel.workers))
    answers = await asyncio.gather(*(intel.hover(pricing, line, column) for _ in range(3)))
    assert all(a.items[0].name == "apply_discount" for a in answers)


async def test_a_cancelled_query_yields_its_worker_as_soon_as_another_query_needs_it(
        stuck_intel, project):
    intel = stuck_intel
    intel._channel.cancel_grace = 3600.0  # only the need for its worker stops it
    pricing, line, column = pricing_position(project)
    assert (await intel.hover(pricing, line, column)).items
    stuck_pid = intel._channel.pids()[0]
    stuck = asyncio.create_task(intel.hover(project / "shop" / "stuck.py", 0, 0))
    await eventually(lambda: len(intel._channel._free) < len(intel._channel.workers))
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert not process_gone(stuck_pid)  # nobody needs its worker yet: it may still finish

    # Two queries at once need both workers: the cancelled query's is taken back for one.
    answers = await asyncio.gather(*(intel.hover(pricing, line, column) for _ in range(2)))

    assert all(a.items[0].name == "apply_discount" for a in answers)
    assert process_gone(stuck_pid)


class Collected:
    """A pygls writer that keeps what the server sends."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def write(self, data: bytes) -> None:
        self.messages.append(json.loads(data.decode()))

    def close(self) -> None:
        pass


async def test_cancel_request_answers_request_cancelled_and_frees_the_worker(stuck_intel,
                                                                             project):
    intel = stuck_intel
    pricing, line, column = pricing_position(project)
    assert (await intel.hover(pricing, line, column)).items
    server = LanguageServer("test-scale", "0")
    register_language_features(server, lambda: intel)
    sent = Collected()
    server.protocol.set_writer(sent, include_headers=False)
    stuck_uri = from_fs_path(str(project / "shop" / "stuck.py"))

    def receive(message: dict) -> None:
        server.protocol.handle_message(server.protocol.structure_message(
            {"jsonrpc": "2.0", **message}))

    receive({"id": 7, "method": "textDocument/hover",
             "params": {"textDocument": {"uri": stuck_uri},
                        "position": {"line": 0, "character": 0}}})
    await eventually(lambda: len(intel._channel._free) < len(intel._channel.workers))
    busy = [w.pid for w in intel._channel.workers if w not in intel._channel._free]
    receive({"method": "$/cancelRequest", "params": {"id": 7}})

    await eventually(lambda: any(m.get("id") == 7 for m in sent.messages))
    answer = next(m for m in sent.messages if m.get("id") == 7)
    assert answer["error"]["code"] == -32800  # RequestCancelled
    await eventually(lambda: busy[0] is not None and process_gone(busy[0]))
    await eventually(lambda: len(intel._channel._free) == len(intel._channel.workers))


async def test_tool_limit_cancels_the_query_and_says_so(stuck_intel, project, tmp_path):
    intel = stuck_intel
    intel.tool_timeout = 0.5
    ctx = tool_context(project, tmp_path, intel)

    with pytest.raises(ToolError, match=r"did not answer within 0.5s \(the tools' time limit"):
        await Hover().call(SymbolAtLine(path="shop/stuck.py", symbol="value", line=1), ctx)

    await eventually(lambda: len(intel._channel._free) == len(intel._channel.workers))


# --------------------------------------------------------------------------- the index


def test_file_symbols_cover_definitions_not_locals_or_imports():
    text = ("import os\nfrom json import loads\n\nLIMIT, (low, high) = 3, (0, 1)\n\n"
            "class Cart:\n    size: int = 0\n\n    @property\n    def empty(self):\n"
            "        count = 0\n        return True\n\n    async def load(self):\n"
            "        def inner():\n            pass\n\n"
            "if os.name:\n    FLAG = 1\n\n# \u00e9t\u00e9\nclass \u00c9t\u00e9: pass\n")

    symbols = {(s[4], s[1]): (s[2], s[3]) for s in file_symbols(text, "pkg.mod") or []}

    assert set(symbols) == {
        ("pkg.mod", "module"), ("pkg.mod.LIMIT", "statement"), ("pkg.mod.low", "statement"),
        ("pkg.mod.high", "statement"), ("pkg.mod.Cart", "class"),
        ("pkg.mod.Cart.size", "statement"), ("pkg.mod.Cart.empty", "property"),
        ("pkg.mod.Cart.load", "function"), ("pkg.mod.Cart.load.inner", "function"),
        ("pkg.mod.FLAG", "statement"), ("pkg.mod.\u00c9t\u00e9", "class")}
    assert symbols[("pkg.mod.Cart.load", "function")] == (13, len("    async def "))
    assert symbols[("pkg.mod.\u00c9t\u00e9", "class")] == (21, len("class "))  # code points
    assert file_symbols("def broken(:\n", "m") is None


async def test_the_index_starts_once_with_the_open_buffers(project):
    index = SymbolIndex(project)
    pricing = project / "shop" / "pricing.py"
    index.open_buffers = lambda: [(pricing, "class UnsavedPricing:\n    pass\n")]
    try:
        build = index.start()
        assert index.start() is build  # a second use does not build again
        await asyncio.wrap_future(build)
        assert index.ready, index.failed

        found = await index.search("UnsavedPri")  # the buffer, not the disk
        assert [(loc.name, loc.path) for loc in found.items] == [("UnsavedPricing", pricing)]
        assert (await index.search("PriceCalculator")).items == []
    finally:
        index.close()


async def test_a_search_waits_no_longer_than_it_may_for_the_build(project, monkeypatch):
    index = SymbolIndex(project)
    hold = threading.Event()
    build = index._build
    monkeypatch.setattr(index, "_build", lambda: (hold.wait(60), build()))  # a slow build
    try:
        assert await index.wait_built(0.05) is False  # gave up waiting; the build goes on
        hold.set()
        assert await index.wait_built(60) is True
    finally:
        hold.set()
        index.close()


async def wait_ready(index: SymbolIndex) -> None:
    await asyncio.wrap_future(index.start())
    assert index.ready, index.failed


async def test_index_answers_workspace_symbols_and_follows_changes(make_intel, project):
    before = await make_intel(project).workspace_symbols("PriceCalc")  # jedi's answer
    index = SymbolIndex(project)
    intel = make_intel(project, index=index)
    await wait_ready(index)

    built = await intel.workspace_symbols("PriceCalc")
    assert [(loc.name, loc.kind, loc.path) for loc in built.items] == \
        [(loc.name, loc.kind, loc.path) for loc in before.items] == \
        [("PriceCalculator", "class", project / "shop" / "pricing.py")]
    dotted = await intel.workspace_symbols("Cart.add")
    assert [(loc.full_name, loc.line) for loc in dotted.items] == \
        [("shop.models.Cart.add", 58)]

    pricing = project / "shop" / "pricing.py"
    index.changed(pricing, pricing.read_text() + "\n\nclass PriceCache:\n    pass\n")
    after_edit = await intel.workspace_symbols("PriceCa")
    assert {loc.name for loc in after_edit.items} == {"PriceCalculator", "PriceCache"}

    index.changed(pricing, "def broken(:\n")  # half-typed: the last symbols stay
    assert len((await intel.workspace_symbols("PriceCa")).items) == 2

    pricing.unlink()
    index.changed(pricing, None)  # deleted on disk (a watcher event)
    assert (await intel.workspace_symbols("PriceCa")).items == []


async def test_lsp_workspace_symbol_is_answered_by_the_started_index(make_intel, project,
                                                                    monkeypatch):
    monkeypatch.setattr(jedi_intel, "BUILD_WAIT", 120.0)  # a generous bound, only against hangs
    index = SymbolIndex(project)
    intel = make_intel(project, index=index)
    server = LanguageServer("test-scale", "0")
    register_language_features(server, lambda: intel, index_for=lambda: index)
    features = server.protocol.fm.features
    assert not index.started  # nothing has used it yet

    # The first search starts the build and waits for it, then the index answers.
    first = await features[types.WORKSPACE_SYMBOL](types.WorkspaceSymbolParams(query="PriceCalc"))
    assert [(s.name, s.kind) for s in first] == [("PriceCalculator", types.SymbolKind.Class)]
    assert index.started and index.ready, index.failed
    assert index.ready, index.failed
    (project / "shop" / "loyalty.py").write_text("class LoyaltyCard:\n    pass\n")
    features[types.WORKSPACE_DID_CHANGE_WATCHED_FILES](types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=from_fs_path(str(project / "shop" / "loyalty.py")) or "",
                                 type=types.FileChangeType.Created)]))

    found = await features[types.WORKSPACE_SYMBOL](types.WorkspaceSymbolParams(query="Loyal"))

    assert [(s.name, s.kind, s.container_name) for s in found] == [
        ("loyalty", types.SymbolKind.Module, "shop"),
        ("LoyaltyCard", types.SymbolKind.Class, "shop.loyalty")]
    stats = await index.stats()
    assert stats["files"] >= 10 and stats["symbols"] > stats["files"]
