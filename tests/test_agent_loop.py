"""The agent loop in-process: real SDK, scripted model server over HTTP, test tools with
controllable duration. Concurrency is asserted on the timestamps the loop records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
from pydantic import BaseModel

from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.tools.base import Tool, ToolContext, ToolPool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments


class WaitInput(BaseModel):
    label: str
    seconds: float = 0.2


class SlowLook(Tool):
    name = "SlowLook"
    description = "A read-only tool that takes a while."
    input_model = WaitInput
    access = "read"

    async def call(self, args: WaitInput, ctx: ToolContext) -> str:
        await asyncio.sleep(args.seconds)
        return f"looked at {args.label}"


class SlowChange(Tool):
    name = "SlowChange"
    description = "A tool with side effects that takes a while."
    input_model = WaitInput

    async def call(self, args: WaitInput, ctx: ToolContext) -> str:
        await asyncio.sleep(args.seconds)
        return f"changed {args.label}"


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[Any]) -> str:
        raise AssertionError("no edits in these tests")


def use(name: str, label: str, seconds: float = 0.2) -> dict[str, Any]:
    return {"type": "tool_use", "name": name, "input": {"label": label, "seconds": seconds}}


def make_agent(model: ScriptedModelServer, tmp_path: Path, *, max_parallel: int = 8,
               mode: str = "bypassPermissions", asker=None) -> Agent:
    settings = ModelSettings(model="test-model", api_key="k", base_url=model.base_url,
                             backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)

    def context(tool_use_id: str) -> ToolContext:
        return ToolContext(workspace=tmp_path, documents=DiskDocuments(),
                           proposals=NoProposals(), diagnostics=DiagnosticsStore(),
                           results_dir=tmp_path / "results", tool_use_id=tool_use_id)

    return Agent(AgentDeps(
        model=ModelService(settings, client), tools=ToolPool([SlowLook(), SlowChange()]),
        gate=PermissionGate(tmp_path, mode), system=lambda: [{"type": "text", "text": "t"}],
        tool_context=context, asker=asker, max_parallel_tools=max_parallel, session_id="s1"))


async def run(agent: Agent, text: str = "go") -> list[ev.AgentEvent]:
    return [e async for e in agent.run_turn([{"type": "text", "text": text}])]


def spans(events: list[ev.AgentEvent]) -> dict[str, ev.ToolResult]:
    return {e.content.split()[-1]: e for e in events if isinstance(e, ev.ToolResult)}


async def test_read_only_calls_overlap_and_a_change_waits_for_them(model, tmp_path):
    model.load({"turns": [
        {"content": [use("SlowLook", "a"), use("SlowLook", "b"), use("SlowLook", "c"),
                     use("SlowChange", "x", 0.1), use("SlowLook", "d", 0.05)]},
        {"content": "done"},
    ]})
    events = await run(make_agent(model, tmp_path))
    r = spans(events)
    reads = [r["a"], r["b"], r["c"]]
    assert max(x.started_at for x in reads) < min(x.finished_at for x in reads), "reads overlap"
    assert r["x"].started_at >= max(x.finished_at for x in reads), "change waits for reads"
    assert r["d"].started_at >= r["x"].finished_at, "a later read waits for the change"
    # Results go back to the model in call order, whatever order they finished in.
    answered = model.requests[1]["messages"][-1]["content"]
    assert [b["content"] for b in answered] == [
        "looked at a", "looked at b", "looked at c", "changed x", "looked at d"]
    assert events[-1].stop_reason == "end_turn"


async def test_parallel_reads_are_bounded(model, tmp_path):
    model.load({"turns": [
        {"content": [use("SlowLook", "a"), use("SlowLook", "b"), use("SlowLook", "c")]},
        {"content": "done"},
    ]})
    r = spans(await run(make_agent(model, tmp_path, max_parallel=2)))
    moments = sorted({x.started_at for x in r.values()})
    for t in moments:  # at no start were more than two calls running
        running = [x for x in r.values() if x.started_at <= t < x.finished_at]
        assert len(running) <= 2
    assert r["c"].started_at >= min(r["a"].finished_at, r["b"].finished_at)


async def test_a_tool_starts_while_the_model_is_still_streaming(model, tmp_path):
    model.load({"turns": [
        {"content": [use("SlowLook", "a", 0.01), {"type": "text", "text": "x" * 300}],
         "delay_ms": 5, "chunk_chars": 3},
        {"content": "done"},
    ]})
    events = await run(make_agent(model, tmp_path))
    kinds = [e.type for e in events]
    first_result = kinds.index("tool_result")
    last_text = len(kinds) - 1 - kinds[::-1].index("text_delta")
    assert first_result < last_text, "the tool finished before the stream did"


async def test_bad_tool_calls_become_error_results(model, tmp_path):
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "NoSuchTool", "input": {}},
                     {"type": "tool_use", "name": "SlowLook", "input": {"seconds": "soon"}}]},
        {"content": "ok"},
    ]})
    events = await run(make_agent(model, tmp_path))
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert all(r.is_error for r in results)
    assert "No tool named 'NoSuchTool'" in results[0].content
    assert "SlowLook" in results[0].content  # lists what exists
    assert "label" in results[1].content and "seconds" in results[1].content


async def test_asked_permission_is_evented_and_remembered(model, tmp_path):
    asked: list[ev.PermissionAsked] = []

    async def asker(event: ev.PermissionAsked) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("allow", remember=True)

    model.load({"turns": [
        {"content": [use("SlowChange", "x", 0)]},
        {"content": [use("SlowChange", "x", 0)]},
        {"content": "done"},
    ]})
    agent = make_agent(model, tmp_path, mode="default", asker=asker)
    events = await run(agent)
    assert len(asked) == 1 and asked[0].session_id == "s1", "asked once, then remembered"
    decided = [e for e in events if isinstance(e, ev.PermissionDecided)]
    assert [d.source for d in decided] == ["user"]
    assert all(not e.is_error for e in events if isinstance(e, ev.ToolResult))


class CancelsItsTurn(Tool):
    """Asks for the turn's cancel and finishes in the same step: the cancel reaches this call's
    wait, which completes anyway, so the turn itself never sees a CancelledError."""
    name = "CancelsItsTurn"
    description = "Cancels the turn it runs in."
    input_model = WaitInput
    access = "read"
    agent: Agent | None = None

    async def call(self, args: WaitInput, ctx: ToolContext) -> str:
        assert self.agent is not None
        self.agent.cancel()
        return "asked"


async def test_a_cancel_that_a_finishing_tool_swallows_still_ends_the_turn(model, tmp_path):
    model.load({"turns": [{"content": [use("CancelsItsTurn", "x")]},
                          {"content": "a second request must not be sent"}]})
    agent = make_agent(model, tmp_path)
    tool = CancelsItsTurn()
    tool.agent = agent
    agent.deps.tools = ToolPool([tool])
    seen = await asyncio.wait_for(run(agent), 10)
    assert seen[-1].stop_reason == "cancelled"
    assert len(model.requests) == 1


async def test_cancel_during_tools_answers_every_tool_use(model, tmp_path):
    model.load({"turns": [
        {"content": [use("SlowLook", "quick", 0.0), use("SlowChange", "slow", 30)]},
        {"content": "after"},
    ]})
    agent = make_agent(model, tmp_path)
    seen: list[ev.AgentEvent] = []

    async def consume() -> None:
        async for e in agent.run_turn([{"type": "text", "text": "go"}]):
            seen.append(e)
            if isinstance(e, ev.ToolExecutionStarted) and e.name == "SlowChange":
                agent.cancel()

    await asyncio.wait_for(consume(), 10)
    assert seen[-1].stop_reason == "cancelled"
    messages = agent.conversation.messages
    results = {b["tool_use_id"]: b for b in messages[-1]["content"]}
    uses = [b for b in messages[-2]["content"] if b["type"] == "tool_use"]
    assert set(results) == {u["id"] for u in uses}
    quick, slow = (results[u["id"]] for u in uses)
    assert quick["content"] == "looked at quick" and "is_error" not in quick
    assert slow["is_error"] and "Cancelled" in slow["content"]


def test_every_event_round_trips_through_its_wire_form():
    samples = [
        ev.TextDelta(text="hi", session_id="s", seq=1),
        ev.ToolResult(tool_use_id="t", name="Read", content="x", is_error=True),
        ev.ProposalCreated(proposal_id="p", tool_use_id="t", files=[ev.FileChangeView(
            uri="file:///a", path="a", is_new=False, version=None, diff="d",
            hunks=[ev.HunkView(id="f1.h1", header="@@", diff="d")])]),
        ev.TurnEnded(stop_reason="cancelled", usage=ev.Usage(input_tokens=3), rounds=1),
        ev.PermissionDecided(tool_use_id="t", tool="Bash", decision="deny", source="timeout"),
    ]
    for event in samples:
        wire = event.wire()
        assert "sessionId" in wire and "session_id" not in wire
        assert ev.parse_event(wire) == event


async def test_stream_error_after_a_tool_started_discards_it_and_retries(model, tmp_path):
    # The slow change starts as soon as its input is complete; the stream then fails. The
    # retry must cancel it (its result would answer a message that is never kept) and the
    # conversation must only hold the retried response.
    model.load({"turns": [
        {"content": [use("SlowChange", "x", 1.5), {"type": "text", "text": "tail " * 40}],
         "faults": [{"stream_error": "api_error", "after_events": 9}]},
        {"content": "done"},
    ]})
    agent = make_agent(model, tmp_path)
    events = await asyncio.wait_for(run(agent), 30)
    kinds = [e.type for e in events]
    assert "retrying" in kinds and events[-1].stop_reason == "end_turn"
    assert kinds.index("tool_execution_started") < kinds.index("retrying")
    replies = [m for m in agent.conversation.messages if m["role"] == "assistant"]
    uses = [b for m in replies for b in m["content"] if b["type"] == "tool_use"]
    assert len(uses) == 1, "only the retried response's tool use is kept"
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert [r.content for r in results] == ["changed x"], "the aborted call left no result"


async def test_a_tool_call_cut_by_the_output_limit_is_not_run(model, tmp_path):
    model.load({"turns": [
        {"content": [{"type": "text", "text": "Changing it now."}, use("SlowChange", "x", 0)],
         "stop_reason": "max_tokens"},
        {"content": [use("SlowChange", "y", 0)], "expect": {"user_text_contains": "cut off"}},
        {"content": "done"},
    ]})
    agent = make_agent(model, tmp_path)
    events = await run(agent)
    results = [e for e in events if isinstance(e, ev.ToolResult)]
    assert [(r.is_error, r.content) for r in results] == [
        (True, "Not run: the output token limit cut this call's input short."),
        (False, "changed y")]
    first_reply = agent.conversation.messages[1]
    assert [b["type"] for b in first_reply["content"]] == ["text"], "the cut call is left out"
    assert events[-1].stop_reason == "end_turn"
