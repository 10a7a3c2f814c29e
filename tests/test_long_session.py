"""A 300-turn session with a small context window: it never errors, every request stays under
the window, the user's original task survives every compaction, and prompt caching keeps
working between compactions (asserted on the scripted server's own cache accounting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.context.manager import ContextPolicy
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.scripted.usage import canonical_json, estimate_request_tokens
from lsp_agent.types import events as ev
from tests.test_context_session import SUMMARY_MARKER, make_session, of, read

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")

TURNS = 300
WINDOW = 8_000
ORIGINAL = "Original task: keep calc.py's add() correct while we review it step by step."

# Every scripted turn is the same: a compaction request gets a summary, a tool result gets a
# short answer, a prompt gets a Read. So the sequence stays right however many summaries occur.
UNIVERSAL_TURN = {
    "content": [read("calc.py")],
    "when": [
        {"user_text_contains": SUMMARY_MARKER,
         "content": "SUMMARY: we are reviewing calc.py step by step; add() is correct so far."},
        {"tool_result_is_error": False, "content": "Step reviewed; nothing to change."},
    ],
}


async def test_three_hundred_turns_stay_inside_the_window(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n" * 12)
    policy = ContextPolicy(window_tokens=WINDOW, reserve_tokens=1_500, keep_recent_results=4)
    events: list[ev.AgentEvent] = []
    with ScriptedModelServer({"sequencing": "sequential",
                              "turns": [UNIVERSAL_TURN] * (2 * TURNS + 100)}) as model:
        session = make_session(model, workspace, events, policy)
        stops = [(await session.prompt(ORIGINAL if i == 0 else f"Step {i}: go on.")).stop_reason
                 for i in range(TURNS)]
        bodies = model.requests
        outcomes = {r["outcome"] for r in model.records}

    assert stops == ["end_turn"] * TURNS
    assert outcomes == {"ok"} and not of(events, ev.ErrorEvent)
    boundaries = of(events, ev.CompactBoundary)
    summaries = [b for b in boundaries if b.strategy == "summary"]
    assert len(summaries) >= 5 and any(b.strategy == "clear_tool_results" for b in boundaries)
    assert all(b.tokens_after < policy.summarise_at for b in summaries)

    sizes = [estimate_request_tokens(body) for body in bodies]
    assert max(sizes) <= WINDOW, "request size is bounded by the window"
    for index, body in enumerate(bodies):
        assert ORIGINAL in canonical_json(body["messages"]), f"request {index} lost the task"

    assert_cache_reads_between_compactions(events)


def assert_cache_reads_between_compactions(events: list[ev.AgentEvent]) -> None:
    """From the second request on, >= 90% of input tokens are cache reads, except the one
    request right after the history was rewritten (a compaction necessarily misses once)."""
    checked, fresh = 0, True
    for event in events:
        if isinstance(event, ev.CompactBoundary):
            fresh = True
        elif isinstance(event, ev.UsageReport):
            u = event.usage
            total = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
            if not fresh:
                assert u.cache_read_input_tokens / total >= 0.9, (checked, u)
                checked += 1
            fresh = False
    assert checked >= 2 * TURNS * 0.9
