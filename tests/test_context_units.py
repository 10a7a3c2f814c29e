"""The pure parts of context engineering: estimates, prices, compaction steps, memory files,
prompt layers, the deferred tool pool and cache breakpoints. Table-driven where it pays."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.context import compaction as cp
from lsp_agent.context.conversation import Conversation
from lsp_agent.context.cost import CostLedger, cache_savings, price_for, usd
from lsp_agent.context.layers import MEMORY_HEADER, system_layers
from lsp_agent.context.memory import MemoryLoader
from lsp_agent.context.tokens import Calibration, estimate_request, estimate_value
from lsp_agent.scripted.usage import estimate_request_tokens
from lsp_agent.tools.pool import DEFERRED_TOOLS, default_pool, session_pool
from lsp_agent.tools.tool_search import SessionTools
from lsp_agent.types.events import Usage


def user(*blocks):
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks):
    return {"role": "assistant", "content": list(blocks)}


def text(t):
    return {"type": "text", "text": t}


def use(i):
    return {"type": "tool_use", "id": f"t{i}", "name": "Read", "input": {"path": f"f{i}.py"}}


def result(i, body="x" * 400):
    return {"type": "tool_result", "tool_use_id": f"t{i}", "content": body}


# -- tokens ------------------------------------------------------------------------------------

def test_local_estimate_matches_the_scripted_servers_count():
    system = [{"type": "text", "text": "rules " * 50, "cache_control": {"type": "ephemeral"}}]
    tools = default_pool().api_schemas()
    messages = [user(text("hi")), assistant(text("hello"), use(1)), user(result(1))]
    body = {"system": system, "tools": tools, "messages": messages}
    assert estimate_request(system, tools, messages) == estimate_request_tokens(body)


def test_the_estimate_follows_a_tool_list_that_changes():
    """The fixed part (tools, system) is counted once per object: a list that gains a tool
    (deferred tools loaded) or a replaced system block is counted anew, never stale."""
    from lsp_agent.context.manager import ContextManager, Window

    tools = list(default_pool().api_schemas())
    system = [text("rules " * 50)]
    conversation = Conversation()
    conversation.messages[:] = [user(text("hi"))]
    window = Window(conversation, "m", lambda: system, lambda: tools)
    manager = ContextManager()

    def expected() -> int:
        return estimate_request(system, tools, conversation.messages)

    assert manager._raw_estimate(window) == expected()
    tools.append({"name": "Extra", "description": "d " * 300, "input_schema": {}})
    assert manager._raw_estimate(window) == expected()
    system[0] = text("other rules " * 80)
    assert manager._raw_estimate(window) == expected()
    del tools[:3]
    assert manager._raw_estimate(window) == expected()


def test_cache_markers_do_not_count():
    block = text("same words")
    assert estimate_value(block) == estimate_value({**block, "cache_control": {"type": "x"}})


@pytest.mark.parametrize(("reported", "estimated", "ratio"), [
    (1200, 1000, 1.2), (100_000, 1000, 2.0), (10, 1000, 0.5), (0, 1000, 1.0)])
def test_calibration_is_clamped(reported, estimated, ratio):
    calibration = Calibration()
    calibration.observe(reported, estimated)
    assert calibration.ratio == pytest.approx(ratio)


# -- cost --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "expected_input"), [
    ("claude-sonnet-4-5", 3.0), ("claude-sonnet-4-5-20250929", 3.0), ("claude-opus-4-5", 5.0),
    ("claude-opus-4-1", 15.0), ("claude-haiku-4-5", 1.0), ("test-model", None)])
def test_price_table_matches_by_longest_prefix(model, expected_input):
    price = price_for(model)
    assert (price.input if price else None) == expected_input


def test_cost_and_cache_savings():
    price = price_for("claude-sonnet-4-5")
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000,
                  cache_read_input_tokens=2_000_000, cache_creation_input_tokens=400_000)
    # 3.00 input + 1.50 output + 0.60 reads (0.30/M) + 1.50 writes (3.75/M)
    assert usd(usage, price) == pytest.approx(6.6)
    # reads save 2.70/M * 2M = 5.40; writes cost 0.75/M * 0.4M = 0.30 extra
    assert cache_savings(usage, price) == pytest.approx(5.1)


def test_ledger_keeps_models_apart_and_marks_unknown_ones():
    ledger = CostLedger()
    ledger.add("claude-haiku-4-5", Usage(input_tokens=1_000_000))
    ledger.add("claude-haiku-4-5", Usage(output_tokens=1_000_000))
    ledger.add("local-model", Usage(input_tokens=5))
    summary = ledger.summary()
    rows = {r.model: r for r in summary.by_model}
    assert rows["claude-haiku-4-5"].usd == pytest.approx(6.0)
    assert rows["claude-haiku-4-5"].usage.output_tokens == 1_000_000
    assert not rows["local-model"].priced and rows["local-model"].usd == 0
    assert summary.usd == pytest.approx(6.0)
    assert summary.wire()["byModel"][0]["cacheSavingsUsd"] == 0


# -- compaction steps --------------------------------------------------------------------------

def history(rounds: int) -> list[dict]:
    messages = [user(text("fix the bug"))]
    for i in range(rounds):
        messages += [assistant(use(i)), user(result(i))]
    return messages


def test_clearing_keeps_the_newest_results_and_replaces_blocks():
    messages = history(5)
    before = [m["content"] for m in messages]
    assert cp.clear_old_tool_results(messages, keep_recent=2) == 3
    bodies = [b["content"] for m in messages for b in m["content"] if b["type"] == "tool_result"]
    assert bodies[:3] == [cp.CLEARED] * 3 and bodies[3:] == ["x" * 400] * 2
    assert before[2][0]["content"] == "x" * 400, "earlier copies are not mutated"
    assert cp.clear_old_tool_results(messages, keep_recent=2) == 0, "idempotent"


def test_small_results_are_not_worth_clearing():
    messages = [user(text("go")), assistant(use(1)), user(result(1, "ok")),
                assistant(use(2)), user(result(2))]
    assert cp.clear_old_tool_results(messages, keep_recent=0) == 1


@pytest.mark.parametrize(("messages", "head", "tail"), [
    (history(2), 3, 2),                                         # tool call + results kept
    ([*history(1), assistant(text("done")), user(text("next"))], 4, 1),  # new prompt kept
    ([*history(1), assistant(text("done"))], 4, 0),             # between turns: all summarised
    ([user(text("only"))], 0, 1),                               # nothing to summarise
])
def test_split_keeps_the_exchange_in_flight(messages, head, tail):
    parts = cp.split_for_summary(messages)
    assert (len(parts.head), len(parts.tail)) == (head, tail)


def test_summary_request_appends_the_instruction_to_a_trailing_user_message():
    head = history(1)
    merged = cp.summary_request_messages(head, "keep the API names")
    assert len(merged) == len(head) and merged[-1]["content"][0]["type"] == "tool_result"
    assert "keep the API names" in merged[-1]["content"][-1]["text"]
    assert head[-1]["content"][-1]["type"] == "tool_result", "the history is not touched"
    added = cp.summary_request_messages([*head, assistant(text("ok"))], None)
    assert added[-1]["role"] == "user" and added[-1]["content"][0]["text"].startswith(
        "[compaction]")


def test_compacted_history_keeps_the_request_and_alternates_roles():
    tail = history(1)[1:]
    messages = cp.compacted_history(
        original_request="fix the bug", current_request="also add a test", summary="S",
        preserved=["Proposals still waiting: p-1."], files=[("a.py", "print(1)\n")], tail=tail)
    texts = [b.get("text", "") for b in messages[0]["content"]]
    joined = "\n".join(texts)
    for needle in ("fix the bug", "also add a test", "S", "p-1", "a.py", "print(1)"):
        assert needle in joined
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    merged = cp.compacted_history(original_request="r", current_request="r", summary="S",
                                  preserved=[], files=[], tail=[user(text("next"))])
    assert len(merged) == 1 and merged[0]["content"][-1]["text"] == "next"
    assert sum("r\n" in b["text"] for b in merged[0]["content"]) == 1, "said once when equal"


def test_shrinking_for_the_summary_drops_the_oldest_and_orphans_no_result():
    messages = history(30)
    small = cp.shrink_for_summary(messages, budget_tokens=200)
    assert small and small[0]["role"] == "user"
    assert all(b["type"] != "tool_result" for b in small[0]["content"])
    assert messages[2]["content"][0]["content"] == "x" * 400, "the original is untouched"


# -- memory files ------------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_memory_order_imports_and_local_variant(tmp_path):
    home, ws = tmp_path / "home", tmp_path / "ws"
    write(home / "AGENTS.md", "user rule")
    write(ws / "CLAUDE.md", "project rule\nSee @docs/style.md and `@not/imported.md`.\n"
                            "```\n@also/not.md\n```\nmail me@example.com")
    write(ws / "docs/style.md", "style rule, back to @../CLAUDE.md")  # a cycle
    write(ws / "AGENTS.local.md", "my local rule")
    write(ws / "also/not.md", "x")
    files = MemoryLoader(ws, [home]).initial()
    assert [(f.scope, f.text.split()[0]) for f in files] == [
        ("user", "user"), ("project", "project"), ("import", "style"), ("project", "my")]


def test_workspace_memory_cannot_import_files_outside_it(tmp_path):
    write(tmp_path / "secret.txt", "TOKEN=abc")
    ws = tmp_path / "ws"
    write(ws / "AGENTS.md", "@../secret.txt\n@/etc/hostname\n")
    files = MemoryLoader(ws, []).initial()
    assert [f.scope for f in files] == ["project"]


def test_nested_memory_loads_once_when_a_file_beneath_is_first_used(tmp_path):
    ws = tmp_path / "ws"
    write(ws / "pkg/AGENTS.md", "pkg rule")
    write(ws / "pkg/sub/CLAUDE.md", "sub rule")
    loader = MemoryLoader(ws, [])
    assert loader.for_path(ws / "top.py") == []
    found = loader.for_path(ws / "pkg/sub/mod.py")
    assert [f.text for f in found] == ["pkg rule", "sub rule"]
    assert loader.for_path(ws / "pkg/other.py") == [], "each folder once"
    assert loader.for_path(tmp_path / "elsewhere/x.py") == []


def test_system_layers_static_first_and_byte_identical(tmp_path):
    write(tmp_path / "AGENTS.md", "use tabs")
    one = system_layers(tmp_path, MemoryLoader(tmp_path, []).initial())
    two = system_layers(tmp_path / "..", [])
    assert one[0] == two[0] and one[0]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in b for b in one[1:])
    assert one[-1]["text"].startswith(MEMORY_HEADER) and "use tabs" in one[-1]["text"]
    assert len(two) == 2, "no memory layer without memory files"


# -- deferred tools ----------------------------------------------------------------------------

def test_deferred_tools_wait_behind_tool_search():
    pool = session_pool(default_pool())
    names = [s["name"] for s in pool.api_schemas()]
    assert names == sorted(names) and "ToolSearch" in names
    assert not set(DEFERRED_TOOLS) & set(names)
    search = next(s for s in pool.api_schemas() if s["name"] == "ToolSearch")
    assert all(n in search["description"] for n in DEFERRED_TOOLS)
    assert pool.get("Hover") is not None, "callable by name before loading"
    assert pool.api_schemas() is pool.api_schemas(), "stable between loads"


@pytest.mark.parametrize(("query", "expected"), [
    ("select:Hover", ["Hover"]),
    ("select:hover, WorkspaceSymbols, Nope", ["Hover", "WorkspaceSymbols"]),
    ("symbols", ["DocumentSymbols", "WorkspaceSymbols"]),
    ("quantum teleport", []),
])
def test_tool_search_queries(query, expected):
    pool = session_pool(default_pool())
    assert isinstance(pool, SessionTools)
    assert [t.name for t in pool.search(query, 5)] == expected


def test_loading_adds_schemas_in_name_order_and_drops_search_when_all_loaded():
    pool = session_pool(default_pool())
    assert pool.load(["Hover"]) == ["Hover"] and pool.load(["Hover"]) == []
    names = [s["name"] for s in pool.api_schemas()]
    assert "Hover" in names and names == sorted(names)
    pool.load(DEFERRED_TOOLS)
    assert "ToolSearch" not in [s["name"] for s in pool.api_schemas()]


def test_sessions_load_tools_independently():
    shared = default_pool()
    a, b = session_pool(shared), session_pool(shared)
    a.load(["Hover"])
    assert "Hover" not in [s["name"] for s in b.api_schemas()]
    assert len(shared.api_schemas()) == len(list(shared)), "the shared pool is unchanged"


# -- cache breakpoints -------------------------------------------------------------------------

def test_breakpoints_on_the_newest_block_and_where_the_previous_request_put_it():
    conversation = Conversation()
    conversation.messages = history(2)
    sent = conversation.for_request()
    marked = [(i, j) for i, m in enumerate(sent) for j, b in enumerate(m["content"])
              if "cache_control" in b]
    assert marked == [(2, 0), (4, 0)]
    assert all("cache_control" not in b for m in conversation.messages for b in m["content"])


# -- the run command's output ------------------------------------------------------------------

def test_run_output_shows_turn_and_session_cost():
    import io

    from lsp_agent.client.render import Renderer
    from lsp_agent.types import events as ev

    ledger = CostLedger()
    ledger.add("claude-sonnet-4-5", Usage(input_tokens=1000, cache_read_input_tokens=10_000))
    out = io.StringIO()
    Renderer(out=out, color=False).render(ev.CostReport(turn=ledger.summary(),
                                                        session=ledger.summary()))
    line = out.getvalue()
    assert line.startswith("[cost: turn $0.0060, cache saved $0.0270 (claude-sonnet-4-5)")
    assert "session $0.0060" in line


def test_a_failing_conversation_observer_never_breaks_the_conversation():
    from lsp_agent.context.conversation import Conversation

    class Broken:
        def __getattr__(self, name):
            def fail(*_args):
                raise RuntimeError(f"disk gone during {name}")
            return fail

    conversation = Conversation()
    conversation.observer = Broken()  # type: ignore[assignment]
    conversation.add_user_blocks([{"type": "text", "text": "hi"}], origin="prompt")
    conversation.add_assistant([{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}])
    conversation.add_tool_results([{"type": "tool_result", "tool_use_id": "t1", "content": "x"}])
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "user"]
