"""The requests behind the editor's views, through a real ``lsp-agent serve``: a background
shell's newest output shown to the user (without taking what the agent has not read yet) and
stopped from the editor; the session's customizations (skills, commands, agents, plugins)
listed by name and description, never by body."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.types import events as ev
from tests.e2e_harness import processes_with, start_editor, unique_duration, wait_for_processes

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".lsp-agent" / "agents").mkdir(parents=True)
    (ws / ".lsp-agent" / "agents" / "reader.md").write_text(
        "---\nname: reader\ndescription: Reads plans\ntools: Read\n---\nREADER-BODY-SECRET\n")
    (ws / ".claude" / "skills" / "release").mkdir(parents=True)
    (ws / ".claude" / "skills" / "release" / "SKILL.md").write_text(
        "---\nname: release\ndescription: Cut a release\nargument-hint: <version>\n---\n"
        "SKILL-BODY-SECRET\n")
    (ws / ".claude" / "commands").mkdir(parents=True)
    (ws / ".claude" / "commands" / "fix.md").write_text(
        "---\ndescription: Fix an issue\nargument-hint: <number>\n---\nFix issue $1.\n")
    return ws


async def editor_for(model, tmp_path: Path):
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    return await start_editor(model.base_url, tmp_path, server_env=env)


def bash(command: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Bash",
            "input": {"command": command, "run_in_background": True}}


async def test_the_tasks_view_reads_a_tasks_output_and_stops_it(model, tmp_path, workspace):
    marker = unique_duration(400)
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(workspace, mode="bypassPermissions")
        model.load({"turns": [{"content": [bash(f"echo VIEW-READY; sleep {marker}")]},
                              {"content": "started"}]})
        await editor.request("agent/prompt", {"sessionId": session, "text": "start"})
        (result,) = editor.of(session, ev.ToolResult)
        task_id = result.content.split("task ")[1].split(".")[0]
        assert await wait_for_processes(f"sleep {marker}", present=True)

        shown: dict[str, Any] = {}
        for _ in range(100):  # the echo reaches the pipe a moment after the start
            shown = await editor.request("agent/taskOutput",
                                         {"sessionId": session, "taskId": task_id})
            if "VIEW-READY" in shown["output"]:
                break
        assert "VIEW-READY" in shown["output"]
        assert (shown["taskId"], shown["status"], shown["omittedBytes"]) == (task_id, "running", 0)

        # The view took nothing from the agent: its TaskOutput still gets the line.
        model.load({"turns": [{"content": "-"}, {"content": "-"},
                              {"content": [{"type": "tool_use", "name": "TaskOutput",
                                            "input": {"task_id": task_id, "block": False}}]},
                              {"content": "read"}]})
        await editor.request("agent/prompt", {"sessionId": session, "text": "read it"})
        assert "VIEW-READY" in editor.of(session, ev.ToolResult)[-1].content

        stopped = await editor.request("agent/taskStop", {"sessionId": session, "taskId": task_id})
        assert stopped["task"]["status"] == "stopped"
        assert "Stopped task" in stopped["message"]
        assert await wait_for_processes(marker, present=False) == []
        (ended,) = editor.of(session, ev.BackgroundTaskEnded)
        assert (ended.task_id, ended.status) == (task_id, "stopped")

        with pytest.raises(JsonRpcInvalidParams, match="No background task 'bg-nope'"):
            await editor.request("agent/taskOutput", {"sessionId": session, "taskId": "bg-nope"})
        with pytest.raises(JsonRpcInvalidParams, match="taskId"):
            await editor.request("agent/taskStop", {"sessionId": session})
    finally:
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await editor.client.shutdown_session()


async def test_customizations_list_what_the_files_define(model, tmp_path, workspace):
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(workspace)
        found = await editor.request("agent/customizations", {"sessionId": session})
        assert [(s["name"], s["description"], s["source"]) for s in found["skills"]] == [
            ("release", "Cut a release", "project")]
        assert found["skills"][0]["path"].endswith("release/SKILL.md")
        assert found["skills"][0]["argumentHint"] == "<version>"
        assert [(c["name"], c["argumentHint"], c["source"]) for c in found["commands"]] == [
            ("fix", "<number>", "project")]
        agents = {a["name"]: a for a in found["agents"]}
        assert agents["reader"]["description"] == "Reads plans"
        assert agents["reader"]["path"].endswith("reader.md")
        assert agents["Explore"]["source"] == "builtin" and agents["Explore"]["path"] is None
        assert found["plugins"] == []
        assert "BODY-SECRET" not in str(found)
        with pytest.raises(JsonRpcInvalidParams, match="unknown session"):
            await editor.request("agent/customizations", {"sessionId": "nope"})
    finally:
        with contextlib.suppress(Exception):
            await editor.client.shutdown_session()
