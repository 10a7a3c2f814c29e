"""Delegation through a real ``lsp-agent serve``: an independent client asks for work that the
scripted model delegates to a custom agent restricted to Read and Grep; background shells are
started, read back, listed, stopped, and do not outlive the server (the host's process table).
The real SDK talks to the scripted model server over real HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.types import events as ev
from tests.e2e_harness import processes_with, start_editor, unique_duration, wait_for_processes

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
READER_PROMPT = "You are READER-E2E. Report the release plan."
FILE_CONTENT = "CONTENT-ONLY-THE-CHILD-READS-4411"
SUMMARY = "SUMMARY: plan.txt says ship on Friday."


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    agents = ws / ".lsp-agent" / "agents"
    agents.mkdir(parents=True)
    (agents / "reader.md").write_text(
        "---\nname: reader\ndescription: Reads plans\ntools: Read, Grep\n---\n"
        f"{READER_PROMPT}\n")
    (ws / "plan.txt").write_text(f"{FILE_CONTENT}\nship on Friday\n")
    return ws


async def editor_for(model, tmp_path: Path):
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    return await start_editor(model.base_url, tmp_path, server_env=env)


def agent_call(description: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": description, "prompt": f"Read plan.txt ({description}).",
        "subagent_type": "reader"}}


def is_child(body: dict[str, Any]) -> bool:
    return any(READER_PROMPT in b.get("text", "") for b in body.get("system") or [])


async def test_delegating_to_a_custom_agent(model, tmp_path, workspace):
    child = {"system_contains": READER_PROMPT}
    model.load({"turns": [
        {"content": [agent_call("first reader"), agent_call("second reader")],
         "when": [{**child, "content": [{"type": "tool_use", "name": "Read",
                                         "input": {"path": "plan.txt"}}]}]},
        {"content": "Delegated work is done.", "delay_ms": 30,
         "when": [{**child, "content": SUMMARY}]},
    ]})
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(workspace, mode="bypassPermissions")
        await editor.request("agent/prompt", {"sessionId": session, "text": "Check the plan"})
        (ended,) = editor.of(session, ev.TurnEnded)
        assert ended.stop_reason == "end_turn"
        children = [b for b in model.requests if is_child(b)]
        parent = [b for b in model.requests if not is_child(b)]
        assert len(children) == 4 and len(parent) == 2
        # The child's requests offer exactly the agent's tools and carry its prompt.
        for body in children:
            assert sorted(t["name"] for t in body["tools"]) == ["Grep", "Read"]
        assert sum(FILE_CONTENT in str(b["messages"]) for b in children) == 2
        # The parent's next request holds the summaries, none of what the children read.
        assert str(parent[1]["messages"]).count(SUMMARY) == 2
        assert FILE_CONTENT not in str(parent[1])
        assert editor.of(session, ev.TextDelta)[-1].agent_id is None
        # Both children started before either ended: they overlapped.
        started = editor.of(session, ev.SubagentStarted)
        finished = editor.of(session, ev.SubagentEnded)
        assert len(started) == len(finished) == 2
        assert max(e.ts for e in started) < min(e.ts for e in finished)
        # Their events are tagged with the child and the Agent call that started it.
        calls = {e.tool_use_id for e in editor.of(session, ev.ToolInputComplete)
                 if e.name == "Agent"}
        reads = [e for e in editor.of(session, ev.ToolResult) if e.name == "Read"]
        assert {e.parent_tool_use_id for e in reads} == calls
        assert {e.agent_id for e in reads} == {e.agent_id for e in started}
        assert ended.usage.input_tokens == sum(
            e.usage.input_tokens for e in editor.of(session, ev.UsageReport))
        # Each child's conversation is saved next to the parent's transcript, not in it.
        (transcript,) = (tmp_path / ".state").rglob(f"{session}.jsonl")
        sidechains = sorted(transcript.with_suffix("").glob("subagents/*.jsonl"))
        assert [p.stem for p in sidechains] == sorted(e.agent_id for e in started)
        for path in sidechains:
            text = path.read_text()
            assert FILE_CONTENT in text and "Read plan.txt" in text and SUMMARY in text
        assert FILE_CONTENT not in transcript.read_text()
    finally:
        await editor.client.shutdown_session()


def bash(command: str, background: bool = True) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Bash",
            "input": {"command": command, "run_in_background": background}}


def tool(name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": name, "input": args}


async def test_a_background_shell_is_read_stopped_and_dies_with_the_server(model, tmp_path,
                                                                          workspace):
    stopped_marker, orphan_marker = unique_duration(400), unique_duration(400)
    editor = await editor_for(model, tmp_path)
    server = editor.client._server.pid
    try:
        session = await editor.new_session(workspace, mode="bypassPermissions")
        model.load({"turns": [
            {"content": [bash(f"echo READY-1; sleep {stopped_marker}")]},
            {"content": "started"}]})
        await editor.request("agent/prompt", {"sessionId": session, "text": "start"})
        (result,) = editor.of(session, ev.ToolResult)
        task_id = result.content.split("task ")[1].split(".")[0]
        assert await wait_for_processes(f"sleep {stopped_marker}", present=True)
        listed = await editor.request("agent/tasks", {"sessionId": session})
        assert [(t["taskId"], t["status"]) for t in listed["tasks"]] == [(task_id, "running")]

        model.load({"turns": [
            {"content": "-"}, {"content": "-"},  # the first turn's two assistant messages
            {"content": [tool("TaskOutput", task_id=task_id, block=True, timeout=1)]},
            {"content": [tool("TaskStop", task_id=task_id)]},
            {"content": [bash(f"sleep {orphan_marker}")]},
            {"content": "ok"}]})
        await editor.request("agent/prompt", {"sessionId": session, "text": "read, stop"})
        output, stop, _ = editor.of(session, ev.ToolResult)[1:]
        assert output.content.startswith(f"Task {task_id}: running")
        assert "READY-1" in output.content
        assert "Stopped task" in stop.content
        assert await wait_for_processes(stopped_marker, present=False) == []
        listed = await editor.request("agent/tasks", {"sessionId": session})
        assert listed["tasks"][0]["status"] == "stopped"
        (task_ended,) = editor.of(session, ev.BackgroundTaskEnded)
        assert (task_ended.task_id, task_ended.status) == (task_id, "stopped")

        # The server dies with a background command running: nothing of it survives.
        assert await wait_for_processes(f"sleep {orphan_marker}", present=True)
        os.kill(server, signal.SIGKILL)
        survivors = await wait_for_processes(orphan_marker, present=False)
        assert survivors == []
    finally:
        for marker in (stopped_marker, orphan_marker):
            for pid in processes_with(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await editor.client.shutdown_session()


async def test_a_childs_permission_request_names_the_child(model, tmp_path, workspace):
    child = {"system_contains": "You are a subagent of lsp-agent"}
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Agent", "input": {
            "description": "make a file", "prompt": "Create made.txt.",
            "subagent_type": "general-purpose", "name": "maker"}}],
         "when": [{**child, "content": [bash("touch made.txt", background=False)]}]},
        {"content": "ok", "when": [{**child, "content": "Made it."}]},
    ]})
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(workspace)  # default mode: the command is asked
        await editor.request("agent/prompt", {"sessionId": session, "text": "go"})
        (started,) = editor.of(session, ev.SubagentStarted)
        (asked,) = editor.permission_requests
        assert asked["agentId"] == started.agent_id
        assert asked["parentToolUseId"] == started.parent_tool_use_id
        assert asked["reason"].startswith("[subagent maker: make a file]")
        assert (workspace / "made.txt").exists()
        # A child gets no Agent tool (depth limit) and no TodoWrite; it has the shell.
        (first,) = [b for b in model.requests
                    if "You are a subagent" in str(b.get("system")) and len(b["messages"]) == 1]
        names = {t["name"] for t in first["tools"]}
        assert "Bash" in names and not names & {"Agent", "TodoWrite", "ToolSearch"}
    finally:
        await editor.client.shutdown_session()
