"""The Agent tool in-process: a real Session, the real SDK against the scripted model server,
real tools. Children run the same loop with their own tools and prompt, their events are
tagged, their usage counts for the parent, and bad input gets a clear result."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.context.agents import load_catalog, split_frontmatter
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import PermissionAnswer
from tests.e2e_harness import unique_duration, wait_for_processes
from tests.test_sessions_inprocess import Editor, Events, make_session

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
WAIT = 30.0
READER_PROMPT = "You are READER-7. Report what the file defines."
SECRET_CONTENT = "FILE-BODY-MARKER-93"
READER_FILE = f"""---
name: reader
description: Reads one file and reports on it
tools: Read, Grep, Teleport
model: inherit
maxTurns: 4
---
{READER_PROMPT}
"""


def describe(pids: list[int]) -> list[str]:
    """Who the left processes are (for a failure message)."""
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]
            out.append(f"{pid} ppid={stat[1]} pgid={stat[2]} {cmd!r}")
        except OSError:
            out.append(f"{pid} gone")
    return out


def agent_call(description: str, prompt: str, subagent_type: str = "reader",
               **extra: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": description, "prompt": prompt, "subagent_type": subagent_type, **extra}}


def is_child(body: dict[str, Any]) -> bool:
    return any(READER_PROMPT in block.get("text", "") for block in body.get("system") or [])


def delegation_scenario(*parent_calls: dict[str, Any], delay_ms: int = 0) -> dict[str, Any]:
    """Turn 0: the parent's Agent calls, or a child's Read; turn 1: the parent's answer, or a
    child's summary (children are told apart by their system prompt)."""
    child = {"system_contains": READER_PROMPT}
    return {"turns": [
        {"content": list(parent_calls),
         "when": [{**child, "content": [{"type": "tool_use", "name": "Read",
                                         "input": {"path": "notes.txt"}}]}]},
        {"content": "All done.", "delay_ms": delay_ms,
         "when": [{**child, "content": "SUMMARY: notes.txt defines the release plan."}]},
    ]}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".lsp-agent" / "agents").mkdir(parents=True)
    (ws / ".lsp-agent" / "agents" / "reader.md").write_text(READER_FILE)
    (ws / "notes.txt").write_text(f"{SECRET_CONTENT}\nrelease plan\n")
    return ws


async def run_turn(model, workspace: Path, scenario: dict[str, Any],
                   mode: str = "bypassPermissions") -> tuple[Events, ev.TurnEnded]:
    model.load(scenario)
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode=mode)  # type: ignore[arg-type]
    try:
        ended = await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    return events, ended


async def test_a_child_gets_its_tools_and_prompt_and_returns_only_its_summary(model, workspace):
    events, ended = await run_turn(model, workspace, delegation_scenario(
        agent_call("read the notes", "Read notes.txt and summarise it.")))
    assert ended.stop_reason == "end_turn"
    child_requests = [b for b in model.requests if is_child(b)]
    parent_requests = [b for b in model.requests if not is_child(b)]
    assert len(child_requests) == 2 and len(parent_requests) == 2
    for body in child_requests:
        assert sorted(t["name"] for t in body["tools"]) == ["Grep", "Read"]
        assert body["messages"][0]["content"][0]["text"] == "Read notes.txt and summarise it."
    assert SECRET_CONTENT in str(child_requests[1]["messages"]), "the child read the file"
    answer = str(parent_requests[1]["messages"][-1])
    assert "SUMMARY: notes.txt defines the release plan." in answer
    assert SECRET_CONTENT not in str(parent_requests[1]), "nothing the child read"
    assert "agentId: agent-" in answer and "usage:" in answer
    # The parent offers Agent, with the types listed by name and description.
    agent_schema = next(t for t in parent_requests[0]["tools"] if t["name"] == "Agent")
    assert "- reader: Reads one file and reports on it" in agent_schema["description"]
    assert "- Explore:" in agent_schema["description"]
    # Child events are tagged; the turn's usage includes the child's two requests.
    (started,) = events.of(ev.SubagentStarted)
    (child_ended,) = events.of(ev.SubagentEnded)
    agent_call_id = events.of(ev.ToolCallStarted)[0].tool_use_id
    child_results = [e for e in events.of(ev.ToolResult) if e.agent_id == started.agent_id]
    assert [r.name for r in child_results] == ["Read"]
    assert {e.parent_tool_use_id for e in child_results} == {agent_call_id}
    assert child_ended.stop_reason == "end_turn" and child_ended.rounds == 2
    parent_usage = sum((e.usage for e in events.of(ev.UsageReport) if e.agent_id is None),
                       ev.Usage())
    assert ended.usage.input_tokens == parent_usage.input_tokens + child_ended.usage.input_tokens
    assert [e for e in events.of(ev.TurnEnded) if e.agent_id] == [], "a child's turn end stays"
    # The unknown tool of the agent file is a warning naming the file.
    (warning,) = [e for e in events.of(ev.ErrorEvent) if e.kind == "custom_agent"]
    assert "reader.md" in warning.message and "'Teleport'" in warning.message


async def test_two_children_of_one_response_overlap(model, workspace):
    events, ended = await run_turn(model, workspace, delegation_scenario(
        agent_call("first", "Read notes.txt (first)."),
        agent_call("second", "Read notes.txt (second)."), delay_ms=50))
    assert ended.stop_reason == "end_turn"
    starts = [e.ts for e in events.of(ev.SubagentStarted)]
    ends = [e.ts for e in events.of(ev.SubagentEnded)]
    assert len(starts) == len(ends) == 2
    assert max(starts) < min(ends), "the second child started before the first ended"


async def test_unknown_type_lists_the_valid_ones(model, workspace):
    events, _ = await run_turn(model, workspace, delegation_scenario(
        agent_call("x", "y", subagent_type="Wizard")))
    (result,) = events.of(ev.ToolResult)
    assert result.is_error
    assert "Unknown subagent_type 'Wizard'" in result.content
    for name in ("general-purpose", "Explore", "Plan", "reader"):
        assert name in result.content


async def test_a_child_at_its_turn_limit_gives_the_parent_a_clear_error(model, workspace):
    looping = {"turns": [
        {"content": [agent_call("loop", "Keep reading.")],
         "when": [{"system_contains": READER_PROMPT,
                   "content": [{"type": "tool_use", "name": "Read",
                                "input": {"path": "notes.txt"}}]}]},
        *[{"content": "Parent goes on.",
           "when": [{"system_contains": READER_PROMPT,
                     "content": [{"type": "tool_use", "name": "Read",
                                  "input": {"path": "notes.txt"}}]}]} for _ in range(6)],
    ]}
    events, ended = await run_turn(model, workspace, looping)
    assert ended.stop_reason == "end_turn", "the parent goes on"
    parent_result = next(e for e in events.of(ev.ToolResult) if e.agent_id is None)
    assert parent_result.is_error
    assert "did not finish: it reached its limit of 4 rounds" in parent_result.content


async def test_explore_is_read_only_and_children_cannot_delegate(model, workspace):
    scenario = {"turns": [
        {"content": [agent_call("look", "Find things.", subagent_type="Explore")],
         "when": [{"system_contains": "You are Explore", "content": "Found nothing."}]},
        {"content": "ok"},
    ]}
    await run_turn(model, workspace, scenario)
    (child,) = [b for b in model.requests if "You are Explore" in str(b.get("system"))]
    names = {t["name"] for t in child["tools"]}
    assert {"Read", "Grep", "Glob"} <= names
    assert not names & {"Bash", "Edit", "Write", "Agent", "TodoWrite"}


async def test_cancelling_the_parent_cancels_its_children(model, workspace):
    marker = unique_duration(300)
    hanging = {"turns": [
        {"content": [agent_call("a", "wait", "general-purpose"),
                     agent_call("b", "wait", "general-purpose")],
         "when": [{"system_contains": "You are a subagent of lsp-agent", "content": [
             {"type": "tool_use", "name": "Bash", "input": {"command": f"sleep {marker}"}}]}]},
        {"content": "never"},
    ]}
    model.load(hanging)
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    turn = session.begin("go")

    def running_children() -> set[str | None]:
        return {e.agent_id for e in events.of(ev.ToolExecutionStarted) if e.agent_id}

    while len(running_children()) < 2:
        await asyncio.wait_for(events.first(ev.ToolExecutionStarted), WAIT)
        await asyncio.sleep(0.02)
    assert await wait_for_processes(f"sleep {marker}", present=True)
    await asyncio.wait_for(session.cancel(), WAIT)
    ended = await asyncio.wait_for(turn, WAIT)
    await session.close()
    assert ended.stop_reason == "cancelled"
    assert sorted(e.stop_reason for e in events.of(ev.SubagentEnded)) == ["cancelled"] * 2, [
        (e.type, e.agent_id, getattr(e, "content", "")) for e in events.all
        if e.type not in ("text_delta",)]
    assert session.agent.conversation.unanswered_tool_uses() == []
    left = await wait_for_processes(marker, present=False)
    assert left == [], describe(left)


def test_agent_files_bad_frontmatter_is_a_warning_naming_the_file(tmp_path):
    folder = tmp_path / "ws" / ".claude" / "agents"
    folder.mkdir(parents=True)
    (folder / "nofront.md").write_text("just text\n")
    (folder / "broken.md").write_text("---\nname: x\nthis is not a field\n---\nbody\n")
    (folder / "nodesc.md").write_text("---\nname: x\n---\nbody\n")
    (folder / "ok.md").write_text("---\nname: ok\ndescription: fine\ntools:\n  - Read\n"
                                  "permissionMode: sometimes\nmaxTurns: -1\n---\nbody\n")
    catalog = load_catalog(tmp_path / "ws", ["Read"], home=tmp_path / "home")
    text = "\n".join(catalog.warnings)
    assert "nofront.md: no frontmatter" in text
    assert "broken.md: line 3 of the frontmatter" in text
    assert "nodesc.md: needs a 'description'" in text
    assert "unknown permissionMode 'sometimes'" in text and "maxTurns must be" in text
    ok = catalog.get("ok")
    assert ok is not None and ok.tools == ("Read",) and ok.prompt == "body"
    assert catalog.names()[:3] == ["general-purpose", "Explore", "Plan"]


def test_workspace_agents_override_user_agents(tmp_path):
    for root, text in ((tmp_path / "home" / ".claude", "user"), (tmp_path / "ws" / ".claude",
                                                                   "project")):
        (root / "agents").mkdir(parents=True)
        (root / "agents" / "a.md").write_text(f"---\nname: a\ndescription: {text}\n---\nx\n")
    catalog = load_catalog(tmp_path / "ws", [], home=tmp_path / "home")
    assert catalog.types["a"].description == "project"


def test_frontmatter_lists_and_quotes():
    fields, body = split_frontmatter("---\ntools: [Read, 'Grep']\nname: \"n\"\n---\nB\n")
    assert fields == {"tools": ["Read", "Grep"], "name": "n"} and body == "B"


# -- background shells -------------------------------------------------------------------------


def bash_bg(command: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Bash",
            "input": {"command": command, "run_in_background": True}}


async def test_a_background_command_returns_at_once_and_is_read_and_stopped(model, workspace):
    marker = unique_duration(300)
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        model.load({"turns": [
            {"content": [bash_bg(f"echo first-line; sleep {marker}")]},
            {"content": "started"}]})
        await asyncio.wait_for(session.prompt("start it"), WAIT)
        (started,) = events.of(ev.ToolResult)
        task_id = started.content.split("task ")[1].split(".")[0]
        assert await wait_for_processes(f"sleep {marker}", present=True)
        assert [t["taskId"] for t in session.tasks.summaries()] == [task_id]
        # The process runs before its output is pumped in: wait for the line (not a timing
        # assertion; the test is about reading it back, without blocking, through the tool).
        for _ in range(int(WAIT / 0.05)):
            if "first-line" in session.tasks.tail(task_id)["output"]:
                break
            await asyncio.sleep(0.05)
        # Two assistant messages so far: this turn's first request gets turn 2.
        model.load({"turns": [
            {"content": "-"}, {"content": "-"},
            {"content": [{"type": "tool_use", "name": "TaskOutput",
                          "input": {"task_id": task_id, "block": False}}]},
            {"content": [{"type": "tool_use", "name": "TaskStop", "input": {"task_id": task_id}}]},
            {"content": [{"type": "tool_use", "name": "TaskOutput",
                          "input": {"task_id": "bg-nope", "block": False}}]},
            {"content": "stopped"}]})
        await asyncio.wait_for(session.prompt("read and stop it"), WAIT)
        output, stopped, unknown = [e for e in events.of(ev.ToolResult)][1:]
        assert output.content.startswith(f"Task {task_id}: running")
        assert "first-line" in output.content
        assert "Stopped task" in stopped.content
        assert unknown.is_error and f"Known tasks: {task_id}" in unknown.content
        assert await wait_for_processes(marker, present=False) == []
        (ended,) = events.of(ev.BackgroundTaskEnded)
        assert ended.task_id == task_id and ended.status == "stopped"
        assert session.tasks.summaries()[0]["status"] == "stopped"
    finally:
        await session.close()


async def test_a_childs_permission_request_and_proposal_name_the_child(model, workspace):
    (workspace / "app.py").write_text("x = 1\n")
    child = {"system_contains": "You are a subagent of lsp-agent"}
    model.load({"turns": [
        {"content": [agent_call("edit it", "Change x.", "general-purpose", name="fixer")],
         "when": [{**child, "content": [
             {"type": "tool_use", "name": "Bash", "input": {"command": "touch made.txt"}},
             {"type": "tool_use", "name": "Edit", "input": {
                 "path": "app.py", "old_string": "x = 1", "new_string": "x = 2"}}]}]},
        {"content": "ok", "when": [{**child, "content": "Changed x."}]},
    ]})
    asked: list[ev.PermissionAsked] = []

    async def asker(event: ev.PermissionAsked) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("allow")

    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="acceptEdits", asker=asker)
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    (started,) = events.of(ev.SubagentStarted)
    (request,) = asked
    assert request.tool == "Bash" and request.reason.startswith("[subagent fixer: edit it]")
    assert request.agent_id == started.agent_id
    (proposal,) = events.of(ev.ProposalCreated)
    assert proposal.agent_id == started.agent_id
    assert proposal.parent_tool_use_id == started.parent_tool_use_id
    assert (workspace / "app.py").read_text() == "x = 2\n"


async def test_cancel_with_three_children_and_two_background_shells(model, workspace):
    """All stopped, every tool use answered (parent's and children's), no process left."""
    marker = unique_duration(300)
    child = {"system_contains": "You are a subagent of lsp-agent"}
    model.load({"turns": [
        {"content": [bash_bg(f"sleep {marker}"), bash_bg(f"sleep {marker}"),
                     *(agent_call(f"child {n}", "wait", "general-purpose") for n in range(3))],
         "when": [{**child, "content": [{"type": "tool_use", "name": "Bash",
                                         "input": {"command": f"sleep {marker}"}}]}]},
        {"content": "never"},
    ]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    turn = session.begin("go")

    def running_children() -> set[str | None]:
        return {e.agent_id for e in events.of(ev.ToolExecutionStarted) if e.agent_id}

    while len(running_children()) < 3:
        await asyncio.wait_for(events.first(ev.ToolExecutionStarted), WAIT)
        await asyncio.sleep(0.02)
    assert len(session.tasks.running()) == 2
    await asyncio.wait_for(session.cancel(), WAIT)
    ended = await asyncio.wait_for(turn, WAIT)
    assert ended.stop_reason == "cancelled"
    assert sorted(e.stop_reason for e in events.of(ev.SubagentEnded)) == ["cancelled"] * 3
    assert session.agent.conversation.unanswered_tool_uses() == []
    calls = {e.tool_use_id for e in events.of(ev.ToolInputComplete)}
    assert calls == {e.tool_use_id for e in events.of(ev.ToolResult)}, "every call answered"
    assert await wait_for_processes(marker, present=False) == []
    assert {t["status"] for t in session.tasks.summaries()} == {"stopped"}
    await session.close()


async def test_a_child_that_fails_gives_the_parent_a_clear_error(model, workspace):
    events, ended = await run_turn(model, workspace, {"turns": [
        {"content": [agent_call("refuse", "Do something bad.")],
         "when": [{"system_contains": READER_PROMPT, "content": "I will not.",
                   "stop_reason": "refusal"}]},
        {"content": "The parent goes on."},
    ]})
    assert ended.stop_reason == "end_turn"
    (result,) = [e for e in events.of(ev.ToolResult) if e.agent_id is None]
    assert result.is_error
    assert "The reader agent did not finish: the model refused the task." in result.content
    assert "I will not." in result.content


@pytest.mark.parametrize(("parent", "wanted", "expected"), [
    ("default", "plan", "plan"),  # an agent may be stricter
    ("default", "bypassPermissions", "default"),  # never more permissive than the parent
    ("default", "acceptEdits", "default"),
    ("acceptEdits", "plan", "acceptEdits"),  # the user's explicit choice wins
    ("bypassPermissions", "default", "bypassPermissions"),
    ("plan", "default", "plan"),
    ("default", None, "default"),
])
def test_a_childs_permission_mode(parent, wanted, expected):
    from lsp_agent.agent.subagents import child_mode

    assert child_mode(parent, wanted) == expected


async def test_an_agent_file_cannot_grant_itself_bypass(model, tmp_path):
    ws = tmp_path / "ws"
    (ws / ".claude" / "agents").mkdir(parents=True)
    (ws / ".claude" / "agents" / "yolo.md").write_text(
        "---\nname: yolo\ndescription: runs anything\npermissionMode: bypassPermissions\n---\n"
        "You are YOLO.\n")
    (ws / ".claude" / "agents" / "planner.md").write_text(
        "---\nname: planner\ndescription: plans\npermissionMode: plan\n---\nYou are PLANNER.\n")
    asked: list[ev.PermissionAsked] = []

    async def deny(event: ev.PermissionAsked) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("deny")

    touch = [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made.txt"}}]
    model.load({"turns": [
        {"content": [agent_call("a", "go", "yolo"), agent_call("b", "go", "planner")],
         "when": [{"system_contains": "You are YOLO", "content": touch},
                  {"system_contains": "You are PLANNER", "content": touch}]},
        {"content": "ok", "when": [{"system_contains": "You are", "content": "done"}]},
    ]})
    events = Events()
    session = make_session(model, ws, events, Editor(), mode="default", asker=deny)
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    (request,) = asked
    assert request.reason.startswith("[subagent yolo: a]"), "yolo still had to ask"
    planner = next(e for e in events.of(ev.SubagentStarted) if e.agent_type == "planner")
    (refused,) = [e for e in events.of(ev.ToolResult) if e.agent_id == planner.agent_id]
    assert refused.is_error and "Plan mode is on" in refused.content
    assert not (ws / "made.txt").exists()


async def test_a_background_agent_returns_at_once_and_reports_through_its_task(model, workspace):
    scenario = delegation_scenario(agent_call("read later", "Read notes.txt.",
                                              run_in_background=True))
    scenario["turns"].append({"content": "seen"})
    model.load(scenario)
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
        agent_result = next(e for e in events.of(ev.ToolResult) if e.name == "Agent")
        assert "in the background as task bg-" in agent_result.content
        ended = await events.first(ev.BackgroundTaskEnded)
        assert ended.status == "completed"
        await asyncio.wait_for(session.prompt("and?"), WAIT)
        report = await session.tasks.read(ended.task_id, block=False, wait=0)
        assert "SUMMARY: notes.txt defines the release plan." in report
        assert SECRET_CONTENT not in report
    finally:
        await session.close()
    # Told once, at the first step after it ended (in this turn or the first one).
    history = str(model.requests[-1]["messages"])
    assert history.count(f"Background task {ended.task_id} ('agent reader: read later') "
                         "ended: completed") == 1


async def test_a_background_agent_can_be_stopped(model, workspace):
    marker = unique_duration(300)
    child = {"system_contains": "You are a subagent of lsp-agent"}
    model.load({"turns": [
        {"content": [agent_call("sleeper", "wait", "general-purpose", run_in_background=True)],
         "when": [{**child, "content": [{"type": "tool_use", "name": "Bash",
                                         "input": {"command": f"sleep {marker}"}}]}]},
        {"content": "started"},
    ]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
        assert await wait_for_processes(f"sleep {marker}", present=True)
        (task,) = session.tasks.running()
        assert "Stopped task" in await asyncio.wait_for(session.tasks.stop(task.id), WAIT)
        assert await wait_for_processes(marker, present=False) == []
        (ended,) = events.of(ev.SubagentEnded)
        assert ended.stop_reason == "cancelled" and task.status == "stopped"
    finally:
        await session.close()
