"""Dream end to end: a real ``lsp-agent serve`` whose Dream gates pass after one session runs
it on its own once the server is idle, through the real SDK against the scripted model; the
client sees it as ``agent/dreamStatus`` notifications and the memory folder holds the result.
``agent/dream {force: true}`` runs it on demand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.sessions.dream import SYSTEM
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import WAIT, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

MARKER = SYSTEM.split(".")[0]
SAVE = {"type": "tool_use", "name": "save_memory", "input": {
    "files": [{"name": "style", "type": "feedback", "description": "the user wants tabs",
               "content": "Indent with tabs (said on 2026-12-01)."}],
    "delete": [], "index": "- [style](style.md) (feedback): the user wants tabs\n",
    "report": "Saved the user's indentation preference."}}
SCENARIO = {"turns": [{"content": "noted: tabs", "when": [
    {"system_contains": MARKER, "content": [SAVE]}]}]}


@pytest.fixture
def model():
    with ScriptedModelServer(SCENARIO) as server:
        yield server


async def test_dream_runs_when_idle_and_on_demand(model, tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    editor = await start_editor(model.base_url, tmp_path, dream={
        "minSessions": 1, "minHours": 0, "idleSeconds": 0.2})
    statuses: list[dict[str, Any]] = []
    changed = asyncio.Condition()

    @editor.client.feature("agent/dreamStatus")
    async def on_status(params: Any) -> None:
        async with changed:
            statuses.append(plain(params))
            changed.notify_all()

    async def ended(count: int) -> list[dict[str, Any]]:
        async with changed:
            await asyncio.wait_for(changed.wait_for(lambda: len(
                [s for s in statuses if s["status"] != "running"]) >= count), WAIT)
        return [s for s in statuses if s["status"] != "running"]

    try:
        session = await editor.new_session(workspace)
        await editor.request("agent/prompt", {"sessionId": session,
                                              "text": "I prefer tabs, remember that"})
        [done] = await ended(1)
        assert done["status"] == "done", done
        assert done["workspaceUri"] == uri(workspace)
        assert done["report"] == "Saved the user's indentation preference."
        assert done["written"] == ["style.md"] and done["sessions"] >= 1
        phases = [s.get("phase") for s in statuses if s["status"] == "running"]
        assert phases == ["gates", "orient", "gather", "consolidate", "prune"]
        folder = tmp_path / ".state" / "memory" / workspace_slug(workspace)
        assert "Indent with tabs" in (folder / "style.md").read_text()
        dream_requests = [b for b in model.requests if MARKER in b["system"][0]["text"]]
        assert len(dream_requests) == 1
        assert "I prefer tabs" in dream_requests[0]["messages"][0]["content"][0]["text"]

        forced = await editor.request("agent/dream", {"workspaceUri": uri(workspace),
                                                      "force": True})
        assert forced == {"started": True}
        assert [s["status"] for s in await ended(2)] == ["done", "done"]
        assert await editor.request("agent/dreamCancel", {"workspaceUri": uri(workspace)}) \
            == {"cancelled": False}  # nothing is running any more
    finally:
        await editor.client.shutdown_session()
