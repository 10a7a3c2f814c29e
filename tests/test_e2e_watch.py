"""The watcher end to end: a real ``lsp-agent serve``, the real SDK against the scripted model.
A project's committed settings enable a watcher whose test breaks; a client that never sends a
prompt saves a file: nothing runs until the user approves the project's watcher once, then the
next save runs the test in the background, a background session prepares the fix as a pending
proposal (the file on disk untouched), the client gets an ``agent/inbox`` item, and accepting
the proposal through ``agent/review`` makes the test pass."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import WAIT, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

BUGGY = "def add(a, b):\n    return a - b\n"
CHECK = "import calc; assert calc.add(2, 3) == 5, calc.add(2, 3)"
FIX = {"type": "tool_use", "name": "Edit", "input": {
    "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}


# Turn 0 answers both the watcher's model triage (on by default; told apart by its system
# prompt) and the fix session's first request.
TRIAGE = {"system_contains": "triage step of lsp-agent's watcher", "content": [
    {"type": "tool_use", "name": "triage", "input": {"fix": True, "reason": "add() subtracts"}}]}


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": [{"content": [FIX], "when": [TRIAGE]},
                                        {"content": "Fix prepared."}]}) as server:
        yield server


def save(editor, path: Path) -> None:
    editor.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(path))))


async def test_a_failing_test_on_save_becomes_a_proposal_in_the_inbox(model, tmp_path: Path):
    project = tmp_path / "project"
    (project / ".lsp-agent").mkdir(parents=True)
    (project / "calc.py").write_text(BUGGY)
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(CHECK)}"
    (project / ".lsp-agent" / "settings.json").write_text(json.dumps({"watch": {
        "enabled": True, "testCommand": command, "debounceSeconds": 0.1}}))
    editor = await start_editor(model.base_url, project)
    inbox: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    @editor.client.feature("agent/inbox")
    async def on_inbox(params: Any) -> None:
        inbox.append(plain(params)["item"])
        arrived.set()

    try:
        save(editor, project / "calc.py")
        status = await editor.request("agent/watchStatus", {})
        assert status["enabled"] and status["source"] == "project"
        assert status["approved"] is False
        logs = tmp_path / "project" / ".state" / "watch" / workspace_slug(project)
        [day] = logs.glob("*.log")
        assert "not approved" in day.read_text()
        assert model.requests == []  # a cloned repository's watcher ran nothing

        assert (await editor.request("agent/watchApprove", {}))["approved"] is True
        save(editor, project / "calc.py")
        await asyncio.wait_for(arrived.wait(), WAIT)
        [item] = inbox
        assert item["kind"] == "test_failure" and "calc.py" in item["title"]
        assert len(item["proposalIds"]) == 1 and item["sessionId"]
        assert item["triage"] == {"fix": True, "reason": "add() subtracts"}
        assert (project / "calc.py").read_text() == BUGGY  # prepared, not applied
        assert editor.permission_requests == []
        listed = await editor.request("agent/inboxList", {})
        assert [i["id"] for i in listed["items"]] == [item["id"]]
        # The triage, then the background session, both told the command's failure.
        triage, first = (json.dumps(model.requests[i]["messages"]) for i in (0, 1))
        assert "triage step" in json.dumps(model.requests[0]["system"])
        assert "assert calc.add(2, 3) == 5" in triage
        assert "assert calc.add(2, 3) == 5" in first and "-1" in first

        await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                              "accept": "all"})
        assert "a + b" in (project / "calc.py").read_text()
        passed = await asyncio.create_subprocess_shell(command, cwd=project)
        assert await asyncio.wait_for(passed.wait(), WAIT) == 0
    finally:
        await editor.client.shutdown_session()
