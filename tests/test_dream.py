"""Dream: its gates, its four phases against the scripted model through the real SDK, and what
a failure, a cancel, a killed run and a second process leave behind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.context.auto_memory import AutoMemory
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.dream import LOCK, SYSTEM, Dream, DreamLock, DreamPolicy
from lsp_agent.store import Store, entries

pytestmark = pytest.mark.asyncio
MARKER = SYSTEM.split(".")[0]

SAVE = {"type": "tool_use", "name": "save_memory", "input": {
    "files": [{"name": "testing", "type": "project", "description": "tests: pytest -x -q",
               "content": "Run `pytest -x -q` (merged from two notes, 2026-12-01)."}],
    "delete": ["tests-old", "pytest-notes"],
    "index": "- [testing](testing.md) (project): tests: pytest -x -q\n",
    "report": "Merged two notes about the tests into testing.md."}}


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture
def memory(tmp_path) -> AutoMemory:
    memory = AutoMemory(tmp_path / "memory" / "proj")
    memory.write_topic("tests-old", "tests run with pytest", "project", "pytest -q")
    memory.write_topic("pytest-notes", "pytest: stop at the first failure", "feedback", "-x")
    return memory


async def saved_sessions(tmp_path: Path, prompts: list[str]) -> Path:
    store = Store(tmp_path / "state")
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    for prompt in prompts:
        writer = await store.create(workspace)
        writer.append(entries.user_prompt(prompt, [{"type": "text", "text": prompt}]))
        writer.append(entries.assistant([{"type": "text", "text": f"Done: {prompt}"}], "m"))
        await writer.close()
    return store.layout.project(workspace)


def dream_of(model, memory: AutoMemory, folder: Path, **policy: Any) -> Dream:
    settings = ModelSettings(model="dream-model", api_key="k", base_url=model.base_url,
                             backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)
    return Dream(memory, folder, ModelService(settings, client),
                 DreamPolicy(**{"min_hours": 24, "min_sessions": 2, **policy}))


def snapshot(memory: AutoMemory) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(memory.folder.glob("*.md"))}


async def test_it_consolidates_after_enough_sessions_and_then_waits(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["we use pytest -x -q now"])
    (folder / "prompts.history.jsonl").write_text("{}\n")  # not a session
    dream = dream_of(model, memory, folder)
    skipped = await dream.run()
    assert (skipped.status, skipped.reason) == ("skipped", "1 session(s) since the last run; "
                                                "it runs after 2")
    assert model.requests == []  # the gates come before any model call

    await saved_sessions(tmp_path, ["remember: tests stop at the first failure"])
    model.load({"turns": [{"content": [SAVE]}]})
    phases: list[str] = []
    dream.report = lambda update: phases.append(update["phase"])
    result = await dream.run()
    assert result.status == "done", result.reason
    assert phases == ["orient", "gather", "consolidate", "prune"]
    assert result.written == ["testing.md"] and sorted(result.deleted) == [
        "pytest-notes", "tests-old"]
    assert result.report == "Merged two notes about the tests into testing.md."
    assert set(snapshot(memory)) == {"MEMORY.md", "testing.md"}
    assert memory.raw_index() == "- [testing](testing.md) (project): tests: pytest -x -q\n"

    # What the model was given: the memory and the sessions' prompts, as data.
    [request] = model.requests
    assert request["system"][0]["text"].startswith(MARKER)
    assert request["tool_choice"] == {"type": "tool", "name": "save_memory"}
    text = request["messages"][0]["content"][0]["text"]
    assert "pytest: stop at the first failure" in text  # a topic file (orient)
    assert "we use pytest -x -q now" in text and "stop at the first failure" in text  # gather
    assert DreamLock(memory.folder).last_run() > 0

    again = await dream.run()  # within 24 h of the last run
    assert again.status == "skipped" and "less than 24 h" in again.reason
    assert len(model.requests) == 1


async def test_a_failed_run_leaves_the_memory_and_does_not_count(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    before = snapshot(memory)
    model.load({"turns": [{"content": "I will not use the tool."}]})
    result = await dream_of(model, memory, folder).run()
    assert result.status == "failed" and "save_memory" in result.reason
    assert snapshot(memory) == before
    assert DreamLock(memory.folder).last_run() == 0.0
    model.load({"turns": [{"content": [SAVE]}]})
    assert (await dream_of(model, memory, folder).run()).status == "done"


async def test_a_cancelled_run_rolls_the_lock_back_and_keeps_the_files(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    lock = memory.folder / LOCK
    lock.write_text(json.dumps({"state": "done"}))
    import os

    os.utime(lock, (1_000_000.0, 1_000_000.0))  # an old successful run
    before = snapshot(memory)
    model.load({"turns": [{"content": [SAVE], "delay_ms": 2000}]})  # a slow answer
    dream = dream_of(model, memory, folder, min_hours=1)
    consolidating = asyncio.Event()
    dream.report = lambda u: consolidating.set() if u["phase"] == "consolidate" else None
    task = asyncio.ensure_future(dream.run())
    await asyncio.wait_for(consolidating.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert snapshot(memory) == before
    assert DreamLock(memory.folder).last_run() == 1_000_000.0
    assert lock.stat().st_mtime == 1_000_000.0


async def test_a_killed_run_counts_as_never_having_run(memory):
    # What a SIGKILL mid-run leaves: the file still says "running", with the run before it.
    (memory.folder / LOCK).write_text(json.dumps({"state": "running", "pid": 999999,
                                                  "previous": 1234.0}))
    assert DreamLock(memory.folder).last_run() == 1234.0
    lock = DreamLock(memory.folder)
    lock.acquire()
    lock.release(succeeded=False)
    assert DreamLock(memory.folder).last_run() == 1234.0


HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


async def test_one_dream_at_a_time_across_processes(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD, str(memory.folder / LOCK),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert other.stdout is not None
        assert await asyncio.wait_for(other.stdout.readline(), 30) == b"held\n"
        busy = await dream_of(model, memory, folder).run(force=True)
        assert busy.status == "skipped" and "another process" in busy.reason
        assert model.requests == []
    finally:
        other.kill()  # the kernel drops its lock with it
        await asyncio.wait_for(other.wait(), 30)
    model.load({"turns": [{"content": [SAVE]}]})
    assert (await dream_of(model, memory, folder).run(force=True)).status == "done"


async def test_force_skips_the_time_and_session_gates(model, memory, tmp_path):
    folder = tmp_path / "no-sessions"
    model.load({"turns": [{"content": [SAVE]}]})
    result = await dream_of(model, memory, folder, min_sessions=50).run(force=True)
    assert result.status == "done" and result.sessions == 0


async def test_what_the_model_gets_wrong_is_refused_file_by_file(model, memory, tmp_path):
    bad = {"type": "tool_use", "name": "save_memory", "input": {
        "files": [{"name": "../../escape", "type": "project", "description": "d",
                   "content": "x"},
                  {"name": "good", "type": "user", "description": "the user likes tabs",
                   "content": "tabs"}],
        "delete": ["../../etc/passwd"], "index": "x\n" * 500, "report": "r"}}
    model.load({"turns": [{"content": [bad]}]})
    result = await dream_of(model, memory, tmp_path / "none").run(force=True)
    assert result.status == "done" and result.written == ["good.md"] and result.deleted == []
    assert not (tmp_path / "escape.md").exists()
    # The oversized index was not written: the index lines the writes keep current stay.
    assert "- [good](good.md) (user): the user likes tabs" in memory.raw_index()
