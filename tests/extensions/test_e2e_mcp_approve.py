"""``agent/mcpApprove``: the user approves a project MCP server from the editor's view, before
the session asked (no prompt yet) or while its question is still waiting in the chat. A real
``lsp-agent serve`` over stdio and real MCP servers as subprocesses."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.scripted.server import ScriptedModelServer
from tests.e2e_harness import WAIT, start_editor
from tests.extensions.helpers import SERVER

pytestmark = [pytest.mark.e2e]


def workspace(root: Path) -> Path:
    ws = root / "ws"
    ws.mkdir()
    servers = {name: {"command": sys.executable, "args": [SERVER]} for name in ("first", "second")}
    (ws / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))
    return ws


async def wait_state(editor: Any, session: str, name: str, *states: str) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for _ in range(int(WAIT * 20)):  # no event announces the connection: poll
        status = await editor.request("agent/mcpStatus", {"sessionId": session})
        entry = next(s for s in status["servers"] if s["name"] == name)
        if entry["state"] in states:
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {states}: {entry}")


def hold_question(editor: Any, tool_use_id: str, otherwise: str) -> asyncio.Event:
    """The chat's question ``tool_use_id`` stays unanswered (the user turns to the MCP view
    instead); every other question gets ``otherwise``. The event is set once it was asked."""
    asked = asyncio.Event()

    async def answer(params: dict[str, Any]) -> dict[str, Any]:
        if params["toolUseId"] == tool_use_id:
            asked.set()
            await asyncio.sleep(3600)
        return {"decision": otherwise}

    editor.permission = answer
    return asked


async def test_approved_from_the_view_before_any_prompt(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with ScriptedModelServer({"turns": [{"content": "ok"}]}) as model:
        editor = await start_editor(model.base_url, tmp_path)
        try:
            session = await editor.new_session(ws)
            approve = {"sessionId": session, "server": "first"}
            entry = await editor.request("agent/mcpApprove", approve)
            assert entry["state"] in ("starting", "connected")
            await wait_state(editor, session, "first", "connected")
            # Not remembered for the project unless asked to.
            assert not (ws / ".lsp-agent" / "settings.local.json").exists()
            await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
            await wait_state(editor, session, "second", "needs_approval", "starting", "connected")
            # The first prompt asks about the server still awaiting approval only.
            for _ in range(int(WAIT * 20)):
                if editor.permission_requests:
                    break
                await asyncio.sleep(0.05)
            assert [r["toolUseId"] for r in editor.permission_requests] == ["mcp-approval-second"]
            # Approving again, or an unknown server: nothing changes / a clear error.
            again = await editor.request("agent/mcpApprove", approve)
            assert again["state"] == "connected"
            with pytest.raises(JsonRpcInvalidParams, match="no MCP server named 'nope'"):
                await editor.request("agent/mcpApprove", {"sessionId": session, "server": "nope"})
        finally:
            await editor.client.shutdown_session()


async def test_approved_from_the_view_while_the_question_waits(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with ScriptedModelServer({"turns": [{"content": "ok"}]}) as model:
        editor = await start_editor(model.base_url, tmp_path, permissionTimeoutSeconds=60)
        asked = hold_question(editor, "mcp-approval-first", otherwise="deny")
        try:
            session = await editor.new_session(ws)
            await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
            await asyncio.wait_for(asked.wait(), WAIT)
            await editor.request("agent/mcpApprove", {"sessionId": session, "server": "first",
                                                      "remember": True})
            await wait_state(editor, session, "first", "connected")
            # The waiting question was withdrawn and the next server asked about (and denied).
            for _ in range(int(WAIT * 20)):
                if len(editor.permission_requests) == 2:
                    break
                await asyncio.sleep(0.05)
            assert [r["toolUseId"] for r in editor.permission_requests] == [
                "mcp-approval-first", "mcp-approval-second"]
            second = await wait_state(editor, session, "second", "needs_approval")
            assert second["tools"] == 0
            settings = json.loads((ws / ".lsp-agent" / "settings.local.json").read_text())
            assert settings["enabledMcpjsonServers"] == ["first"]
        finally:
            await editor.client.shutdown_session()


async def test_refused_from_the_view_is_not_asked_again(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with ScriptedModelServer({"turns": [{"content": "ok"}, {"content": "ok"}]}) as model:
        editor = await start_editor(model.base_url, tmp_path, permissionTimeoutSeconds=60)
        asked = hold_question(editor, "mcp-approval-second", otherwise="allow")
        try:
            session = await editor.new_session(ws)
            # Before any prompt: "first" refused from the view.
            refuse = {"sessionId": session, "server": "first", "approve": False}
            refused = await editor.request("agent/mcpApprove", refuse)
            assert (refused["state"], refused["denied"]) == ("needs_approval", True)
            await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
            await asyncio.wait_for(asked.wait(), WAIT)
            # The first prompt asked about "second" only; refusing it withdraws that question.
            await editor.request("agent/mcpApprove", {"sessionId": session, "server": "second",
                                                      "approve": False})
            await editor.request("agent/prompt", {"sessionId": session, "text": "again"})
            assert [r["toolUseId"] for r in editor.permission_requests] == ["mcp-approval-second"]
            for name in ("first", "second"):
                entry = await wait_state(editor, session, name, "needs_approval")
                assert entry["denied"] is True and entry["tools"] == 0
            # Changing one's mind: approving a refused server starts it.
            await editor.request("agent/mcpApprove", {"sessionId": session, "server": "first"})
            first = await wait_state(editor, session, "first", "connected")
            assert first["denied"] is False
            assert not (ws / ".lsp-agent" / "settings.local.json").exists()
        finally:
            await editor.client.shutdown_session()
