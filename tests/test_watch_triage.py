"""The watcher's model triage (sessions/watch_triage.py): what the model is told (the failure's
tail, secrets masked), how its answer is read, and that every way of failing prepares the fix
as without triage -- never a crash, never a silent stop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from lsp_agent.sessions.watch import parse
from lsp_agent.sessions.watch_triage import (
    MAX_FAILURE,
    UnparseableTriage,
    describe,
    parse_answer,
    triage,
)
from lsp_agent.store.redact import Redactor


class FakeService:
    """A ModelService's ``respond``: an answer, an error, or no answer at all."""

    def __init__(self, answer: Any = None, error: Exception | None = None,
                 hang: bool = False):
        self.answer, self.error, self.hang = answer, error, hang
        self.requests: list[Any] = []

    async def respond(self, request: Any) -> Any:
        self.requests.append(request)
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error
        usage = SimpleNamespace(input_tokens=120, output_tokens=15)
        return SimpleNamespace(content=self.answer, usage=usage)


def tool(fix: Any, reason: Any = "why") -> dict[str, Any]:
    return {"type": "tool_use", "name": "triage", "input": {"fix": fix, "reason": reason}}


def test_the_answer_is_the_triage_call_or_a_json_object_in_the_text():
    assert parse_answer([tool(False, "  a  flaky\ntest ")]).reason == "a flaky test"
    assert parse_answer([tool(True, "")]).reason == "no reason given"
    text = [{"type": "text", "text": 'Hmm {"x": 1} then {"fix": false, "reason": "dns"}'}]
    verdict = parse_answer(text)
    assert (verdict.fix, verdict.reason) == (False, "dns")


@pytest.mark.parametrize("blocks", [
    [],
    [{"type": "text", "text": "yes, fix it"}],
    [tool("yes")],  # not a boolean
    [{"type": "text", "text": '{"fix": "false"}'}],
])
def test_an_answer_without_a_boolean_fix_does_not_parse(blocks):
    with pytest.raises(UnparseableTriage):
        parse_answer(blocks)


def test_the_model_is_told_the_failures_tail_with_secrets_masked():
    redactor = Redactor(["hunter2-password-value"])
    output = "x" * 10_000 + "\nlogin with hunter2-password-value failed\nE assert 1 == 2"
    text = describe("pytest -q", 1, output, redactor)
    assert "hunter2-password-value" not in text and "[REDACTED]" in text
    assert "E assert 1 == 2" in text and "exit code 1" in text
    assert text.count("x") < MAX_FAILURE + 50  # the tail only
    assert "timed out" in describe("pytest -q", None, "", redactor)


async def test_a_decision_comes_with_its_model_usage_and_a_tight_request():
    service = FakeService([tool(False, "network")])
    verdict = await triage(service, "small-model", "pytest", 1, "boom", Redactor())  # type: ignore[arg-type]
    assert (verdict.fix, verdict.reason, verdict.error) == (False, "network", None)
    assert verdict.model == "small-model" and verdict.usage is not None
    assert verdict.usage.input_tokens == 120
    [request] = service.requests
    assert request.max_tokens == 200 and request.model == "small-model"
    assert request.tool_choice == {"type": "tool", "name": "triage"}


@pytest.mark.parametrize(("service", "why"), [
    (FakeService(error=RuntimeError("overloaded")), "RuntimeError: overloaded"),
    (FakeService([{"type": "text", "text": "no idea"}]), "an answer that does not parse"),
    (FakeService(hang=True), "no answer within 0.05 s"),
])
async def test_a_triage_that_fails_prepares_the_fix_and_says_why(service, why):
    verdict = await triage(service, "m", "pytest", 1, "boom", Redactor(), within=0.05)
    assert verdict.fix is True and why in (verdict.error or "")
    assert "preparing the fix anyway" in verdict.reason
    assert verdict.view().error == verdict.error


def test_triage_is_on_unless_turned_off_and_its_model_is_checked():
    config, warnings = parse({"enabled": True}, "options")
    assert config is not None and config.triage is True and warnings == []
    config, _ = parse({"enabled": True, "triage": False}, "options")
    assert config is not None and config.triage is False
    config, _ = parse({"triage": True, "triageModel": "claude-haiku-4-5"}, "options")
    assert config is not None and config.triage and config.triage_model == "claude-haiku-4-5"
    config, warnings = parse({"triage": True, "triageModel": 7}, "options")
    assert config is not None and config.triage_model is None
    assert ["triageModel must be a model name" in w for w in warnings] == [True]
