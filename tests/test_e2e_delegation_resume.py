"""A coordinator session resumed in a new ``lsp-agent serve`` is a coordinator again, and a
named child from before the resume is continued with SendMessage: its conversation is read
back from its sidechain transcript, which goes on. Real servers over stdio, the real SDK over
HTTP against the scripted model."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from lsp_agent.store.layout import StateLayout
from lsp_agent.types import events as ev
from tests.e2e_harness import start_editor

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
WORKER = {"system_contains": "Shared scratchpad of this session"}
COORDINATOR = "You are the coordinator."


def tool(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": args}


async def test_a_resumed_coordinator_continues_its_named_worker(model, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("X = 1\n")
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    model.load({"turns": [
        {"content": [tool("Agent", description="scout task", prompt="Find the SCOUT-MARK.",
                          subagent_type="general-purpose", name="scout")],
         "when": [{**WORKER, "content": "SCOUT-REPORT-1"}]},
        {"content": "noted"}]})
    first = await start_editor(model.base_url, tmp_path, server_env=env)
    try:
        session = await first.new_session(workspace, mode="default", coordinator=True)
        await first.request("agent/prompt", {"sessionId": session, "text": "scout"})
        (started,) = first.of(session, ev.SubagentStarted)
    finally:
        await first.client.shutdown_session()

    model.load({"turns": [
        {"content": "-"}, {"content": "-", "when": [{**WORKER, "content": "SCOUT-REPORT-2"}]},
        {"content": [tool("SendMessage", to="scout", message="And the SECOND-ASK?")]},
        {"content": "done"}]})
    second = await start_editor(model.base_url, tmp_path, server_env=env)
    try:
        await second.request("agent/resumeSession", {"sessionId": session,
                                                     "workspaceUri": workspace.as_uri()})
        await second.request("agent/prompt", {"sessionId": session, "text": "ask it again"})
        # Coordinator mode came back: its prompt and only the orchestrating tools.
        own = [r for r in model.requests if "ask it again" in json.dumps(r["messages"])
               and COORDINATOR in json.dumps(r.get("system"))]
        assert own, "the resumed session's requests carry the coordinator prompt"
        tools = {t["name"] for t in own[0]["tools"]}
        assert "Agent" in tools and "SendMessage" in tools
        assert not tools & {"Edit", "Write", "Bash"}
        # The worker went on with its conversation from before the resume.
        (sent,) = [e for e in second.of(session, ev.ToolResult) if e.name == "SendMessage"]
        assert not sent.is_error and "SCOUT-REPORT-2" in sent.content
        (again,) = second.of(session, ev.SubagentStarted)
        assert again.agent_id == started.agent_id
        continued = [r for r in model.requests if "SECOND-ASK" in json.dumps(r["messages"])
                     and "Shared scratchpad" in json.dumps(r.get("system"))]
        history = json.dumps(continued[0]["messages"])
        assert "Find the SCOUT-MARK." in history and "SCOUT-REPORT-1" in history
        # Its transcript goes on in the same file.
        transcript = (StateLayout(tmp_path / ".state").session_dir(workspace, session)
                      / "subagents" / f"{started.agent_id}.jsonl")
        text = transcript.read_text()
        assert text.count('"type":"session"') + text.count('"type": "session"') == 1
        assert "SCOUT-REPORT-1" in text and "SECOND-ASK" in text
    finally:
        await second.client.shutdown_session()
