"""Auto mode across a resume, end to end: a first server's classifier decisions are recorded
in the transcript; a second server resumes the session, settles an identical call from the
recorded decision (no side request), and tells its classifier the user's earlier prompts.

Real parts: two ``lsp-agent serve`` processes one after the other on one state dir, the real
SDK against the scripted model server (which answers the classifier's side requests too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.agent.auto_mode import SYSTEM
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CLASSIFIER = "tiny-classifier"
MARKER = SYSTEM.split(".")[0]
FIRST_PROMPT = "please set up the build folder"


def decide(decision: str, reason: str) -> list[dict]:
    return [{"type": "tool_use", "name": "decide",
             "input": {"decision": decision, "reason": reason}}]


def bash(command: str) -> list[dict]:
    return [{"type": "tool_use", "name": "Bash", "input": {"command": command}}]


# One scenario for both servers: turns are chosen by the number of assistant messages, and the
# classifier's requests (none) are turn 0.
SCENARIO = {"name": "auto_resume", "turns": [
    {"content": bash("mkdir -p build"), "when": [
        {"system_contains": MARKER, "user_text_contains": "mkdir -p build",
         "content": decide("allow", "creates a build folder in the workspace")},
        {"system_contains": MARKER, "user_text_contains": "touch build/stamp",
         "content": decide("allow", "touches a file in the build folder")},
        {"system_contains": MARKER, "content": decide("ask", "not in this scenario")},
    ]},
    {"content": "first turn done"},
    {"content": bash("mkdir -p build")},  # the resumed session: the same call again
    {"content": bash("touch build/stamp")},  # a new call: a side request
    {"content": "second turn done"},
]}


@pytest.fixture
def model():
    with ScriptedModelServer(SCENARIO) as server:
        yield server


def classifier_texts(model) -> list[str]:
    return [body["messages"][0]["content"][0]["text"] for body in model.requests
            if body["model"] == CLASSIFIER]


async def test_decisions_and_prompts_come_back_with_a_resumed_session(model, tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    first = await start_editor(model.base_url, tmp_path, mode="auto",
                               classifierModel=CLASSIFIER)
    try:
        session = await first.new_session(workspace)
        await first.request("agent/prompt", {"sessionId": session, "text": FIRST_PROMPT})
        [decided] = first.of(session, ev.AutoDecision)
        assert decided.decision == "allow" and decided.call_key
        first_cost = first.of(session, ev.CostReport)[-1].session
    finally:
        await first.client.shutdown_session()
    assert len(classifier_texts(model)) == 1

    second = await start_editor(model.base_url, tmp_path, classifierModel=CLASSIFIER)
    try:
        resumed = await second.request("agent/resumeSession", {"sessionId": session,
                                                                "workspaceUri": uri(workspace)})
        assert resumed["mode"] == "auto"
        # The transcript holds the decision, shown with the history.
        history = await second.request("agent/sessionHistory", {
            "sessionId": session, "workspaceUri": uri(workspace), "limit": 50})
        [entry] = [e for e in history["entries"] if e["type"] == "auto_decision"]
        assert (entry["tool"], entry["decision"], entry["callKey"]) == (
            "Bash", "allow", decided.call_key)
        assert entry["reason"] == "creates a build folder in the workspace"
        # The classifier's cost came back with the session's.
        assert any(row.model == CLASSIFIER for row in first_cost.by_model)

        await second.request("agent/prompt", {"sessionId": session,
                                              "text": "now stamp the build"})
        assert second.permission_requests == []
        again, fresh = second.of(session, ev.AutoDecision)
        # The identical call is settled by the recorded decision: no side request for it.
        assert (again.decision, again.cached, again.call_key) == ("allow", True,
                                                                 decided.call_key)
        assert (fresh.decision, fresh.cached) == ("allow", False)
        texts = classifier_texts(model)
        assert len(texts) == 2 and "touch build/stamp" in texts[1]
        # The new classifier request knows what the user asked the first server.
        assert FIRST_PROMPT in texts[1] and "now stamp the build" in texts[1]
        assert (workspace / "build" / "stamp").is_file()

        cost = second.of(session, ev.CostReport)[-1].session
        [side] = [row for row in cost.by_model if row.model == CLASSIFIER]
        [before] = [row for row in first_cost.by_model if row.model == CLASSIFIER]
        assert side.usage.output_tokens == before.usage.output_tokens + fresh.usage.output_tokens
    finally:
        await second.client.shutdown_session()
