"""Background shells, the bad cases: more than the limit at once, a command that writes
without end, and a session that closes with commands running. A real Session, the real SDK
against the scripted model server, real processes (asserted on the host's process table)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.tools.background import MAX_KEPT_BYTES, MAX_RUNNING
from lsp_agent.types import events as ev
from tests.e2e_harness import unique_duration, wait_for_processes
from tests.test_sessions_inprocess import Editor, Events, make_session

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
WAIT = 60.0


def bash_bg(command: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Bash",
            "input": {"command": command, "run_in_background": True}}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


async def test_twenty_at_once_are_bounded_and_all_die_with_the_session(model, workspace):
    marker = unique_duration(300)
    model.load({"turns": [{"content": [bash_bg(f"sleep {marker}") for _ in range(20)]},
                          {"content": "ok"}]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
        results = events.of(ev.ToolResult)
        started = [r for r in results if not r.is_error]
        refused = [r for r in results if r.is_error]
        assert len(started) == MAX_RUNNING and len(refused) == 20 - MAX_RUNNING
        assert all(f"{MAX_RUNNING} background commands are running already" in r.content
                   for r in refused)
        assert len(session.tasks.running()) == MAX_RUNNING
        assert await wait_for_processes(f"sleep {marker}", present=True)
    finally:
        await session.close()
    assert await wait_for_processes(marker, present=False) == [], "closing the session ends them"
    assert {t["status"] for t in session.tasks.summaries()} == {"stopped"}


async def test_endless_output_is_capped_and_the_command_can_still_be_stopped(model, workspace):
    model.load({"turns": [{"content": [bash_bg("yes ENDLESS-OUTPUT")]}, {"content": "ok"}]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
        (task,) = session.tasks.running()
        while task.total < 4 * MAX_KEPT_BYTES:  # noqa: ASYNC110 - no event for "wrote more"
            await asyncio.sleep(0.05)
        assert len(task.kept) <= MAX_KEPT_BYTES, "only the newest output is kept"
        output = await session.tasks.read(task.id, block=False, wait=0)
        assert "older bytes were not kept" in output and "more bytes: call TaskOutput" in output
        assert len(output) < 40_000
        assert "Stopped task" in await asyncio.wait_for(session.tasks.stop(task.id), WAIT)
        assert task.status == "stopped" and task.done.is_set()
    finally:
        await session.close()


async def test_the_agent_is_told_when_a_task_ends(model, workspace):
    command = "while [ ! -f go ]; do sleep 0.05; done; echo quick"  # ends when told to
    model.load({"turns": [{"content": [bash_bg(command)]}, {"content": "started"},
                          {"content": "seen"}]})
    events = Events()
    session = make_session(model, workspace, events, Editor(), mode="bypassPermissions")
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
        assert "Background task" not in str(model.requests), "still running: nothing to tell"
        (workspace / "go").touch()
        ended = await events.first(ev.BackgroundTaskEnded)
        await asyncio.wait_for(session.prompt("and now?"), WAIT)
    finally:
        await session.close()
    assert ended.status == "completed" and ended.exit_code == 0
    last = model.requests[-1]["messages"][-1]
    texts = [b["text"] for b in last["content"] if b.get("type") == "text"]
    assert texts[0] == "and now?"
    assert f"Background task {ended.task_id} ({command!r}) ended: completed, exit code 0" in (
        texts[1])
