"""Dream end to end: a real ``lsp-agent serve`` whose Dream gates pass after one session runs
its Dream agent on its own once the server is idle, through the real SDK against the scripted
model; the client sees it as ``agent/dreamStatus`` notifications (its phases and its agent's
events) and the memory folder holds the result. ``agent/dream {force: true}`` runs it on demand;
two servers on one workspace run one Dream at a time; ``agent/dreamCancel`` stops one and
leaves the memory as it was."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.context.auto_memory import AutoMemory
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.sessions.dream import DreamLock
from lsp_agent.sessions.dream_agent import SYSTEM
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import WAIT, Editor, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

MARKER = SYSTEM.split(".")[0]
INDEX_LINE = "- [style](style.md) (feedback): the user wants tabs"


def use(tool: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool, "input": tool_input}


def scenario(transcripts: Path, slow_ms: int = 0) -> dict[str, Any]:
    """Turn 0 answers the user's session; a Dream (its system prompt) walks the four phases."""
    return {"turns": [
        {"content": "noted: tabs", "when": [{"system_contains": MARKER, "content": [
            use("DreamPhase", phase="orient"), use("Memory", action="list")]}]},
        {"content": [use("DreamPhase", phase="gather"),
                     use("Grep", pattern="tabs", path=str(transcripts), output_mode="content")],
         "delay_ms": slow_ms},
        {"content": [use("DreamPhase", phase="consolidate"), use(
            "Memory", action="write", name="style", type="feedback",
            description="the user wants tabs", content="Indent with tabs (said on 2026-12-01).")]},
        {"content": [use("DreamPhase", phase="prune"),
                     use("Memory", action="index", content=INDEX_LINE)]},
        {"content": "Saved the user's indentation preference."}]}


def folders(tmp_path: Path, workspace: Path) -> tuple[Path, Path]:
    state = tmp_path / ".state"
    return (state / "memory" / workspace_slug(workspace),
            state / "projects" / workspace_slug(workspace))


class Statuses:
    def __init__(self, editor: Editor):
        self.items: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()

        @editor.client.feature("agent/dreamStatus")
        async def on_status(params: Any) -> None:
            async with self.changed:
                self.items.append(plain(params))
                self.changed.notify_all()

    async def until(self, test: Any) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: test(self.items)), WAIT)

    def ended(self) -> list[dict[str, Any]]:
        return [s for s in self.items if s["status"] != "running"]

    async def wait_ended(self, count: int) -> list[dict[str, Any]]:
        await self.until(lambda items: len(self.ended()) >= count)
        return self.ended()


async def test_dream_runs_when_idle_and_on_demand(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    memory_folder, transcripts = folders(tmp_path, workspace)
    with ScriptedModelServer(scenario(transcripts)) as model:
        editor = await start_editor(model.base_url, tmp_path, dream={
            "minSessions": 1, "minHours": 0, "idleSeconds": 0.2})
        statuses = Statuses(editor)
        try:
            session = await editor.new_session(workspace)
            await editor.request("agent/prompt", {"sessionId": session,
                                                  "text": "I prefer tabs, remember that"})
            [done] = await statuses.wait_ended(1)
            assert done["status"] == "done", done
            assert done["workspaceUri"] == uri(workspace)
            assert done["report"] == "Saved the user's indentation preference."
            assert done["written"] == ["style.md"] and done["sessions"] >= 1
            assert done["turns"] == 5 and done["usage"]["outputTokens"] > 0
            running = [s for s in statuses.items if s["status"] == "running"]
            phases = [s.get("phase") for s in running if "event" not in s]
            assert phases == ["gates", "orient", "gather", "consolidate", "prune"]
            # The agent's events come with the phase it is in.
            grep = next(s for s in running if s.get("event", {}).get("type") == "tool_result"
                        and s["event"]["name"] == "Grep")
            assert grep["phase"] == "gather" and "I prefer tabs" in grep["event"]["content"]
            assert not any(s.get("event", {}).get("type") == "text_delta" for s in running)
            assert "Indent with tabs" in (memory_folder / "style.md").read_text()
            assert (memory_folder / "MEMORY.md").read_text() == INDEX_LINE + "\n"
            dream_requests = [b for b in model.requests if MARKER in b["system"][0]["text"]]
            assert len(dream_requests) == 5

            forced = await editor.request("agent/dream", {"workspaceUri": uri(workspace),
                                                          "force": True})
            assert forced == {"started": True}
            assert [s["status"] for s in await statuses.wait_ended(2)] == ["done", "done"]
            assert await editor.request("agent/dreamCancel", {"workspaceUri": uri(workspace)}) \
                == {"cancelled": False}  # nothing is running any more
        finally:
            await editor.client.shutdown_session()


async def test_two_servers_one_dream_and_a_cancel_leaves_the_memory(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    memory_folder, transcripts = folders(tmp_path, workspace)
    AutoMemory(memory_folder).write_topic("old", "an older note", "project", "kept")
    before = {p.name: p.read_text() for p in memory_folder.glob("*.md")}
    with ScriptedModelServer(scenario(transcripts, slow_ms=3000)) as model:
        first = await start_editor(model.base_url, tmp_path, dream={"enabled": False})
        second = await start_editor(model.base_url, tmp_path, dream={"enabled": False})
        one, two = Statuses(first), Statuses(second)
        target = {"workspaceUri": uri(workspace), "force": True}
        try:
            assert await first.request("agent/dream", target) == {"started": True}
            await one.until(lambda items: any(s.get("phase") == "orient" for s in items))
            assert await second.request("agent/dream", target) == {"started": True}
            [busy] = await two.wait_ended(1)
            assert busy["status"] == "skipped" and "another process" in busy["reason"]

            assert await first.request("agent/dreamCancel", {"workspaceUri": uri(workspace)}) \
                == {"cancelled": True}
            [stopped] = await one.wait_ended(1)
            assert stopped["status"] == "cancelled"
            assert {p.name: p.read_text() for p in memory_folder.glob("*.md")} == before
            assert DreamLock(memory_folder).last_run() == 0.0  # rolled back: never ran
            assert not list(memory_folder.parent.glob(".*dream-*"))  # no staging copy left
        finally:
            await first.client.shutdown_session()
            await second.client.shutdown_session()
