"""TodoWrite: validation, the todos_updated event, the plan surviving compaction, the pool,
and the terminal rendering. Sessions run against the scripted model server (real SDK)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.client.render import Renderer
from lsp_agent.scripted.usage import canonical_json
from lsp_agent.tools.pool import default_pool
from lsp_agent.tools.todos import MAX_TODOS, TodoWrite
from lsp_agent.types import events as ev
from tests.test_context_session import make_session, of, summary_turn

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")

PLAN = [
    {"content": "Find the failing test", "status": "completed"},
    {"content": "Fix slugify", "status": "in_progress", "active_form": "Fixing slugify"},
    {"content": "Run the tests", "status": "pending"},
]


def todo_write(todos: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "tool_use", "name": "TodoWrite", "input": {"todos": todos}}


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("def f():\n    return 1\n")
    return ws


@pytest.mark.parametrize(("todos", "complaint"), [
    ([{"content": "a", "status": "in_progress"}, {"content": "b", "status": "in_progress"}],
     "at most one item may be in_progress"),
    ([{"content": "", "status": "pending"}], "at least 1 character"),
    ([{"content": "   ", "status": "pending"}], "must not be blank"),
    ([{"content": "a", "status": "done"}], "todos.0.status"),
    ([{"content": "x" * 301, "status": "pending"}], "at most 300 characters"),
    ([{"content": f"step {i}", "status": "pending"} for i in range(MAX_TODOS + 1)],
     "at most 50 items"),
])
async def test_invalid_lists_are_refused_and_the_old_list_is_kept(model, workspace, todos,
                                                                  complaint):
    model.load({"turns": [{"content": [todo_write(PLAN)]}, {"content": [todo_write(todos)]},
                          {"content": "ok"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("plan it")
    good, bad = of(events, ev.ToolResult)
    assert not good.is_error and bad.is_error
    assert bad.content.startswith("Invalid input for TodoWrite") and complaint in bad.content
    assert len(of(events, ev.TodosUpdated)) == 1, "a refused list is not announced"
    assert [t.content for t in session.todos.items] == [t["content"] for t in PLAN]


async def test_the_event_carries_the_whole_list_before_the_tool_result(model, workspace):
    model.load({"turns": [{"content": [todo_write(PLAN)]}, {"content": [todo_write([])]},
                          {"content": "done"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("fix slugify")
    first, cleared = of(events, ev.TodosUpdated)
    assert first.wire()["todos"] == [
        {"content": "Find the failing test", "status": "completed"},
        {"content": "Fix slugify", "status": "in_progress", "activeForm": "Fixing slugify"},
        {"content": "Run the tests", "status": "pending"}]
    assert ev.parse_event(first.wire()) == first
    assert cleared.todos == [] and session.todos.items == []
    result = of(events, ev.ToolResult)[0]
    assert first.seq < result.seq and not result.is_error
    assert result.content == "Todo list saved (1 completed, 1 in progress, 1 pending)."
    assert "Todo list cleared" in of(events, ev.ToolResult)[1].content
    assert not of(events, ev.PermissionAsked)


async def test_the_list_survives_compaction_verbatim(model, workspace):
    model.load({"sequencing": "sequential", "turns": [
        {"content": [todo_write(PLAN)]}, {"content": "planned"},
        summary_turn("SUMMARY: planning done."), {"content": "continuing"}]})
    session = make_session(model, workspace, [])
    await session.prompt("fix slugify")
    assert await session.compact() is not None
    asked = canonical_json(model.requests[2]["messages"][-1])
    assert "Plan and todos" in asked, "the summary instructions ask for the plan"
    await session.prompt("go on")
    kept = [b["text"] for b in model.requests[3]["messages"][0]["content"]]
    todo_block = next(t for t in kept if t.startswith("Your todo list"))
    assert todo_block.endswith(
        "[x] Find the failing test\n[>] Fix slugify\n[ ] Run the tests")


async def test_todo_write_is_in_the_default_pool_and_offered_at_once(model, workspace):
    assert "TodoWrite" in default_pool().names()
    tool = default_pool().get("TodoWrite")
    assert isinstance(tool, TodoWrite) and tool.read_only
    model.load({"turns": [{"content": "hi"}]})
    session = make_session(model, workspace, [])
    await session.prompt("hi")
    assert "TodoWrite" in [t["name"] for t in model.requests[0]["tools"]], "not deferred"
    system = "\n".join(b["text"] for b in model.requests[0]["system"])
    assert "TodoWrite" in system


def test_the_terminal_shows_a_checklist():
    out = io.StringIO()
    Renderer(out, color=False)(ev.TodosUpdated(todos=[ev.TodoView(**t) for t in PLAN]))
    assert out.getvalue() == ("Todos:\n  [x] Find the failing test\n  [>] Fixing slugify\n"
                              "  [ ] Run the tests\n")
