"""Context engineering through a real Session: the real SDK against the scripted model server,
whose prefix-based cache accounting and count_tokens make cache and size claims testable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.context.compaction import CLEARED
from lsp_agent.context.manager import ContextPolicy
from lsp_agent.edits.landing import ApplyReport
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.scripted.usage import canonical_json, estimate_tokens
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

MODEL = "claude-sonnet-4-5"
SUMMARY_MARKER = "[compaction]"
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")


class NoEdits:
    async def apply(self, targets: Any, scopes: Any = None) -> ApplyReport:
        return ApplyReport.refused("no edits in these tests")


def make_session(server: ScriptedModelServer, workspace: Path, events: list[ev.AgentEvent],
                 policy: ContextPolicy | None = None,
                 safety_options: dict[str, Any] | None = None) -> Session:
    settings = ModelSettings(model=MODEL, fallback_model=None, api_key="k",
                             base_url=server.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    config = SessionConfig(workspace=workspace, settings=settings, mode="bypassPermissions",
                           state_dir=workspace / ".state", context=policy or ContextPolicy(),
                           user_memory_dirs=[], safety_options=safety_options)
    return Session(config, model=ModelService(settings, client), tools=default_pool(),
                   documents=DiskDocuments(),
                   diagnostics=DiagnosticsStore(), applier=NoEdits(), sink=events.append,
                   asker=None)


def read(path: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Read", "input": {"path": path}}


def summary_turn(text: str = "SUMMARY: the user asked for work; it is in progress.",
                 otherwise: Any = "ok") -> dict[str, Any]:
    """A turn that answers a compaction request with ``text`` and anything else with
    ``otherwise`` (sequential scenarios: a summary consumes a turn like any request)."""
    return {"content": otherwise,
            "when": [{"user_text_contains": SUMMARY_MARKER, "content": text}]}


def of(events: list[ev.AgentEvent], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def segment_tokens(values: list[Any]) -> int:
    return sum(estimate_tokens(canonical_json(
        {k: v for k, v in value.items() if k != "cache_control"})) for value in values)


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py", "c.py"):
        (ws / name).write_text(f"# {name}\n" + "def f():\n    return 1\n" * 5)
    (ws / "pkg" / "mod.py").write_text("VALUE = 1\n")
    return ws


async def test_cache_reads_are_most_of_the_input_from_the_second_request_on(model, workspace):
    model.load({"turns": [
        {"content": [read("a.py")]}, {"content": [read("b.py")]},
        {"content": [read("c.py")]}, {"content": "first done"},
        {"content": [read("a.py")]}, {"content": "second done"},
    ]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("look at the files")
    await session.prompt("and again")
    usages = [u.usage for u in of(events, ev.UsageReport)]
    assert len(usages) == 6
    assert usages[0].cache_read_input_tokens == 0
    for usage in usages[1:]:
        total = (usage.input_tokens + usage.cache_read_input_tokens
                 + usage.cache_creation_input_tokens)
        assert usage.cache_read_input_tokens / total >= 0.9, usage


async def test_fixed_overhead_of_the_default_pool_is_under_4k_tokens(model, workspace):
    model.load({"turns": [{"content": "hi"}]})
    session = make_session(model, workspace, [])  # auto memory on (empty), as by default
    await session.prompt("hi")
    body = model.requests[0]
    overhead = segment_tokens(body["tools"]) + segment_tokens(body["system"])
    assert overhead <= 4000, overhead
    names = [t["name"] for t in body["tools"]]
    assert names == sorted(names) and "ToolSearch" in names and "Hover" not in names


async def test_auto_memory_adds_under_230_tokens_when_empty(model, workspace):
    """Its tool and its guide are in every request: budgeted on their own (the index grows
    with what is saved, up to its 25 KB limit)."""
    overheads = []
    for options in ({"autoMemory": False}, None):
        model.load({"turns": [{"content": "hi"}]})
        session = make_session(model, workspace, [], safety_options=options)
        await session.prompt("hi")
        body = model.requests[0]
        overheads.append(segment_tokens(body["tools"]) + segment_tokens(body["system"]))
    assert "Memory" in [t["name"] for t in body["tools"]]
    assert 0 < overheads[1] - overheads[0] <= 230, overheads


async def test_tool_search_adds_schemas_for_the_rest_of_the_session(model, workspace):
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "ToolSearch",
                      "input": {"query": "hover type information"}}]},
        {"content": "loaded"}, {"content": "next turn"},
    ]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("what type is x?")
    await session.prompt("more")
    tools = [[t["name"] for t in body["tools"]] for body in model.requests]
    assert "Hover" not in tools[0] and "Hover" in tools[1] and "Hover" in tools[2]
    assert tools[1] == sorted(tools[1])
    result = of(events, ev.ToolResult)[0]
    assert not result.is_error and "Hover" in result.content


async def test_memory_files_root_in_system_nested_after_first_read(model, workspace):
    (workspace / "AGENTS.md").write_text("Root rule: run pytest -q.\n")
    (workspace / "pkg" / "CLAUDE.md").write_text("Pkg rule: keep VALUE an int.\n")
    model.load({"turns": [{"content": [read("pkg/mod.py")]}, {"content": [read("pkg/mod.py")]},
                          {"content": "done"}]})
    session = make_session(model, workspace, [])
    await session.prompt("check pkg")
    system = "\n".join(b["text"] for b in model.requests[0]["system"])
    assert "Root rule" in system and "Pkg rule" not in system
    after_first, after_second = (model.requests[i]["messages"][-1]["content"] for i in (1, 2))
    assert after_first[0]["type"] == "tool_result"
    assert "Pkg rule" in after_first[-1]["text"], "nested memory follows the results"
    assert all("Pkg rule" not in b.get("text", "") for b in after_second), "loaded once"
    assert model.requests[1]["system"] == model.requests[0]["system"], "system unchanged"


async def test_prompt_too_long_compacts_and_retries_once(model, workspace):
    model.load({"sequencing": "sequential", "turns": [
        {"content": "first answer"},
        {**summary_turn(), "faults": [{"http_status": 400, "message": "prompt is too long"}]},
        {"content": "second answer"},
    ]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("the original task: rename foo")
    ended = await session.prompt("now the follow-up")
    assert ended.stop_reason == "end_turn"
    boundary = of(events, ev.CompactBoundary)
    assert [b.trigger for b in boundary] == ["prompt_too_long"]
    retried = model.requests[-1]["messages"]
    sent = canonical_json(retried)
    assert "the original task: rename foo" in sent and "SUMMARY:" in sent
    assert retried[-1]["content"][-1]["text"] == "now the follow-up"
    assert [r["outcome"] for r in model.records] == ["ok", "http_error", "ok", "ok"]


async def test_a_second_prompt_too_long_ends_the_turn(model, workspace):
    too_long = {"http_status": 400, "message": "prompt is too long"}
    model.load({"sequencing": "sequential", "turns": [
        {"content": "first answer"},
        {**summary_turn(), "faults": [too_long]},
        {"content": "never", "faults": [too_long]},
    ]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("task")
    ended = await session.prompt("again")
    assert ended.stop_reason == "error"
    assert len(of(events, ev.CompactBoundary)) == 1
    assert of(events, ev.ErrorEvent)[-1].kind == "prompt_too_long"


async def test_circuit_breaker_stops_auto_compaction_after_three_failures(model, workspace):
    # The window is smaller than the fixed prompt: every request wants compaction, and every
    # summary comes back empty.
    model.load({"sequencing": "sequential",
                "turns": [summary_turn(text=[], otherwise="ok") for _ in range(20)]})
    events: list[ev.AgentEvent] = []
    policy = ContextPolicy(window_tokens=3000, reserve_tokens=500)
    session = make_session(model, workspace, events, policy)
    for i in range(6):
        assert (await session.prompt(f"turn {i}")).stop_reason == "end_turn"
    summaries = [b for b in model.requests if SUMMARY_MARKER in canonical_json(b["messages"][-1])]
    assert len(summaries) == 3
    failures = [e for e in of(events, ev.ErrorEvent) if e.kind == "compaction_failed"]
    assert len(failures) == 3 and "off for this session" in failures[-1].message
    assert not of(events, ev.CompactBoundary)


async def test_old_tool_results_are_cleared_past_the_threshold(model, workspace):
    (workspace / "big.py").write_text("x = 1  # padding\n" * 150)
    model.load({"turns": [{"content": [read("big.py")]} for _ in range(6)]
                + [{"content": "done"}]})
    events: list[ev.AgentEvent] = []
    policy = ContextPolicy(window_tokens=40_000, clear_results_ratio=0.15, keep_recent_results=2,
                           clear_min_ratio=0.02)
    session = make_session(model, workspace, events, policy)
    await session.prompt("read it a lot")
    cleared = [b for b in of(events, ev.CompactBoundary) if b.strategy == "clear_tool_results"]
    assert cleared and cleared[0].tokens_after < cleared[0].tokens_before
    last = model.requests[-1]["messages"]
    results = [b["content"] for m in last for b in m["content"] if b["type"] == "tool_result"]
    assert results[-2:] != [CLEARED, CLEARED] and CLEARED in results[:-2]


async def test_manual_compaction_with_instructions(model, workspace):
    model.load({"sequencing": "sequential", "turns": [
        {"content": [read("a.py")]}, {"content": "read it"},
        summary_turn("SUMMARY: a.py was read."), {"content": "continuing"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("inspect a.py")
    boundary = await session.compact("keep the function names")
    assert boundary is not None and boundary.trigger == "manual"
    assert len(session.agent.conversation.messages) == 1, "one message carries the summary"
    assert "keep the function names" in canonical_json(model.requests[2]["messages"][-1])
    await session.prompt("go on")
    first = canonical_json(model.requests[3]["messages"][0])
    assert "inspect a.py" in first and "SUMMARY: a.py was read." in first
    assert "Current content of a.py" in first, "recently used files are read again"


async def test_cost_report_precedes_turn_end_and_accumulates(model, workspace):
    model.load({"turns": [{"content": [read("a.py")]}, {"content": "one"}, {"content": "two"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("first")
    await session.prompt("second")
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["cost", "turn_ended"]
    first, second = of(events, ev.CostReport)
    assert first.turn.usd > 0 and first.session.usd == pytest.approx(first.turn.usd)
    # Each figure is rounded to 6 decimals: the sum of two may differ in the last one.
    assert second.session.usd == pytest.approx(first.turn.usd + second.turn.usd, abs=2e-6)
    assert second.turn.cache_savings_usd > 0
    assert [m.model for m in second.session.by_model] == [MODEL]


async def test_context_report_breaks_tokens_down_by_part(model, workspace):
    (workspace / "AGENTS.md").write_text("Root rule.\n")
    model.load({"turns": [{"content": [read("a.py")]}, {"content": "done"}]})
    session = make_session(model, workspace, [])
    await session.prompt("read a.py")
    report = await session.context_report()
    parts = report["parts"]
    assert all(parts[k] > 0 for k in ("system", "tools", "memory", "messages", "toolResults"))
    assert report["source"] == "count_tokens"
    assert abs(report["totalTokens"] - sum(parts.values())) <= 5
    assert report["cost"]["usd"] > 0


async def test_pressure_is_reported_when_the_window_fills(model, workspace):
    model.load({"turns": [{"content": "ok"}]})
    events: list[ev.AgentEvent] = []
    policy = ContextPolicy(window_tokens=4_500, reserve_tokens=200, warning_ratio=0.5)
    session = make_session(model, workspace, events, policy)
    await session.prompt("hello")
    pressure = of(events, ev.ContextPressure)
    assert pressure and pressure[0].level == "warning" and pressure[0].window_tokens == 4_500


def write_hooks(workspace: Path, command: str) -> None:
    settings = workspace / ".lsp-agent" / "settings.local.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"hooks": {"PreCompact": [
        {"hooks": [{"type": "command", "command": command}]}]}}))


async def test_pre_compact_hook_adds_to_the_summary_instructions(model, workspace):
    write_hooks(workspace, "echo 'Keep the ticket number TODO-42.'")
    model.load({"sequencing": "sequential", "turns": [
        {"content": "noted"}, summary_turn("SUMMARY: ticket work.")]})
    session = make_session(model, workspace, [])
    await session.prompt("work on the ticket")
    assert await session.compact("mention the files") is not None
    asked = canonical_json(model.requests[1]["messages"][-1])
    assert "mention the files" in asked and "TODO-42" in asked


async def test_pre_compact_hook_can_refuse(model, workspace):
    write_hooks(workspace, "echo 'not now' >&2; exit 2")
    model.load({"sequencing": "sequential", "turns": [{"content": "noted"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    await session.prompt("work on the ticket")
    assert await session.compact() is None
    assert len(model.requests) == 1, "no summary was requested"
    failed = [e for e in of(events, ev.ErrorEvent) if e.kind == "compaction_failed"]
    assert failed and "not now" in failed[0].message
