"""Delegation: do children of one response run in parallel, and what does delegating save?

A real Session (in-process) with the real SDK against the scripted model server:

* parallelism: N read-only children started by one response, each answering after a fixed
  pause (``--delay-ms``), the scripted server in a process of its own (as a real endpoint);
  reported is the span from the first child's start to the last one's end, for N = 1 and
  N = 4 (runs interleaved), their ratio (the issue's target: < 1.3), and the agent process's
  CPU time for the turn;
* context: the parent's last request after a task that reads 30 files, done inline (the parent
  reads them) and delegated (a child reads them and returns a summary): its input tokens as
  the scripted server counts them, and its size in bytes;
* worktree isolation, on a git repository of ``--repo-files`` files: a plain
  ``git worktree add`` next to ``Worktrees.create`` (the same plus its record and checks), the
  start of an isolated child through a Session (from the Agent call's execution to
  ``subagent_started``), the end of a child that changed one file (commit, keep), and the
  whole worktree -> proposal path with one uncommitted file in the workspace (create, copy
  the uncommitted state in as the base, one change, commit, read it back rebased onto the
  workspace as the proposal's edits, remove); p50.

    python bench/bench_delegation.py [--delay-ms 300] [--runs 3] [--repo-files 3000]

Results: bench/results/delegation.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import run_facts  # noqa: E402
from lsp_agent.agent.worktree_return import collect, seed  # noqa: E402
from lsp_agent.model.client import ModelSettings  # noqa: E402
from lsp_agent.model.service import ModelService  # noqa: E402
from lsp_agent.permissions.secrets import DEFAULT_RULES  # noqa: E402
from lsp_agent.scripted.server import ScriptedModelServer  # noqa: E402
from lsp_agent.sessions.session import Session, SessionConfig  # noqa: E402
from lsp_agent.tools.pool import default_pool  # noqa: E402
from lsp_agent.types import events as ev  # noqa: E402
from lsp_agent.workspace.diagnostics import DiagnosticsStore  # noqa: E402
from lsp_agent.workspace.documents import DiskDocuments  # noqa: E402
from lsp_agent.workspace.worktrees import Worktrees  # noqa: E402

EXPLORE = {"system_contains": "You are Explore"}
FILES = 30


class ProcessServer:
    """The scripted model server in a process of its own, as a real endpoint is: its work does
    not compete with the agent's event loop (nor its GIL). ``load`` restarts it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def load(self, scenario: dict[str, Any]) -> None:
        self.stop()
        path = self.folder / "scenario.json"
        path.write_text(json.dumps(scenario))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent.scripted.server", "--scenario", str(path)],
            stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().split()[1]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class NoEditor:
    async def apply(self, targets: Any, scopes: Any = None) -> Any:
        raise RuntimeError("the benchmark makes no edits")


def session_for(server: ScriptedModelServer | ProcessServer, workspace: Path,
                events: list[ev.AgentEvent]) -> Session:
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


async def children_span(server: ScriptedModelServer | ProcessServer, workspace: Path, n: int,
                        delay_ms: int, cpu: list[float] | None = None) -> float:
    server.load({"chunk_chars": 100_000, "turns": [
        {"content": [explore(i) for i in range(n)],
         "when": [{**EXPLORE, "content": [read("file_0.py")]}]},
        {"content": "done", "delay_ms": delay_ms,
         "when": [{**EXPLORE, "content": "SUMMARY: file_0.py defines f0."}]},
    ]})
    events: list[ev.AgentEvent] = []
    session = session_for(server, workspace, events)
    started = time.process_time()
    try:
        await session.prompt("look")
    finally:
        await session.close()
    if cpu is not None:
        cpu.append(time.process_time() - started)
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


def run_git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def make_repo(root: Path, files: int) -> Path:
    repo = root / "repo"
    for i in range(files):
        folder = repo / f"pkg{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod_{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "files"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    return repo


async def worktree_figures(server: ScriptedModelServer, root: Path, files: int,
                           runs: int) -> dict[str, Any]:
    repo = await asyncio.to_thread(make_repo, root, files)
    plain, store_create, finish, child_start, roundtrip = [], [], [], [], []
    for n in range(runs):
        target = root / f"plain-{n}"
        started = time.perf_counter()
        await asyncio.to_thread(run_git, repo, "worktree", "add", "-q", "-b", f"plain-{n}",
                                str(target), "HEAD")
        plain.append(time.perf_counter() - started)
        await asyncio.to_thread(run_git, repo, "worktree", "remove", "--force", str(target))
        store = Worktrees(root / "state")
        started = time.perf_counter()
        record = await store.create(repo, f"agent-bench{n}")
        store_create.append(time.perf_counter() - started)
        (Path(record.path) / "pkg0" / "mod_0.py").write_text("changed = True\n")
        started = time.perf_counter()
        await store.finish(record, "bench")
        finish.append(time.perf_counter() - started)
        await store.remove(record.agent_id)
        child_start.append(await isolated_child_start(server, repo))
        roundtrip.append(await worktree_to_proposal(store, repo, n))
    return {"repo_files": files, "runs": runs,
            "plain_git_worktree_add_p50_s": statistics.median(plain),
            "worktrees_create_p50_s": statistics.median(store_create),
            "isolated_child_start_p50_s": statistics.median(child_start),
            "finish_with_one_change_p50_s": statistics.median(finish),
            "worktree_to_proposal_p50_s": statistics.median(roundtrip)}


async def worktree_to_proposal(store: Worktrees, repo: Path, n: int) -> float:
    """The isolated child's whole git path, without the model: create, seed with the
    workspace's uncommitted file, one change, finish, collect (the proposal's edits), drop."""
    uncommitted = repo / "pkg0" / "mod_1.py"
    original = uncommitted.read_text()
    uncommitted.write_text(original + "# uncommitted\n")
    try:
        started = time.perf_counter()
        record = await store.create(repo, f"agent-round{n}")
        await seed(store, record, DEFAULT_RULES)
        (Path(record.path) / "pkg0" / "mod_0.py").write_text("changed = True\n")
        await store.finish(record, "bench")
        back = await collect(store, record, repo, DiskDocuments(), DEFAULT_RULES)
        await store.drop(record)
        elapsed = time.perf_counter() - started
    finally:
        uncommitted.write_text(original)
    assert [e.path.name for e in back.edits] == ["mod_0.py"], back
    return elapsed


async def isolated_child_start(server: ScriptedModelServer, repo: Path) -> float:
    server.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Agent", "input": {
            "description": "look", "prompt": "Look.", "subagent_type": "general-purpose",
            "isolation": "worktree"}}],
         "when": [{"system_contains": "isolated git worktree", "content": "nothing to do"}]},
        {"content": "done"}]})
    events: list[ev.AgentEvent] = []
    session = session_for(server, repo, events)
    try:
        await session.prompt("go")
    finally:
        await session.close()
    call = next(e.ts for e in events if isinstance(e, ev.ToolExecutionStarted)
                and e.name == "Agent")
    started = next(e.ts for e in events if isinstance(e, ev.SubagentStarted))
    return started - call


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo-files", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "ws"
        workspace.mkdir()
        for i in range(FILES):
            (workspace / f"file_{i}.py").write_text(
                "".join(f"def f{i}_{k}(x):\n    return x * {k}\n\n" for k in range(40)))
        with ScriptedModelServer({"turns": []}) as server:
            cpu: dict[int, list[float]] = {1: [], 4: []}
            spans: dict[int, list[float]] = {1: [], 4: []}
            endpoint = ProcessServer(Path(tmp))
            try:
                for _ in range(args.runs):  # interleaved: a change of load hits both
                    for n in (1, 4):
                        spans[n].append(await children_span(endpoint, workspace, n,
                                                            args.delay_ms, cpu[n]))
            finally:
                endpoint.stop()
            inline = await last_parent_request(server, workspace, delegated=False)
            delegated = await last_parent_request(server, workspace, delegated=True)
            worktrees = await worktree_figures(server, Path(tmp), args.repo_files, args.runs)
    one, four = (statistics.median(spans[n]) for n in (1, 4))
    result = {"delay_ms": args.delay_ms, "runs": args.runs,
              "children_span_s": {"1": one, "4": four}, "ratio_4_to_1": four / one,
              "turn_cpu_s": {str(n): statistics.median(cpu[n]) for n in (1, 4)},
              "parent_last_request": {"inline": inline, "delegated": delegated},
              "worktree": worktrees, "meta": run_facts()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "delegation.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n|---|---|")
    print(f"| 1 child, first start to last end (median of {args.runs}) | {one:.3f} s |")
    print(f"| 4 children of one response | {four:.3f} s |")
    print(f"| ratio 4 : 1 (target < 1.3) | {four / one:.2f} |")
    print(f"| agent process CPU of the turn, 1 / 4 children | "
          f"{statistics.median(cpu[1]) * 1000:.0f} / {statistics.median(cpu[4]) * 1000:.0f} ms |")
    for name, row in (("inline", inline), ("delegated", delegated)):
        print(f"| parent's last request, {FILES} files read {name} | "
              f"{row['input_tokens']:,} input tokens, {row['bytes']:,} bytes |")
    files = worktrees["repo_files"]
    for key, label in (("plain_git_worktree_add_p50_s", "plain `git worktree add`"),
                       ("worktrees_create_p50_s", "Worktrees.create (add + record)"),
                       ("isolated_child_start_p50_s", "isolated child: Agent call to start"),
                       ("finish_with_one_change_p50_s", "child end, one file changed (commit)"),
                       ("worktree_to_proposal_p50_s",
                        "worktree -> proposal: create, seed, commit, collect, remove")):
        print(f"| {label}, {files:,}-file repo (p50) | {worktrees[key] * 1000:.0f} ms |")


if __name__ == "__main__":
    asyncio.run(main())
