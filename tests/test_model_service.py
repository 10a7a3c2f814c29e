"""The model service's limits, seen through the agent loop: a model that sends nothing, a
stream that stops, a retry-after longer than the cap, and one retry policy (the SDK's own
retries are off, so each failure costs exactly one visible retry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.model.client import ModelSettings, make_client
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.tools.base import ToolContext, ToolPool
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments


def make_agent(model: ScriptedModelServer, tmp_path: Path, **limits: Any) -> Agent:
    settings = ModelSettings(model="test-model", fallback_model=None, api_key="k",
                             base_url=model.base_url, backoff_base=0.01, **limits)

    def context(tool_use_id: str) -> ToolContext:
        return ToolContext(workspace=tmp_path, documents=DiskDocuments(), proposals=None,  # type: ignore[arg-type]
                           diagnostics=DiagnosticsStore(), results_dir=tmp_path / "results",
                           tool_use_id=tool_use_id)

    return Agent(AgentDeps(
        model=ModelService(settings, make_client(settings)), tools=ToolPool([]),
        gate=PermissionGate(tmp_path, "default"), system=lambda: [{"type": "text", "text": "t"}],
        tool_context=context, session_id="s1"))


async def run(agent: Agent) -> list[ev.AgentEvent]:
    return [e async for e in agent.run_turn([{"type": "text", "text": "go"}])]


def of(events: list[ev.AgentEvent], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_a_model_that_sends_nothing_is_retried_with_a_visible_event(model, tmp_path):
    model.load({"turns": [{"content": "hello", "faults": [{"stall_ms": 5000}]}]})
    events = await run(make_agent(model, tmp_path, first_byte_timeout=1.0))
    # The stalled attempt is retried; on a loaded machine a retry may be cut again, so the
    # count is not the point, the first reason is.
    retries = of(events, ev.Retrying)
    assert retries and "no response from the model for 1 s" in retries[0].reason
    assert events[-1].stop_reason == "end_turn"
    assert "".join(e.text for e in of(events, ev.TextDelta)) == "hello"


async def test_a_stream_that_stops_sending_is_cut_and_retried(model, tmp_path):
    # Every delta waits 2 s: with a 0.3 s idle limit each attempt is cut after message_start.
    model.load({"turns": [{"content": "slow answer", "delay_ms": 2000}]})
    events = await run(make_agent(model, tmp_path, idle_timeout=0.3, stream_retries=1))
    retries = of(events, ev.Retrying)
    assert len(retries) == 1 and "nothing more from the model for 0.3 s" in retries[0].reason
    [error] = of(events, ev.ErrorEvent)
    assert "nothing more from the model" in error.message
    assert events[-1].stop_reason == "error"
    assert len(model.requests) == 2  # one attempt, one retry: no hidden SDK retries


async def test_a_retry_after_beyond_the_cap_is_an_error_naming_the_wait(model, tmp_path):
    model.load({"turns": [{"content": "never", "faults": [
        {"http_status": 429, "retry_after": 3600}]}]})
    events = await run(make_agent(model, tmp_path, max_retry_after=60))
    assert not of(events, ev.Retrying)
    [error] = of(events, ev.ErrorEvent)
    assert error.kind == "rate_limited" and "3600 s" in error.message and "60 s" in error.message
    assert len(model.requests) == 1  # the SDK did not sleep and retry on its own either


@pytest.mark.parametrize("status", [529, 500])
async def test_each_failure_costs_exactly_one_visible_retry(model, tmp_path, status):
    model.load({"turns": [{"content": "ok", "faults": [{"http_status": status, "times": 2}]}]})
    events = await run(make_agent(model, tmp_path))
    assert [r.attempt for r in of(events, ev.Retrying)] == [1, 2]
    assert len(model.requests) == 3
    assert events[-1].stop_reason == "end_turn"


async def test_summaries_go_through_the_same_policy(model, tmp_path):
    settings = ModelSettings(model="test-model", api_key="k", base_url=model.base_url,
                             backoff_base=0.01)
    service = ModelService(settings, make_client(settings))
    model.load({"turns": [{"content": "the summary", "faults": [{"http_status": 529}]}]})
    from lsp_agent.model.service import ModelRequest

    summary = await service.summarise(ModelRequest(
        "test-model", [], [], [{"role": "user", "content": "summarise"}], 100))
    assert summary.text == "the summary"
    assert len(model.requests) == 2
