"""Sessions that last, end to end: a real server is killed with SIGKILL after fixing a bug, a
second server lists the session, resumes it and goes on with the same conversation.

Real parts: two ``lsp-agent serve`` processes one after the other on one state dir, the real
SDK against the scripted model server, a pytest-lsp client as the editor.
"""

from __future__ import annotations

import asyncio
import itertools
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

        # The cost so far came back with the session: this turn's is added to the first's.
        cost = second.of(session, ev.CostReport)[-1]
        assert cost.session.usd > cost.turn.usd > 0
        history = await second.request("agent/sessionHistory", {"sessionId": session,
                                                                "limit": 3})
        assert [e["type"] for e in history["entries"]][:2] == ["turn_end", "assistant"]
        assert history["entries"][0]["costUsd"] == round(cost.turn.usd, 6)
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


LONGER = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


async def test_rewind_after_a_crash_restores_edits_and_shell_writes_and_keeps_user_typing(
        model, project):
    (project / "calc.py").write_text(LONGER)
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Edit", "input": {
            "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}]},
        {"content": [{"type": "tool_use", "name": "Bash", "input": {
            "command": "echo generated > out.txt && echo '# tool' >> calc.py"}}]},
        {"content": "FIXED-IT"},
    ]})
    first = await start_editor(model.base_url, project)
    session = await first.new_session(project, mode="acceptEdits")
    await first.request("agent/prompt", {"sessionId": session, "text": "Fix add"})
    assert (project / "out.txt").read_text() == "generated\n"
    assert "a + b" in (project / "calc.py").read_text()
    kill_server(first)

    second = await start_editor(model.base_url, project)
    try:
        await second.request("agent/resumeSession", {"sessionId": session})
        checkpoints = (await second.request("agent/checkpoints",
                                            {"sessionId": session}))["checkpoints"]
        assert [c["turn"] for c in checkpoints] == [1]
        assert {f["path"] for f in checkpoints[0]["files"]} == {"calc.py", "out.txt"}
        # The user opens calc.py and types a line the agent never touched.
        calc = project / "calc.py"
        second.open(calc)
        second.type_at(calc, (4, 0), (4, 0), "# mine\n")
        await asyncio.sleep(0.2)

        report = await second.request("agent/rewind", {"sessionId": session, "turn": 1,
                                                       "restore": "both"})
        assert report["conflicts"] == [] and report["notRestored"] == []
        assert sorted(report["restored"]) == ["calc.py", "out.txt"]
        assert report["conversation"] is True
        text = second.buffer(calc)
        assert "a - b" in text and "# mine\n" in text and "# tool" not in text
        assert not (project / "out.txt").exists()

        model.load({"turns": [{"content": "again"}]})
        await second.request("agent/prompt", {"sessionId": session, "text": "Start over"})
        sent = json.dumps(model.requests[-1]["messages"])
        assert "Fix add" not in sent and "Start over" in sent
        # The rewound turn stays in the transcript as a branch: its history is still there.
        listed = await second.request("agent/listSessions", {})
        assert next(s for s in listed["sessions"] if s["sessionId"] == session)["turns"] == 1
    finally:
        await second.client.shutdown_session()


async def test_rewind_reports_a_conflict_and_keeps_the_user_s_text(model, project):
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Edit", "input": {
            "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}]},
        {"content": "done"},
    ]})
    editor = await start_editor(model.base_url, project)
    try:
        session = await editor.new_session(project, mode="acceptEdits")
        await editor.request("agent/prompt", {"sessionId": session, "text": "Fix add"})
        (project / "calc.py").write_text("def add(a, b):\n    return b + a  # mine\n")
        report = await editor.request("agent/rewind", {"sessionId": session, "turn": 1,
                                                       "restore": "code"})
        assert [c["path"] for c in report["conflicts"]] == ["calc.py"]
        assert (project / "calc.py").read_text() == "def add(a, b):\n    return b + a  # mine\n"
        with pytest.raises(JsonRpcException, match="no turn 5"):
            await editor.request("agent/rewind", {"sessionId": session, "turn": 5})
    finally:
        await editor.client.shutdown_session()


async def test_an_unusable_state_dir_says_so_once_and_the_session_works(model, project):
    (project / ".state").write_text("a file where the state folder should be")
    model.load({"turns": [{"content": "first"}, {"content": "second"}]})
    editor = await start_editor(model.base_url, project)
    try:
        session = await editor.new_session(project)
        for text in ("one", "two"):
            result = await editor.request("agent/prompt", {"sessionId": session, "text": text})
            assert result["stopReason"] == "end_turn"
        notices = [e for e in editor.of(session, ev.ErrorEvent) if e.kind == "persistence"]
        assert len(notices) == 1 and "not saved" in notices[0].message
        assert notices[0].recoverable is True
        listed = await editor.request("agent/listSessions", {})
        assert session in {s["sessionId"] for s in listed["sessions"]}
    finally:
        await editor.client.shutdown_session()


async def test_a_session_open_in_another_server_is_not_resumed_twice(model, project):
    model.load({"turns": [{"content": "hello"}]})
    first = await start_editor(model.base_url, project)
    second = await start_editor(model.base_url, project)
    try:
        session = await first.new_session(project)
        await first.request("agent/prompt", {"sessionId": session, "text": "hi"})
        listed = await second.request("agent/listSessions", {})
        assert next(s for s in listed["sessions"] if s["sessionId"] == session)["live"] is True
        with pytest.raises(JsonRpcException, match="open in another process"):
            await second.request("agent/resumeSession", {"sessionId": session})
    finally:
        await first.client.shutdown_session()
        await second.client.shutdown_session()


async def test_killed_mid_shell_the_resumed_conversation_is_consistent(model, project):
    model.load({"turns": [{"content": [{"type": "text", "text": "Running."}, {
        "type": "tool_use", "name": "Bash", "input": {"command": "sleep 30 > slept.txt"}}]}]})
    first = await start_editor(model.base_url, project)
    session = await first.new_session(project, mode="bypassPermissions")
    prompt = asyncio.ensure_future(first.request("agent/prompt", {"sessionId": session,
                                                                  "text": "Sleep a while"}))
    await first.wait_for(session, ev.ToolExecutionStarted)
    await asyncio.sleep(0.3)
    kill_server(first)
    with pytest.raises((JsonRpcException, ConnectionError, EOFError, asyncio.TimeoutError,
                        RuntimeError)):
        await prompt

    model.load({"turns": [{"content": "resumed"}]})
    second = await start_editor(model.base_url, project)
    try:
        resumed = await second.request("agent/resumeSession", {"sessionId": session})
        assert resumed["mode"] == "default"  # bypassPermissions is never resumed
        assert any("bypassPermissions" in w for w in resumed["warnings"])
        await second.request("agent/prompt", {"sessionId": session, "text": "Go on"})
        messages = model.requests[-1]["messages"]
        uses = {b["id"] for m in messages if m["role"] == "assistant"
                for b in m["content"] if b["type"] == "tool_use"}
        answered = {b["tool_use_id"] for m in messages if m["role"] == "user"
                    for b in m["content"] if b.get("type") == "tool_result"}
        assert uses <= answered
        roles = [m["role"] for m in messages]
        assert all(a != b for a, b in itertools.pairwise(roles)), roles
        checkpoints = (await second.request("agent/checkpoints",
                                            {"sessionId": session}))["checkpoints"]
        assert [f["path"] for f in checkpoints[0]["files"]] == ["slept.txt"]
    finally:
        await second.client.shutdown_session()


async def test_old_sessions_go_at_start_under_the_retention_policy(model, project):
    model.load({"turns": [{"content": "old news"}]})
    first = await start_editor(model.base_url, project)
    session = await first.new_session(project)
    await first.request("agent/prompt", {"sessionId": session, "text": "hi"})
    await first.client.shutdown_session()
    await asyncio.sleep(1.5)
    second = await start_editor(model.base_url, project,
                                sessionRetentionDays=1 / 86400)  # one second
    try:
        for _ in range(100):
            listed = await second.request("agent/listSessions", {})
            if session not in {s["sessionId"] for s in listed["sessions"]}:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the old session was not deleted")
        assert not list((project / ".state" / "projects").rglob(f"{session}*"))
    finally:
        await second.client.shutdown_session()


async def test_the_api_key_never_reaches_the_transcript_or_the_prompt_history(model, project):
    key = "test-key"  # the harness's ANTHROPIC_API_KEY
    model.load({"turns": [{"content": f"I saw the key {key} somewhere."}]})
    editor = await start_editor(model.base_url, project)
    try:
        session = await editor.new_session(project)
        await editor.request("agent/prompt", {"sessionId": session,
                                              "text": f"is {key} my key?"})
    finally:
        await editor.client.shutdown_session()
    saved = [p for p in (project / ".state" / "projects").rglob("*") if p.is_file()]
    assert any(p.name == f"{session}.jsonl" for p in saved)
    for path in saved:
        assert key not in path.read_text(errors="replace"), path
    transcript = next(p for p in saved if p.name == f"{session}.jsonl").read_text()
    assert "[REDACTED]" in transcript
