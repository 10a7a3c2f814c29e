"""The watcher's inbox across a server restart, end to end: a real ``lsp-agent serve`` over
stdio (the real SDK against the scripted model) prepares a fix for a failing test; the server
is shut down and a new one started on the same workspace and state dir. The item comes back
with its proposal: still applicable when the file is as it was (accepting it makes the test
pass, and the same failure is not fixed a second time), ``stale`` and refused when the file
changed in between."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import Editor, start_editor
from tests.test_e2e_watch_triggers import (
    BUGGY,
    FIX,
    Heard,
    Project,
    save,
    settled,
    until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": [{"content": [FIX]}, {"content": "Fix prepared."}]}) \
            as server:
        yield server


async def watching(model: ScriptedModelServer, project: Project) -> Editor:
    return await start_editor(model.base_url, project.root, watch={
        "enabled": True, "debounceSeconds": 0, "quietSeconds": 0, "triage": False,
        "testCommand": project.command})


async def prepare_a_fix(model: ScriptedModelServer, project: Project) -> dict[str, Any]:
    """The first server: a save, a failing test, a fix pending in the inbox; then shut down."""
    editor = await watching(model, project)
    heard = Heard(editor)
    try:
        save(editor, project.calc)
        [item] = await until(lambda: [i for i in heard.of_kind("test_failure")
                                      if i["proposalIds"]], "the prepared fix")
        assert item["proposals"] == [{"id": item["proposalIds"][0], "status": "pending"}]
    finally:
        await editor.client.shutdown_session()
    return item


def kept(project: Project) -> dict[str, Any]:
    path = project.root / ".state" / "watch" / workspace_slug(project.root) / "inbox.json"
    return json.loads(path.read_text())


async def test_a_pending_fix_survives_a_restart_and_can_still_be_accepted(model, tmp_path):
    project = Project(tmp_path)
    item = await prepare_a_fix(model, project)
    [record] = kept(project)["items"]
    assert record["item"]["id"] == item["id"] and record["failure"]
    assert "assert calc.add(2, 3) == 5" in record["failure"]
    assert project.calc.read_text() == BUGGY  # prepared, not applied

    editor = await watching(model, project)
    try:
        listed = (await editor.request("agent/inboxList", {}))["items"]
        assert [i["id"] for i in listed] == [item["id"]]
        [proposal] = listed[0]["proposals"]
        assert proposal == {"id": item["proposalIds"][0], "status": "pending"}

        # The same failure is not fixed twice: it has its item already.
        save(editor, project.calc)
        await until(lambda: project.runs == 2, "the run on save")
        await settled(editor)
        assert len(model.requests) == 1  # the first server's session only (waiting for review)
        assert any(r.get("why") == "this failure was tried already" for r in project.log())

        result = await editor.request("agent/review", {"proposalId": proposal["id"],
                                                       "accept": "all"})
        assert result["status"] == "accepted"
        assert "a + b" in project.calc.read_text()
        listed = (await editor.request("agent/inboxList", {}))["items"]
        assert listed[0]["proposals"][0]["status"] == "accepted"
    finally:
        await editor.client.shutdown_session()
    # What the third server would show: accepted, nothing left to apply.
    [record] = kept(project)["items"]
    assert record["item"]["proposals"][0]["status"] == "accepted"
    assert record["contents"] == {}


async def test_a_fix_whose_file_changed_meanwhile_comes_back_stale(model, tmp_path):
    project = Project(tmp_path)
    item = await prepare_a_fix(model, project)
    changed = BUGGY + "# the user changed it while no server ran\n"
    project.calc.write_text(changed)

    editor = await watching(model, project)
    try:
        listed = (await editor.request("agent/inboxList", {}))["items"]
        assert listed[0]["proposals"] == [{"id": item["proposalIds"][0], "status": "stale"}]
        with pytest.raises(JsonRpcInvalidParams, match="unknown or already resolved"):
            await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                                  "accept": "all"})
        assert project.calc.read_text() == changed  # never applied to the changed file
    finally:
        await editor.client.shutdown_session()


async def test_a_file_changed_in_the_editor_after_the_restart_makes_the_review_stale(
        model, tmp_path):
    project = Project(tmp_path)
    item = await prepare_a_fix(model, project)
    editor = await watching(model, project)
    try:
        await editor.request("agent/inboxList", {})
        editor.open(project.calc)
        editor.type_text(project.calc, BUGGY + "# typing\n")  # not saved: the buffer differs
        result = await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                                       "accept": "all"})
        assert result["status"] == "failed"
        assert "changed since the fix was prepared" in result["conflictDetails"][0]
        assert editor.applied == [] and project.calc.read_text() == BUGGY
        listed = (await editor.request("agent/inboxList", {}))["items"]
        assert listed[0]["proposals"][0]["status"] == "stale"
    finally:
        await editor.client.shutdown_session()
