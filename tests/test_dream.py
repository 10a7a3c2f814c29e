"""Dream: its gates, its agent (the real agent loop against the scripted model through the real
SDK) with its own tools and rules, and what a failure, a cancel, a killed run, a turn limit and
a second process leave behind."""

from __future__ import annotations

import asyncio
import json
import os
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
from lsp_agent.sessions.dream import LOCK, Dream, DreamLock, DreamPolicy
from lsp_agent.sessions.dream_agent import SYSTEM
from lsp_agent.sessions.dream_staging import STAGING_MARK, Staging
from lsp_agent.store import Store, entries
from lsp_agent.types import events as ev

pytestmark = pytest.mark.asyncio
MARKER = SYSTEM.split(".")[0]
DREAM_TOOLS = ["Bash", "DreamPhase", "Glob", "Grep", "Memory", "Read"]


def use(tool: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool, "input": tool_input}


def phase(name: str) -> dict[str, Any]:
    return use("DreamPhase", phase=name)


def consolidating(sessions: Path, **last: Any) -> dict[str, Any]:
    """The four phases as a model would walk them, then a short report."""
    return {"turns": [
        {"content": [phase("orient"), use("Memory", action="list")]},
        {"content": [phase("gather"), use("Grep", pattern="pytest", path=str(sessions),
                                          output_mode="content")]},
        {"content": [phase("consolidate"), use(
            "Memory", action="write", name="testing", type="project",
            description="tests: pytest -x -q",
            content="Run `pytest -x -q` (merged from two notes, 2026-12-01).")]},
        {"content": [phase("prune"), use("Memory", action="delete", name="tests-old"),
                     use("Memory", action="delete", name="pytest-notes"),
                     use("Memory", action="index",
                         content="- [testing](testing.md) (project): tests: pytest -x -q")]},
        {"content": "Merged two notes about the tests into testing.md.", **last},
    ]}


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


def results_in(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results of a request's last user message."""
    return [b for b in request["messages"][-1]["content"] if b.get("type") == "tool_result"]


def text_of(result: dict[str, Any]) -> str:
    content = result["content"]
    return content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)


def leftovers(memory: AutoMemory) -> list[str]:
    return [p.name for p in memory.folder.parent.iterdir() if STAGING_MARK in p.name]


async def test_it_consolidates_after_enough_sessions_and_then_waits(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["we use pytest -x -q now"])
    (folder / "prompts.history.jsonl").write_text("{}\n")  # not a session
    dream = dream_of(model, memory, folder)
    skipped = await dream.run()
    assert (skipped.status, skipped.reason) == ("skipped", "1 session(s) since the last run; "
                                                "it runs after 2")
    assert model.requests == []  # the gates come before any model call

    await saved_sessions(tmp_path, ["remember: tests stop at the first failure"])
    model.load(consolidating(folder))
    updates: list[dict[str, Any]] = []
    dream.report = updates.append
    result = await dream.run()
    assert result.status == "done", result.reason
    assert updates == [{"phase": "orient"}, {"phase": "gather", "sessions": 2},
                       {"phase": "consolidate"}, {"phase": "prune"}]
    assert result.written == ["testing.md"] and result.deleted == ["pytest-notes.md",
                                                                    "tests-old.md"]
    assert result.report == "Merged two notes about the tests into testing.md."
    assert result.turns == 5 and result.usage.output_tokens > 0
    assert set(snapshot(memory)) == {"MEMORY.md", "testing.md"}
    assert memory.raw_index() == "- [testing](testing.md) (project): tests: pytest -x -q\n"
    assert leftovers(memory) == []  # the staging copy is gone

    # The same agent loop, with exactly its own tools, on every request.
    assert len(model.requests) == 5
    for request in model.requests:
        assert request["system"][0]["text"].startswith(MARKER)
        assert sorted(t["name"] for t in request["tools"]) == DREAM_TOOLS
    task = model.requests[0]["messages"][0]["content"][0]["text"]
    assert all(str(p) in task for p in folder.glob("*.jsonl") if "prompts" not in p.name)
    assert "prompts.history" not in task
    listed = text_of(results_in(model.requests[1])[1])  # orient: Memory list
    assert "pytest-notes (feedback): pytest: stop at the first failure" in listed
    grepped = text_of(results_in(model.requests[2])[1])  # gather: Grep in the transcripts
    assert "we use pytest -x -q now" in grepped and "stop at the first failure" in grepped
    assert DreamLock(memory.folder).last_run() > 0

    again = await dream.run()  # within 24 h of the last run
    assert again.status == "skipped" and "less than 24 h" in again.reason
    assert len(model.requests) == 5


async def test_memory_changes_only_when_the_run_ends(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    before = snapshot(memory)
    scenario = consolidating(folder, delay_ms=300)
    model.load(scenario)
    dream = dream_of(model, memory, folder)
    seen: dict[str, dict[str, str]] = {}

    def on_event(event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ModelRequest) and event.round == 5:  # all writes are made
            seen["during"] = snapshot(memory)

    dream.events = on_event
    result = await dream.run()
    assert result.status == "done", result.reason
    assert seen["during"] == before  # the agent wrote its copy only
    assert set(snapshot(memory)) == {"MEMORY.md", "testing.md"}


async def test_reads_outside_its_folders_and_writing_commands_are_refused(model, memory,
                                                                         tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    (folder / ".env").write_text("API_KEY=hunter2\n")
    outside = tmp_path / "ws" / "notes.txt"
    outside.write_text("not for Dream\n")
    transcript = next(p for p in folder.glob("*.jsonl"))
    kept = folder / transcript.stem / "tool-results"
    kept.mkdir(parents=True)
    (kept / "toolu_1.txt").write_text("unredacted output\n")
    model.load({"turns": [
        {"content": [use("Read", path=str(outside)), use("Read", path=str(folder / ".env")),
                     use("Read", path=str(transcript)), use("Read", path="MEMORY.md"),
                     use("Grep", pattern="not for", path=str(tmp_path / "ws")),
                     use("Read", path=str(kept / "toolu_1.txt")),
                     use("Grep", pattern="unredacted", path=str(folder))]},
        {"content": [use("Bash", command="touch made-by-dream"),
                     use("Bash", command="echo x > index-copy.md"),
                     use("Bash", command=f"cat {outside}"),
                     use("Bash", command="ls && grep -c tests MEMORY.md")]},
        {"content": "Nothing to change."}]})
    result = await dream_of(model, memory, folder).run(force=True)
    assert result.status == "done", result.reason

    reads = results_in(model.requests[1])
    assert [r.get("is_error", False) for r in reads] == [True, True, False, False, True, True,
                                                         False]
    assert "Permission denied" in text_of(reads[0]) and "outside" in text_of(reads[0])
    assert "hunter2" not in json.dumps(model.requests)  # the secret file never reached it
    assert '"prompt"' in text_of(reads[2]) and "tests-old" in text_of(reads[3])
    assert "not for Dream" not in text_of(reads[4])
    assert "unredacted output" not in json.dumps(model.requests)  # a session's tool results

    shell = results_in(model.requests[2])
    assert [r.get("is_error", False) for r in shell] == [True, True, True, False]
    assert all("Permission denied" in text_of(r) for r in shell[:3])
    assert "dontAsk" in text_of(shell[0])  # refused by rule: nobody is asked
    assert "not for Dream" not in text_of(shell[2])
    assert "pytest-notes.md" in text_of(shell[3])  # read-only commands run, in the copy
    assert not any(p.name in {"made-by-dream", "index-copy.md"}
                   for p in tmp_path.rglob("*"))


async def test_turn_limit_reached_fails_and_writes_nothing(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    before = snapshot(memory)
    model.load(consolidating(folder))
    result = await dream_of(model, memory, folder, max_turns=3).run()
    assert result.status == "failed" and "turn limit (3 model requests)" in result.reason
    assert result.turns == 3 and len(model.requests) == 3
    assert snapshot(memory) == before  # its Memory write went to the copy, now gone
    assert leftovers(memory) == []
    assert DreamLock(memory.folder).last_run() == 0.0  # the run does not count
    model.load(consolidating(folder))
    assert (await dream_of(model, memory, folder).run()).status == "done"


async def test_the_token_budget_stops_the_run(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    before = snapshot(memory)
    scenario = consolidating(folder)
    for turn in scenario["turns"]:
        turn["usage"] = {"input_tokens": 4_000, "output_tokens": 100,
                         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    model.load(scenario)
    result = await dream_of(model, memory, folder, max_tokens=10_000).run()
    assert result.status == "failed" and "token budget (10,000)" in result.reason
    assert len(model.requests) == 3 and snapshot(memory) == before


async def test_a_model_that_never_finishes_properly_fails(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    before = snapshot(memory)
    model.load({"turns": [{"content": [use("Memory", action="write", name="x", type="user",
                                           description="d", content="c")]},
                          {"content": "", "faults": [{"http_status": 400}] * 5}]})
    result = await dream_of(model, memory, folder).run()
    assert result.status == "failed" and result.reason
    assert snapshot(memory) == before and DreamLock(memory.folder).last_run() == 0.0


async def test_a_cancelled_run_rolls_the_lock_back_and_keeps_the_files(model, memory, tmp_path):
    folder = await saved_sessions(tmp_path, ["a", "b"])
    lock = memory.folder / LOCK
    lock.write_text(json.dumps({"state": "done"}))
    os.utime(lock, (1_000_000.0, 1_000_000.0))  # an old successful run
    before = snapshot(memory)
    scenario = consolidating(folder)
    scenario["turns"][3]["delay_ms"] = 2000  # slow, after the copy has a new file
    model.load(scenario)
    dream = dream_of(model, memory, folder, min_hours=1)
    pruning = asyncio.Event()
    dream.events = lambda e: pruning.set() if isinstance(e, ev.ModelRequest) \
        and e.round == 4 else None
    task = asyncio.ensure_future(dream.run())
    await asyncio.wait_for(pruning.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert snapshot(memory) == before
    assert DreamLock(memory.folder).last_run() == 1_000_000.0
    assert lock.stat().st_mtime == 1_000_000.0
    assert leftovers(memory) == []


async def test_a_killed_run_counts_as_never_having_run_and_its_copy_goes(model, memory,
                                                                        tmp_path):
    # What a SIGKILL mid-run leaves: the file still says "running", with the run before it,
    # and the staging copy of the memory beside the folder.
    (memory.folder / LOCK).write_text(json.dumps({"state": "running", "pid": 999999,
                                                  "previous": 1234.0}))
    stale = memory.folder.parent / f".proj{STAGING_MARK}abc123" / "memory"
    stale.mkdir(parents=True)
    (stale / "half.md").write_text("half-written")
    assert DreamLock(memory.folder).last_run() == 1234.0
    lock = DreamLock(memory.folder)
    lock.acquire()
    lock.release(succeeded=False)
    assert DreamLock(memory.folder).last_run() == 1234.0
    model.load({"turns": [{"content": "Nothing to change."}]})
    assert (await dream_of(model, memory, tmp_path / "none").run(force=True)).status == "done"
    assert leftovers(memory) == [] and not (memory.folder / "half.md").exists()


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
    model.load(consolidating(folder))
    assert (await dream_of(model, memory, folder).run(force=True)).status == "done"


async def test_force_skips_the_time_and_session_gates(model, memory, tmp_path):
    folder = tmp_path / "no-sessions"
    model.load(consolidating(folder))
    result = await dream_of(model, memory, folder, min_sessions=50).run(force=True)
    assert result.status == "done" and result.sessions == 0
    assert "(none" in model.requests[0]["messages"][0]["content"][0]["text"]


async def test_what_the_model_gets_wrong_is_refused_call_by_call(model, memory, tmp_path):
    model.load({"turns": [
        {"content": [use("Memory", action="write", name="../../escape", type="project",
                         description="d", content="x"),
                     use("Memory", action="delete", name="../../etc/passwd"),
                     use("Memory", action="index", content="x\n" * 500),
                     use("Memory", action="write", name="good", type="user",
                         description="the user likes tabs", content="tabs")]},
        {"content": "Saved one note."}]})
    result = await dream_of(model, memory, tmp_path / "none").run(force=True)
    assert result.status == "done" and result.written == ["good.md"] and result.deleted == []
    errors = [r.get("is_error", False) for r in results_in(model.requests[1])]
    assert errors == [True, True, True, False]
    assert "200 lines" in text_of(results_in(model.requests[1])[2])
    assert not (tmp_path / "escape.md").exists()
    assert "- [good](good.md) (user): the user likes tabs" in memory.raw_index()


async def test_a_file_a_session_wrote_meanwhile_keeps_the_sessions_version(memory):
    staging = Staging.create(memory)
    try:
        copy = AutoMemory(staging.folder)
        copy.write_topic("tests-old", "merged", "project", "the Dream's version")
        copy.write_topic("fresh", "new from the Dream", "project", "fresh")
        memory.write_topic("tests-old", "the session's", "project", "the session's version")
        memory.write_topic("later", "a session's new note", "user", "later")
        written, deleted = staging.apply(memory, staging.changes())
    finally:
        staging.close()
    assert written == ["fresh.md"] and deleted == []
    assert "the session's version" in memory.read("tests-old")
    index = memory.raw_index()
    assert "(fresh.md)" in index and "(later.md)" in index and "(tests-old.md)" in index
