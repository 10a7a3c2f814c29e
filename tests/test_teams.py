"""Agent teams in-process: SendMessage continues or reaches a named subagent, and the shared
task list (TaskCreate, TaskUpdate, TaskList, TaskGet) is one list for the main agent and its
children, with owners and dependencies. A real Session, the real SDK, the scripted model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.tools.base import ToolError
from lsp_agent.tools.task_list import TaskBoard, TaskUpdateInput
from lsp_agent.types import events as ev
from tests.test_sessions_inprocess import Editor, Events, make_session

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
WAIT = 60.0
CHILD = {"system_contains": "You are a subagent of lsp-agent"}


def tool(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": args}


def agent(name: str, prompt: str = "Scout the code.", **extra: Any) -> dict[str, Any]:
    return tool("Agent", description=f"{name} work", prompt=prompt,
                subagent_type="general-purpose", name=name, **extra)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("X = 1\n")
    return ws


async def run(model, workspace: Path, scenario: dict[str, Any]) -> tuple[Events, Any, Any]:
    model.load(scenario)
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        ended = await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    return events, ended, session


def results(events: Events, name: str) -> list[ev.ToolResult]:
    return [e for e in events.of(ev.ToolResult) if e.name == name]


def child_requests(model) -> list[dict[str, Any]]:
    return [b for b in model.requests
            if any("You are a subagent" in s.get("text", "") for s in b.get("system") or [])]


async def test_send_message_continues_an_ended_child_with_its_conversation(model, workspace):
    events, ended, _ = await run(model, workspace, {"turns": [
        {"content": [agent("scout")], "when": [{**CHILD, "content": "FIRST REPORT"}]},
        {"content": [tool("SendMessage", to="scout", message="Now look at tests too.")],
         "when": [{**CHILD, "content": "SECOND REPORT"}]},
        {"content": "done"},
    ]})
    assert ended.stop_reason == "end_turn"
    (sent,) = results(events, "SendMessage")
    assert not sent.is_error and "SECOND REPORT" in sent.content
    _, second = child_requests(model)
    assert "FIRST REPORT" in str(second["messages"]), "the child's conversation was kept"
    assert second["messages"][-1]["content"][0]["text"] == "Now look at tests too."
    starts = events.of(ev.SubagentStarted)
    assert len(starts) == 2 and starts[0].agent_id == starts[1].agent_id
    send_id = next(e.tool_use_id for e in events.of(ev.ToolInputComplete)
                   if e.name == "SendMessage")
    assert starts[1].parent_tool_use_id == send_id, "the continuation nests under SendMessage"


async def test_send_message_is_queued_for_a_running_child(model, workspace):
    gate = workspace / "go"
    wait_for_gate = f"while [ ! -f {gate} ]; do sleep 0.05; done; echo released"
    model.load({"turns": [
        {"content": [agent("worker", run_in_background=True)],
         "when": [{**CHILD, "content": [tool("Bash", command=wait_for_gate)]}]},
        {"content": [tool("SendMessage", to="worker", message="PRIORITY: check app.py"),
                     tool("SendMessage", to="nobody", message="hello?")],
         "when": [{**CHILD, "content": "WORKER DONE"}]},
        {"content": "done"},
    ]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        ended = await asyncio.wait_for(session.prompt("go"), WAIT)
        assert ended.stop_reason == "end_turn"
        sent, unknown = results(events, "SendMessage")
        assert "queued for worker" in sent.content
        assert unknown.is_error and "No agent named 'nobody'" in unknown.content
        assert "worker (agent-" in unknown.content and "running" in unknown.content
        gate.touch()  # the child's command ends; its next request carries the message
        await asyncio.wait_for(events.first(ev.SubagentEnded), WAIT)
    finally:
        await session.close()
    later = child_requests(model)[1]["messages"][-1]["content"]
    assert "released" in str(later[0]), "after its command's result"
    assert later[-1]["text"] == (
        '<message from="main agent">\nPRIORITY: check app.py\n</message>')


# -- the shared task list ----------------------------------------------------------------------


async def test_the_task_list_is_shared_with_children_and_claimed(model, workspace):
    events, ended, session = await run(model, workspace, {"turns": [
        {"content": [tool("TaskCreate", subject="Find callers", description="grep for f"),
                     tool("TaskCreate", subject="Fix f", blockedBy=["1"])],
         "when": [{**CHILD, "content": [tool("TaskList"),
                                        tool("TaskUpdate", taskId="2", status="in_progress"),
                                        tool("TaskUpdate", taskId="1", status="in_progress")]}]},
        {"content": [agent("w1")],
         "when": [{**CHILD, "content": [tool("TaskUpdate", taskId="1", status="completed")]}]},
        {"content": [tool("TaskGet", taskId="1")],
         "when": [{**CHILD, "content": "claimed and finished #1"}]},
        {"content": "done"},
    ]})
    assert ended.stop_reason == "end_turn"
    listed = results(events, "TaskList")[0]
    assert "#1 [pending] Find callers" in listed.content
    assert "#2 [pending] Fix f blocked by #1" in listed.content
    blocked, claimed, _ = results(events, "TaskUpdate")
    assert blocked.is_error and "blocked by #1" in blocked.content
    assert "(owner: w1)" in claimed.content
    got = results(events, "TaskGet")[0].content
    assert "#1 [completed] Find callers (owner: w1)" in got and "blocks: #2" in got
    final = events.of(ev.TaskListUpdated)[-1].tasks
    assert [(t.id, t.status, t.owner) for t in final] == [
        ("1", "completed", "w1"), ("2", "pending", None)]
    assert final[1].blocked_by == ["1"]
    assert session.task_board.get("1").created_by == "main"


def test_a_task_claimed_by_one_worker_is_refused_to_another():
    board = TaskBoard()
    board.create("a", "", [], None, "main")
    board.update(TaskUpdateInput(taskId="1", status="in_progress"), "w1")
    with pytest.raises(ToolError, match="claimed by w1"):
        board.update(TaskUpdateInput(taskId="1", status="completed"), "w2")
    board.update(TaskUpdateInput(taskId="1", owner="w2"), "main")  # the main agent reassigns
    assert board.get("1").owner == "w2"
    board.update(TaskUpdateInput(taskId="1", owner=""), "w2")  # released
    assert board.get("1").owner is None


def test_deleting_a_task_unblocks_its_dependents_and_bad_ids_are_named():
    changes: list[int] = []
    board = TaskBoard(on_change=lambda items: changes.append(len(items)))
    board.create("a", "", [], None, "main")
    board.create("b", "", ["1"], None, "main")
    with pytest.raises(ToolError, match=r"No task #9\. Tasks: #1, #2"):
        board.create("c", "", ["9"], None, "main")
    with pytest.raises(ToolError, match="cannot block itself"):
        board.update(TaskUpdateInput(taskId="2", addBlockedBy=["2"]), "main")
    assert board.update(TaskUpdateInput(taskId="1", status="deleted"), "main") == \
        "Deleted task #1."
    assert board.get("2").blocked_by == [] and changes == [1, 2, 1]
    board.update(TaskUpdateInput(taskId="2", status="in_progress"), "main")
    restored = TaskBoard()
    restored.restore(list(board.items.values()))
    assert restored.create("d", "", [], None, "main").id == "3", "ids go on after a resume"


# -- coordinator mode's scratchpad ---------------------------------------------------------------


class Fallback:
    def __init__(self) -> None:
        self.got: list[Any] = []

    async def propose(self, tool_use_id: str, changes: list[Any]) -> str:
        self.got.append(changes)
        return "proposed"


async def test_scratch_files_are_written_there_and_only_there(tmp_path):
    from lsp_agent.agent.coordinator import ScratchRouter, coordinator_tools
    from lsp_agent.tools.pool import default_pool
    from lsp_agent.types.edits import FileEdit

    scratch, project = tmp_path / "scratch", tmp_path / "ws"
    scratch.mkdir()
    project.mkdir()
    fallback = Fallback()
    router = ScratchRouter(scratch, fallback)
    note = FileEdit(scratch / "notes.md", None, "found\n", None)
    code = FileEdit(project / "app.py", None, "x\n", None)
    assert (await router.propose("t", [note])).startswith("Written in the scratchpad")
    assert (scratch / "notes.md").read_text() == "found\n"
    assert await router.propose("t", [code]) == "proposed" and fallback.got == [[code]]
    assert "separate calls" in await router.propose("t", [note, code])
    (scratch / "link.md").symlink_to(project / "app.py")
    refused = await router.propose("t", [FileEdit(scratch / "link.md", None, "x\n", None)])
    assert refused.startswith("Not written") and not (project / "app.py").exists()
    names = {t.name for t in coordinator_tools(list(default_pool()))}
    assert {"Read", "Grep", "Glob", "TaskCreate", "TaskOutput"} <= names
    assert not names & {"Edit", "Write", "Bash", "TodoWrite"}


# -- Explore's model ---------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "call_model", "expected"), [
    ("claude-haiku-4-5", None, "claude-haiku-4-5"),
    ("inherit", None, "PARENT"),
    ("claude-haiku-4-5", "opus", "claude-opus-4-1"),
])
async def test_explore_runs_on_its_configured_model(model, workspace, setting, call_model,
                                                    expected):
    extra = {"model": call_model} if call_model else {}
    model.load({"turns": [
        {"content": [tool("Agent", description="find", prompt="Find f.",
                          subagent_type="Explore", **extra)],
         "when": [{"system_contains": "You are Explore", "content": "f is in app.py"}]},
        {"content": "done"}]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    session.delegation.model.settings.explore_model = setting
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    (child,) = [b for b in model.requests if "You are Explore" in str(b.get("system"))]
    parent = next(b for b in model.requests if "You are Explore" not in str(b.get("system")))
    assert child["model"] == (parent["model"] if expected == "PARENT" else expected)
    assert events.of(ev.SubagentStarted)[0].model == child["model"]
