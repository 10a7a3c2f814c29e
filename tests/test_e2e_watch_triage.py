"""The watcher's model triage end to end (``watch.triage: true``): a real ``lsp-agent serve``
over stdio, the real SDK against the scripted model. Before a fix session starts, one small
request (the classifier model, a forced ``triage`` tool, max_tokens 200) decides whether the
failure is worth it: a decline leaves an inbox item with the reason and no session, a yes runs
the fix as before, and a triage that fails runs the fix too (docs/autonomy.md, "Triage"). Its
cost counts in the watcher's daily cost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import Editor, start_editor
from tests.test_e2e_watch_triggers import FIX, Heard, Project, save, settled, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TRIAGE_SYSTEM = "triage step of lsp-agent's watcher"
DECLINE = {"type": "tool_use", "name": "triage", "input": {
    "fix": False, "reason": "The package index could not be reached: a network failure."}}


def scenario(triage_answer: list[dict[str, Any]] | str,
             faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Turn 0 is both the triage's request and the fix session's first: told apart by the
    triage's system prompt."""
    first: dict[str, Any] = {"content": [FIX], "when": [
        {"system_contains": TRIAGE_SYSTEM, "content": triage_answer}]}
    if faults:
        first["faults"] = faults
    return {"turns": [first, {"content": "Fix prepared."}]}


async def watching(model: ScriptedModelServer, project: Project) -> Editor:
    return await start_editor(model.base_url, project.root, watch={
        "enabled": True, "debounceSeconds": 0, "quietSeconds": 0, "triage": True,
        "testCommand": project.command})


def spent(project: Project) -> float:
    path = project.root / ".state" / "watch" / workspace_slug(project.root) / "cost.json"
    return json.loads(path.read_text())["usd"] if path.exists() else 0.0


async def prepared_fix(heard: Heard) -> list[dict]:
    """The test-failure items that came with a proposal (the fix session ran)."""
    return await until(lambda: [i for i in heard.of_kind("test_failure") if i["proposalIds"]],
                       "the prepared fix")


async def test_a_failure_the_triage_declines_gets_an_item_with_the_reason_and_no_session(
        tmp_path):
    project = Project(tmp_path)
    with ScriptedModelServer(scenario([DECLINE])) as model:
        editor = await watching(model, project)
        heard = Heard(editor)
        try:
            save(editor, project.calc)
            [item] = await until(lambda: heard.of_kind("test_failure"), "the declined item")
            await settled(editor)
            assert item["triage"] == {"fix": False, "reason": DECLINE["input"]["reason"]}
            assert "no fix prepared" in item["title"]
            assert "sessionId" not in item and item["proposalIds"] == []
            [request] = model.requests  # the triage only: no fix session
            assert request["max_tokens"] == 200 and request["model"] == "claude-haiku-4-5"
            assert request["tool_choice"] == {"type": "tool", "name": "triage"}
            asked = json.dumps(request["messages"])
            assert "assert calc.add(2, 3) == 5" in asked and "<failure>" in asked
            declined = [e for e in heard.events if e["kind"] == "fixDeclined"]
            assert len(declined) == 1 and "a network failure" in declined[0]["detail"]
            assert spent(project) > 0  # the triage's cost counts against the daily cap
            assert [(r["action"], r["why"]) for r in project.log() if r["event"] == "triage"] \
                == [("none", DECLINE["input"]["reason"])]
            listed = (await editor.request("agent/inboxList", {}))["items"]
            assert listed[0]["triage"]["fix"] is False
            status = await editor.request("agent/watchStatus", {})
            assert (status["triage"], status["triageModel"]) == (True, "claude-haiku-4-5")
        finally:
            await editor.client.shutdown_session()


async def test_a_failure_the_triage_accepts_gets_its_fix_prepared(tmp_path):
    project = Project(tmp_path)
    answer = 'Looks like a real bug. {"fix": true, "reason": "add() subtracts"}'  # JSON in text
    with ScriptedModelServer(scenario(answer)) as model:
        editor = await watching(model, project)
        heard = Heard(editor)
        try:
            save(editor, project.calc)
            [item] = await prepared_fix(heard)
            assert item["triage"] == {"fix": True, "reason": "add() subtracts"}
            assert item["sessionId"] and item["proposals"][0]["status"] == "pending"
            triage, fix = model.requests[:2]
            assert triage["max_tokens"] == 200 and fix["max_tokens"] != 200
            assert "fixDeclined" not in heard.kinds and "fixPrepared" in heard.kinds
        finally:
            await editor.client.shutdown_session()


async def test_a_triage_that_fails_runs_the_fix_as_without_triage(tmp_path):
    project = Project(tmp_path)
    failing = [{"http_status": 400, "message": "model not available"}]
    with ScriptedModelServer(scenario([DECLINE], faults=failing)) as model:
        editor = await watching(model, project)
        heard = Heard(editor)
        try:
            save(editor, project.calc)
            [item] = await prepared_fix(heard)
            assert item["triage"]["fix"] is True
            assert "model not available" in item["triage"]["error"]
            assert "preparing the fix anyway" in item["triage"]["reason"]
            outcomes = [r["outcome"] for r in model.records]
            assert outcomes[:2] == ["http_error", "ok"]
        finally:
            await editor.client.shutdown_session()
