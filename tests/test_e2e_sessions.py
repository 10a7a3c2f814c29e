"""Sessions that last, end to end: a real server is killed with SIGKILL after fixing a bug, a
second server lists the session, resumes it and goes on with the same conversation.

Real parts: two ``lsp-agent serve`` processes one after the other on one state dir, the real
SDK against the scripted model server, a pytest-lsp client as the editor.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"


def fix_turns() -> list[dict]:
    return [
        {"content": [{"type": "text", "text": "Fixing add."},
                     {"type": "tool_use", "name": "Edit", "input": {
                         "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}]},
        {"content": "FIXED-IT: add now adds."},
    ]


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "calc.py").write_text(BUGGY)
    return root


def kill_server(editor) -> None:
    os.kill(editor.client._server.pid, signal.SIGKILL)


async def test_a_killed_server_s_session_is_listed_resumed_and_goes_on(model, project):
    model.load({"turns": fix_turns()})
    first = await start_editor(model.base_url, project)
    session = await first.new_session(project, mode="acceptEdits")
    result = await first.request("agent/prompt", {"sessionId": session,
                                                  "text": "Please fix add in calc.py"})
    assert result["stopReason"] == "end_turn"
    assert (project / "calc.py").read_text() == FIXED
    kill_server(first)  # no shutdown, no flush: SIGKILL right after the turn

    model.load({"turns": [{"content": "REMEMBERED: I fixed add earlier."}]})
    second = await start_editor(model.base_url, project)
    try:
        listed = await second.request("agent/listSessions", {})
        row = next(s for s in listed["sessions"] if s["sessionId"] == session)
        assert row["turns"] == 1 and row["title"] == "Please fix add in calc.py"
        assert row["open"] is False and row["live"] is False

        resumed = await second.request("agent/resumeSession", {"sessionId": session})
        assert resumed["sessionId"] == session and resumed["mode"] == "acceptEdits"
        assert resumed["turns"] == 1 and resumed["notApplied"] == []

        await second.request("agent/prompt", {"sessionId": session, "text": "What did you do?"})
        sent = json.dumps(model.requests[-1]["messages"])
        # The earlier conversation, as the model saw it, leads the new request.
        assert "Please fix add in calc.py" in sent and "FIXED-IT" in sent
        assert '"name": "Edit"' in sent and "What did you do?" in sent
        assert model.requests[-1]["messages"][0]["role"] == "user"

        history = await second.request("agent/sessionHistory", {"sessionId": session,
                                                                "limit": 3})
        assert [e["type"] for e in history["entries"]][:2] == ["turn_end", "assistant"]
        assert history["nextBefore"]
        older = await second.request("agent/sessionHistory", {
            "sessionId": session, "before": history["nextBefore"], "limit": 500})
        entries = history["entries"] + older["entries"]  # newest first, across the pages
        assert len({e["uuid"] for e in entries}) == len(entries)
        prompts = [e["prompt"] for e in entries if e["type"] == "user" and e["prompt"]]
        assert prompts == ["What did you do?", "Please fix add in calc.py"]
        history_prompts = await second.request("agent/promptHistory", {})
        assert history_prompts["prompts"][:2] == ["What did you do?",
                                                  "Please fix add in calc.py"]
    finally:
        await second.client.shutdown_session()


async def test_fork_rename_and_delete(model, project):
    model.load({"turns": [{"content": "one"}, {"content": "two"}]})
    editor = await start_editor(model.base_url, project)
    try:
        session = await editor.new_session(project)
        for text in ("first question", "second question"):
            await editor.request("agent/prompt", {"sessionId": session, "text": text})
        forked = (await editor.request("agent/forkSession", {"sessionId": session,
                                                             "atTurn": 2}))["sessionId"]
        assert forked != session
        await editor.request("agent/renameSession", {"sessionId": forked, "title": "Just one"})
        listed = (await editor.request("agent/listSessions", {}))["sessions"]
        row = next(s for s in listed if s["sessionId"] == forked)
        assert row["title"] == "Just one" and row["turns"] == 1
        assert row["forkedFrom"] == {"sessionId": session, "beforeTurn": 2}

        model.load({"turns": [{"content": "three"}]})
        await editor.request("agent/resumeSession", {"sessionId": forked})
        await editor.request("agent/prompt", {"sessionId": forked, "text": "another"})
        sent = json.dumps(model.requests[-1]["messages"])
        assert "first question" in sent and "second question" not in sent

        await editor.request("agent/deleteSession", {"sessionId": forked})
        listed = (await editor.request("agent/listSessions", {}))["sessions"]
        assert forked not in {s["sessionId"] for s in listed}
        assert session in {s["sessionId"] for s in listed}
    finally:
        await editor.client.shutdown_session()


async def test_bad_session_requests_are_clear_errors(model, project):
    editor = await start_editor(model.base_url, project)
    try:
        for method, params, words in [
            ("agent/resumeSession", {"sessionId": "nope"}, "unknown session"),
            ("agent/resumeSession", {"sessionId": "../../etc"}, "session id"),
            ("agent/sessionHistory", {"sessionId": "nope"}, "unknown session"),
            ("agent/forkSession", {"sessionId": "nope"}, "unknown session"),
            ("agent/renameSession", {"sessionId": "x", "title": "   "}, "title"),
            ("agent/listSessions", {"limit": 0}, "limit"),
        ]:
            with pytest.raises(JsonRpcException, match=words):
                await editor.request(method, params)
        # The server still serves.
        assert "sessions" in await editor.request("agent/listSessions", {})
    finally:
        await editor.client.shutdown_session()


async def test_a_newer_transcript_format_is_refused_clearly(model, project):
    editor = await start_editor(model.base_url, project)
    try:
        model.load({"turns": [{"content": "ok"}]})
        session = await editor.new_session(project)
        await editor.request("agent/prompt", {"sessionId": session, "text": "hello"})
        state = project / ".state" / "projects"
        transcript = next(state.rglob(f"{session}.jsonl"))
        lines = transcript.read_text().splitlines()
        header = json.loads(lines[0])
        header["formatVersion"] = 999
        await editor.client.shutdown_session()
        transcript.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
        editor = await start_editor(model.base_url, project)
        with pytest.raises(JsonRpcException, match=r"update lsp-agent|newer"):
            await editor.request("agent/resumeSession", {"sessionId": session})
    finally:
        await editor.client.shutdown_session()


async def test_a_pending_proposal_is_reported_not_applied_after_a_crash(model, project):
    model.load({"turns": [{"content": [{"type": "tool_use", "name": "Edit", "input": {
        "path": "calc.py", "old_string": "a - b", "new_string": "a * b"}}]}]})
    first = await start_editor(model.base_url, project)
    session = await first.new_session(project)  # default mode: the edit waits for review
    prompt = asyncio.ensure_future(first.request("agent/prompt", {
        "sessionId": session, "text": "Break add"}))
    created = (await first.wait_for(session, ev.ProposalCreated))[0]
    await asyncio.sleep(0.3)  # the proposal's line reaches the transcript (writes are queued)
    kill_server(first)
    with pytest.raises((JsonRpcException, ConnectionError, EOFError, asyncio.TimeoutError,
                        RuntimeError)):
        await prompt

    model.load({"turns": [{"content": "ok"}]})
    second = await start_editor(model.base_url, project)
    try:
        resumed = await second.request("agent/resumeSession", {"sessionId": session})
        assert resumed["notApplied"] == [created.proposal_id]
        assert (project / "calc.py").read_text() == BUGGY  # never applied by itself
        await second.request("agent/prompt", {"sessionId": session, "text": "go on"})
        messages = model.requests[-1]["messages"]
        uses = [b["id"] for m in messages if m["role"] == "assistant"
                for b in m["content"] if b["type"] == "tool_use"]
        answered = [b["tool_use_id"] for m in messages if m["role"] == "user"
                    for b in m["content"] if b.get("type") == "tool_result"]
        assert set(uses) <= set(answered)  # every tool_use answered
        again = await second.request("agent/listSessions", {"workspaceUri": uri(project)})
        assert next(s for s in again["sessions"] if s["sessionId"] == session)["open"] is True
    finally:
        await second.client.shutdown_session()
