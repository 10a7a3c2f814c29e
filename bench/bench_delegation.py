"""Delegation: do children of one response run in parallel, and what does delegating save?

A real Session (in-process) with the real SDK against the scripted model server:

* parallelism: N read-only children started by one response, each answering after a fixed
  pause (``--delay-ms``); reported is the span from the first child's start to the last one's
  end, for N = 1 and N = 4, and their ratio (the issue's target: < 1.3);
* context: the parent's last request after a task that reads 30 files, done inline (the parent
  reads them) and delegated (a child reads them and returns a summary): its input tokens as
  the scripted server counts them, and its size in bytes.

    python bench/bench_delegation.py [--delay-ms 300] [--runs 3]

Results: bench/results/delegation.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import anthropic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import run_facts  # noqa: E402
from lsp_agent.model.client import ModelSettings  # noqa: E402
from lsp_agent.model.service import ModelService  # noqa: E402
from lsp_agent.scripted.server import ScriptedModelServer  # noqa: E402
from lsp_agent.sessions.session import Session, SessionConfig  # noqa: E402
from lsp_agent.tools.pool import default_pool  # noqa: E402
from lsp_agent.types import events as ev  # noqa: E402
from lsp_agent.workspace.diagnostics import DiagnosticsStore  # noqa: E402
from lsp_agent.workspace.documents import DiskDocuments  # noqa: E402

EXPLORE = {"system_contains": "You are Explore"}
FILES = 30


class NoEditor:
    async def apply(self, targets: Any, scopes: Any = None) -> Any:
        raise RuntimeError("the benchmark makes no edits")


def session_for(server: ScriptedModelServer, workspace: Path, events: list[ev.AgentEvent]
                ) -> Session:
    settings = ModelSettings(model="claude-sonnet-4-5", fallback_model=None, api_key="k",
                             base_url=server.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    config = SessionConfig(workspace=workspace, settings=settings, mode="bypassPermissions",
                           state_dir=workspace.parent / "state", user_memory_dirs=[])
    return Session(config, model=ModelService(settings, client), tools=default_pool(),
                   documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                   applier=NoEditor(), sink=events.append, asker=None)


def read(path: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Read", "input": {"path": path}}


def explore(n: int) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": f"look {n}", "prompt": f"Read file_{n}.py", "subagent_type": "Explore"}}


async def children_span(server: ScriptedModelServer, workspace: Path, n: int,
                        delay_ms: int) -> float:
    server.load({"chunk_chars": 100_000, "turns": [
        {"content": [explore(i) for i in range(n)],
         "when": [{**EXPLORE, "content": [read("file_0.py")]}]},
        {"content": "done", "delay_ms": delay_ms,
         "when": [{**EXPLORE, "content": "SUMMARY: file_0.py defines f0."}]},
    ]})
    events: list[ev.AgentEvent] = []
    session = session_for(server, workspace, events)
    try:
        await session.prompt("look")
    finally:
        await session.close()
    starts = [e.ts for e in events if isinstance(e, ev.SubagentStarted)]
    ends = [e.ts for e in events if isinstance(e, ev.SubagentEnded)]
    assert len(starts) == len(ends) == n, "every child ran"
    return max(ends) - min(starts)


async def last_parent_request(server: ScriptedModelServer, workspace: Path,
                              delegated: bool) -> dict[str, int]:
    reads = [read(f"file_{i}.py") for i in range(FILES)]
    first: dict[str, Any] = {"content": reads}
    if delegated:
        first = {"content": [{"type": "tool_use", "name": "Agent", "input": {
            "description": "read everything", "prompt": "Read all files and summarise.",
            "subagent_type": "Explore"}}], "when": [{**EXPLORE, "content": reads}]}
    server.load({"turns": [
        first,
        {"content": "done", "when": [{**EXPLORE, "content": "SUMMARY: 30 small modules."}]}]})
    events: list[ev.AgentEvent] = []
    session = session_for(server, workspace, events)
    try:
        await session.prompt("read the project")
    finally:
        await session.close()
    parent = [r for r in server.records
              if "You are Explore" not in json.dumps(r["body"].get("system"))]
    body = parent[-1]["body"]
    usage = [e for e in events if isinstance(e, ev.UsageReport) and e.agent_id is None][-1].usage
    return {"input_tokens": usage.input_tokens + usage.cache_read_input_tokens
            + usage.cache_creation_input_tokens,
            "bytes": len(json.dumps(body["messages"]))}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        for i in range(FILES):
            (workspace / f"file_{i}.py").write_text(
                "".join(f"def f{i}_{k}(x):\n    return x * {k}\n\n" for k in range(40)))
        with ScriptedModelServer({"turns": []}) as server:
            spans = {n: [await children_span(server, workspace, n, args.delay_ms)
                         for _ in range(args.runs)] for n in (1, 4)}
            inline = await last_parent_request(server, workspace, delegated=False)
            delegated = await last_parent_request(server, workspace, delegated=True)
    one, four = (statistics.median(spans[n]) for n in (1, 4))
    result = {"delay_ms": args.delay_ms, "runs": args.runs,
              "children_span_s": {"1": one, "4": four}, "ratio_4_to_1": four / one,
              "parent_last_request": {"inline": inline, "delegated": delegated},
              "meta": run_facts()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "delegation.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    print(f"| 1 child, first start to last end (median of {args.runs}) | {one:.3f} s |")
    print(f"| 4 children of one response | {four:.3f} s |")
    print(f"| ratio 4 : 1 (target < 1.3) | {four / one:.2f} |")
    for name, row in (("inline", inline), ("delegated", delegated)):
        print(f"| parent's last request, {FILES} files read {name} | "
              f"{row['input_tokens']:,} input tokens, {row['bytes']:,} bytes |")


if __name__ == "__main__":
    asyncio.run(main())
