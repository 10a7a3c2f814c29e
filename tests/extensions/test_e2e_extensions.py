"""End to end, issue 11's "What it must show": a real ``lsp-agent serve`` over stdio, the
scripted model over real HTTP, a workspace with a project ``.mcp.json`` stdio server (approved
by the user when asked), a skill and a custom command. The client sees the MCP tool called by
its ``mcp__`` name with its result; the skill's description (not its body) in the first
request and its body in the tool result once invoked; ``/name args`` expanded into the prompt
the model receives."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import WAIT, start_editor
from tests.extensions.helpers import SERVER

pytestmark = [pytest.mark.e2e]


def workspace(root: Path) -> Path:
    ws = root / "ws"
    (ws / ".claude" / "skills" / "release").mkdir(parents=True)
    (ws / ".claude" / "skills" / "release" / "SKILL.md").write_text(
        "---\nname: release\ndescription: Cut a release of the project\n---\n"
        "BODY-OF-SKILL: bump the version, tag, push.\n")
    (ws / ".claude" / "commands").mkdir(parents=True)
    (ws / ".claude" / "commands" / "fix.md").write_text(
        "---\ndescription: Fix an issue\nargument-hint: <number>\n---\n"
        "Please fix issue #$1. Details: $ARGUMENTS\n")
    (ws / ".mcp.json").write_text(json.dumps({"mcpServers": {"srv": {
        "command": sys.executable, "args": [SERVER]}}}))
    return ws


async def test_mcp_tool_skill_and_command_through_the_server(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with ScriptedModelServer({"turns": []}) as model:
        editor = await start_editor(model.base_url, tmp_path, server_env={
            "LSP_AGENT_BACKOFF_BASE": "0.05"})
        answers: list[dict[str, Any]] = []

        async def approve(params: dict[str, Any]) -> dict[str, Any]:
            answers.append(params)
            return {"decision": "allow", "remember": "project"
                    if params["toolUseId"].startswith("mcp-approval") else False}

        editor.permission = approve
        try:
            session = await editor.new_session(ws)
            commands = await editor.request("agent/commands", {"sessionId": session})
            listed = {c["name"]: c for c in commands["commands"]}
            assert listed["fix"]["argumentHint"] == "<number>"
            assert listed["release"]["source"] == "skill:project"
            status = await editor.request("agent/mcpStatus", {"sessionId": session})
            assert status["servers"][0]["state"] == "needs_approval"

            # The first prompt asks about the project's server; nothing ran before.
            await editor.request("agent/prompt", {"sessionId": session, "text": "/mcp"})
            for _ in range(int(WAIT * 20)):  # no event announces the connection: poll
                status = await editor.request("agent/mcpStatus", {"sessionId": session})
                if status["servers"][0]["state"] == "connected":
                    break
                await asyncio.sleep(0.05)
            server = status["servers"][0]
            assert (server["state"], server["tools"] > 3) == ("connected", True), server
            approval = answers[0]
            assert approval["toolUseId"] == "mcp-approval-srv"
            assert SERVER in approval["input"]["command"]

            model.load({"turns": [
                {"content": [{"type": "tool_use", "name": "Skill",
                              "input": {"skill": "release"}}]},
                {"content": [{"type": "tool_use", "name": "mcp__srv__echo",
                              "input": {"text": "hello"}}]},
                {"content": "released"},
                {"content": "fixed"}]})
            result = await editor.request("agent/prompt",
                                          {"sessionId": session, "text": "cut a release"})
            assert result["stopReason"] == "end_turn"
            first = model.requests[0]
            skill_tool = next(t for t in first["tools"] if t["name"] == "Skill")
            assert "release: Cut a release of the project" in skill_tool["description"]
            assert "BODY-OF-SKILL" not in json.dumps(first)
            results = {r.name: r for r in editor.of(session, ev.ToolResult)}
            assert "BODY-OF-SKILL" in results["Skill"].content
            assert results["mcp__srv__echo"].content == "echo: hello"
            assert not results["mcp__srv__echo"].is_error
            assert any(a["tool"] == "mcp__srv__echo" for a in answers)  # default: ask

            await editor.request("agent/prompt", {"sessionId": session,
                                                  "text": "/fix 42 in the parser"})
            last_user = model.requests[-1]["messages"][-1]
            assert "Please fix issue #42. Details: 42 in the parser" in json.dumps(last_user)
            assert (ws / ".lsp-agent" / "settings.local.json").is_file()  # remembered

            # agent/mcpResources offers the server's resources as mentions (no bodies) that
            # the prompt hook reads when one is sent back.
            found = await editor.request("agent/mcpResources",
                                         {"sessionId": session, "query": "release notes"})
            assert [r["mention"] for r in found["resources"]] == ["@srv:test://notes/readme"]
            assert "NOTES-BODY" not in json.dumps(found)
            model.load({"turns": [{"content": "read"}]})
            await editor.request("agent/prompt", {"sessionId": session, "text":
                                                  f"Summarise {found['resources'][0]['mention']}"})
            assert "NOTES-BODY" in json.dumps(model.requests[-1]["messages"][-1])
        finally:
            await editor.client.shutdown_session()
