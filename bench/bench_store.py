"""Storage benchmarks for sessions that last (lsp_agent/store).

1. **append**: the cost of ``TranscriptWriter.append`` on the event loop, per event, for a
   realistic mix (prompts with editor context, assistant text and tool calls, tool results of
   2-40 KB, usage, turn ends, todos, proposals), while the writer thread writes. For
   reference, the same lines written with ``os.write`` on the loop itself.
2. **load**: loading a 1,000-turn session (tool results included) and rebuilding what a
   resume needs (messages after the latest compaction, the first history page, todos, cost).
3. **checkpoint**: the cost per turn of recording the pre-images of a 10-file change in a large
   real source tree (an sdist from PyPI, 20k+ files), side by side in the same run with a
   Cline-style shadow git (``git add -A && git commit`` with its own GIT_DIR and the tree as
   work tree), interleaved turn by turn (the order alternates), the first turns untimed
   (warm-up), every operation bounded by a timeout; timeouts and errors are counted.
   Then the disk each approach used for those checkpoints.

    python bench/bench_store.py                     # full run (a few minutes on 2 cores)
    python bench/bench_store.py --quick             # fewer events and turns
    python bench/bench_store.py --only append,load
    python bench/bench_store.py --package django    # another sdist (default: ansible)
    python bench/bench_store.py --tree ~/src/big    # an existing tree instead of an sdist

Results: bench/results/store.json and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from lsp_agent.store import CaptureRules, Checkpointer, Redactor, Store, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store.writer import dumps_line, open_writer_blocking

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import run_facts

RESULTS = Path(__file__).parent / "results" / "store.json"
GIT_TIMEOUT = 300.0
OURS_TIMEOUT = 30.0
WARMUP_TURNS = 2
FILES_PER_TURN = 10


def machine_info() -> dict[str, Any]:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=10)
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git.stdout.strip(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(values), "p50": statistics.median(ordered), "p95": pick(0.95),
            "p99": pick(0.99), "max": ordered[-1], "mean": statistics.fmean(ordered)}


# -- a realistic event mix ----------------------------------------------------------------------


def text_of(rng: random.Random, size: int) -> str:
    words = ["def", "return", "self", "value", "import", "class", "None", "for", "in", "if",
             "error", "test", "path", "config", "=", "(", ")", ":", "\n    ", "\n"]
    out: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(words)
        out.append(word)
        total += len(word) + 1
    return " ".join(out)[:size]


def turn_events(rng: random.Random, turn: int) -> list[en.Entry]:
    """One turn as the session would record it: a prompt with editor context, 1-3 tool rounds,
    a final answer, usage per request, a turn end; sometimes todos and a proposal."""
    prompt = f"turn {turn}: " + text_of(rng, rng.randint(20, 300))
    context = {"uri": f"file:///ws/src/mod{turn % 40}.py", "selectionText": text_of(rng, 200),
               "range": {"start": {"line": 3, "character": 0}, "end": {"line": 9, "character": 0}}}
    events = [en.user_prompt(prompt, [{"type": "text", "text": prompt},
                                      {"type": "text", "text": text_of(rng, 600)}],
                             editor_context=context)]
    for round_ in range(rng.randint(1, 3)):
        tool_id = f"toolu_{turn}_{round_}"
        events.append(en.assistant([
            {"type": "text", "text": text_of(rng, rng.randint(50, 400))},
            {"type": "tool_use", "id": tool_id, "name": "Read",
             "input": {"file_path": f"src/mod{round_}.py"}}], "claude-sonnet-4-5", "tool_use"))
        events.append(en.usage("claude-sonnet-4-5", {"input_tokens": 12000,
                                                     "output_tokens": 300}, 0.04))
        size = rng.choice([2_000, 4_000, 8_000, 40_000]) if rng.random() < 0.9 else 500
        events.append(en.tool_results(
            [{"type": "tool_result", "tool_use_id": tool_id, "content": text_of(rng, size)}],
            [{"toolUseId": tool_id, "name": "Read", "isError": False}]))
    if rng.random() < 0.3:
        events.append(en.todos([{"content": f"step {i}", "status": "pending"} for i in range(5)]))
    if rng.random() < 0.2:
        events.append(en.proposal(f"p{turn}", f"toolu_{turn}_0", [
            {"path": "src/a.py", "isNew": False, "diff": text_of(rng, 1500)}]))
        events.append(en.proposal_decision(f"p{turn}", "accepted", accepted=["h1"]))
    events.append(en.assistant([{"type": "text", "text": text_of(rng, rng.randint(100, 1500))}],
                               "claude-sonnet-4-5", "end_turn"))
    events.append(en.usage("claude-sonnet-4-5", {"input_tokens": 14000,
                                                 "output_tokens": 500}, 0.05))
    events.append(en.turn_end("end_turn", 2, {"input_tokens": 26000}, 0.09))
    return events


# -- 1. append ----------------------------------------------------------------------------------


async def bench_append(tmp: Path, turns: int) -> dict[str, Any]:
    rng = random.Random(1)
    events = [e for t in range(1, turns + 1) for e in turn_events(rng, t)]
    path = tmp / "append" / "s.jsonl"
    writer = open_writer_blocking(path, "s", cwd="/ws", redactor=Redactor(["not-in-any-line"]),
                                  loop=asyncio.get_running_loop())
    by_type: dict[str, list[float]] = {}
    all_us: list[float] = []
    started = time.perf_counter()
    for i, event in enumerate(events):
        kind = event["type"]
        t0 = time.perf_counter_ns()
        writer.append(event)
        elapsed = (time.perf_counter_ns() - t0) / 1000
        all_us.append(elapsed)
        by_type.setdefault(kind, []).append(elapsed)
        if i % 25 == 0:
            await asyncio.sleep(0)  # let the loop breathe as a real session would
    queued = time.perf_counter()
    await writer.close()
    drained = time.perf_counter()
    size = path.stat().st_size

    # Reference: the same lines written on the loop itself, one os.write each.
    ref_path = tmp / "append" / "direct.jsonl"
    fd = os.open(ref_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    direct_us: list[float] = []
    try:
        for event in events:
            stamped = {"uuid": "x" * 36, "parentUuid": "y" * 36, "sessionId": "s",
                       "timestamp": "2026-01-01T00:00:00.000Z", **event}
            t0 = time.perf_counter_ns()
            os.write(fd, (dumps_line(stamped) + "\n").encode())
            direct_us.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        os.close(fd)
    return {
        "events": len(events), "bytes": size,
        "append_us": percentiles(all_us),
        "append_us_by_type": {k: percentiles(v) for k, v in sorted(by_type.items())},
        "direct_write_on_loop_us": percentiles(direct_us),
        "enqueue_all_s": queued - started, "drain_after_last_append_s": drained - queued,
    }


# -- 2. load -----------------------------------------------------------------------------------


CONTEXT_CHARS = 600_000  # about 150k tokens: past this the session compacts (a summary)


def make_long_session(tmp: Path, turns: int) -> tuple[Path, int]:
    """A session of ``turns`` turns that compacts whenever the history since the last
    summary would pass ~150k tokens, as auto-compaction would. Returns the path and the number
    of compactions."""
    rng = random.Random(2)
    path = tmp / "load" / "long.jsonl"
    writer = open_writer_blocking(path, "long", cwd="/ws", redactor=Redactor())
    since_summary = 0
    compactions = 0
    for turn in range(1, turns + 1):
        for event in turn_events(rng, turn):
            writer.append(event)
            since_summary += len(json.dumps(event.get("message", "")))
        if since_summary > CONTEXT_CHARS:
            writer.append(en.compact_boundary(
                strategy="summary", trigger="auto", tokens_before=150_000, tokens_after=9_000,
                summary=text_of(rng, 6000), messages=[{"role": "user", "content": [
                    {"type": "text", "text": text_of(rng, 30_000)}]}]))
            since_summary = 0
            compactions += 1
    writer.close_blocking()
    return path, compactions


def bench_load(tmp: Path, turns: int, repeats: int) -> dict[str, Any]:
    path, compactions = make_long_session(tmp, turns)

    def resume() -> dict[str, int]:
        """All a resumed session needs: the model's messages, the first history page, the
        todo list, the cost, pending proposals and the writer's state (turns, index)."""
        reader = load_transcript(path)
        messages = reader.messages()
        page = reader.history(limit=50)
        reader.todos()
        reader.cost()
        reader.pending_proposals()
        reader.writer_state()
        return {"entries": len(reader.records), "messages": len(messages),
                "page": len(page.items), "turns": len(reader.turns())}

    shape = resume()  # warm-up (page cache, imports)
    timings: dict[str, list[float]] = {"load_ms": [], "load_cpu_ms": [], "resume_ms": [],
                                       "resume_cpu_ms": []}
    for _ in range(repeats):
        for name, call in (("load", lambda: load_transcript(path)), ("resume", resume)):
            wall, cpu = time.perf_counter(), time.thread_time()
            call()
            timings[f"{name}_cpu_ms"].append((time.thread_time() - cpu) * 1000)
            timings[f"{name}_ms"].append((time.perf_counter() - wall) * 1000)
    return {"turns": turns, "compactions": compactions, "file_bytes": path.stat().st_size,
            **shape, **{k: percentiles(v) for k, v in timings.items()}}


async def bench_server_resume(tmp: Path, turns: int, repeats: int) -> dict[str, Any]:
    """``agent/resumeSession`` of a ``turns``-turn session through a real ``lsp-agent serve``
    (started before the clock runs), then the first history page: what a client waits for
    before the session can take its next prompt and show its latest messages."""
    from lsp_agent.client.lsp_client import AgentClient

    long_path, _ = make_long_session(tmp / "server", turns)
    workspace = tmp / "server-ws"
    workspace.mkdir()
    state = tmp / "server-state"
    store = Store(state)
    target = store.layout.transcript(workspace, "long")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LSP_AGENT_STATE_DIR": str(state), "ANTHROPIC_API_KEY": "bench",
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "LSP_AGENT_LOG": "warning"}
    timings: dict[str, list[float]] = {"resume_ms": [], "first_page_ms": []}
    errors = 0

    async def nothing(*_: Any) -> dict[str, Any]:
        return {}

    for i in range(repeats + 1):  # the first run warms the page cache and imports
        shutil.copyfile(long_path, target)
        client = AgentClient(workspace, lambda _e: None, nothing, nothing, env=env,
                             server_log=tmp / "server.log")
        await client.start()
        try:
            # A first session pays the server's one-time imports (the model client): not
            # part of resuming.
            await client.new_session()
            started = time.perf_counter()
            await client.request("agent/resumeSession", {"sessionId": "long"})
            resumed = time.perf_counter()
            await client.request("agent/sessionHistory", {"sessionId": "long", "limit": 50})
            paged = time.perf_counter()
        except Exception:
            errors += 1
            continue
        finally:
            await client.stop()
        if i:
            timings["resume_ms"].append((resumed - started) * 1000)
            timings["first_page_ms"].append((paged - resumed) * 1000)
    return {"turns": turns, "file_bytes": long_path.stat().st_size, "repeats": repeats,
            "errors": errors, **{k: percentiles(v) for k, v in timings.items()}}


# -- 3. checkpoints ----------------------------------------------------------------------------


def fetch_tree(tmp: Path, package: str, sdist: Path | None) -> Path:
    if sdist is None:
        download = tmp / "sdist"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-q", "-d", str(download), package], check=True, timeout=900)
        sdist = next(download.glob("*.tar.gz"))
    target = tmp / "tree"
    with tarfile.open(sdist) as archive:
        archive.extractall(target, filter="data")
    roots = list(target.iterdir())
    return roots[0] if len(roots) == 1 else target


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def apparent(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)


class ShadowGit:
    """Cline's checkpoints: a separate git dir whose work tree is the user's repository."""

    def __init__(self, git_dir: Path, work_tree: Path):
        self.git_dir = git_dir
        self.env = {**os.environ, "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work_tree),
                    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                    "GIT_COMMITTER_NAME": "bench",
                    "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
        self.work_tree = work_tree

    def run(self, *args: str) -> None:
        subprocess.run(["git", *args], env=self.env, cwd=self.work_tree, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=GIT_TIMEOUT)

    def init(self) -> None:
        self.run("init", "-q")
        self.run("config", "gc.auto", "0")  # no surprise repacks inside a timed commit
        self.run("config", "core.autocrlf", "false")

    def checkpoint(self, message: str) -> None:
        self.run("add", "-A")
        self.run("commit", "-q", "--allow-empty", "--no-verify", "-m", message)


def pick_files(root: Path, count: int, rng: random.Random) -> list[Path]:
    rules = CaptureRules(root)
    candidates = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in rules.ignored_dirs]
        for name in files:
            if name.endswith((".py", ".yml", ".yaml", ".md", ".rst", ".txt")):
                path = Path(dirpath) / name
                if 2_000 < path.stat().st_size < 200_000:
                    candidates.append(path)
    candidates.sort()
    return rng.sample(candidates, count)


async def bench_checkpoints(tmp: Path, tree: Path, turns: int) -> dict[str, Any]:
    files = count_files(tree)
    rng = random.Random(3)
    changed = pick_files(tree, FILES_PER_TURN, rng)
    shadow = ShadowGit(tmp / "shadow.git", tree)
    shadow.init()
    t0 = time.perf_counter()
    errors = {"ours": 0, "shadow_git": 0}
    timeouts = {"ours": 0, "shadow_git": 0}
    try:
        shadow.checkpoint("initial")
        init_s: float | None = time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        init_s = None
        timeouts["shadow_git"] += 1
    git_initial_bytes = du(shadow.git_dir)

    store = Store(tmp / "state", redactor=Redactor())
    writer = await store.create(tree)
    checkpointer = Checkpointer(CaptureRules(tree), store.blobs, writer.append)
    ours_ms: list[float] = []
    git_ms: list[float] = []
    ours_cpu_ms: list[float] = []  # this process (loop, capture thread, writer thread)
    git_cpu_ms: list[float] = []  # the git processes
    paths = [str(p.relative_to(tree)) for p in changed]

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def git_turn(turn: int) -> tuple[float, float] | None:
        start, cpu = time.perf_counter(), children_cpu()
        try:
            shadow.checkpoint(f"turn {turn}")
        except subprocess.TimeoutExpired:
            timeouts["shadow_git"] += 1
            return None
        except subprocess.CalledProcessError:
            errors["shadow_git"] += 1
            return None
        return (time.perf_counter() - start) * 1000, (children_cpu() - cpu) * 1000

    async def our_turn(turn: int) -> tuple[float, float] | None:
        checkpointer.begin_turn(writer.append(en.user_prompt(f"turn {turn}", [])))
        start, cpu = time.perf_counter(), time.process_time()
        try:
            entries = await asyncio.wait_for(checkpointer.before_write(paths), OURS_TIMEOUT)
            await writer.flush()  # the backup entries are on disk too
        except TimeoutError:
            timeouts["ours"] += 1
            return None
        if any(e.get("skipped") for e in entries):
            errors["ours"] += 1
        return (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000

    def edit(turn: int) -> None:
        for path in changed:
            with path.open("a") as f:
                f.write(f"# edited in turn {turn}\n")

    for turn in range(1, turns + WARMUP_TURNS + 1):
        timed = turn > WARMUP_TURNS
        if turn % 2:  # ours, the agent's edits, then the shadow commit of the result
            ours = await our_turn(turn)
            edit(turn)
            theirs = await asyncio.to_thread(git_turn, turn)
        else:  # the shadow commit first, then ours and the edits
            theirs = await asyncio.to_thread(git_turn, turn)
            ours = await our_turn(turn)
            edit(turn)
        if timed and ours is not None:
            ours_ms.append(ours[0])
            ours_cpu_ms.append(ours[1])
        if timed and theirs is not None:
            git_ms.append(theirs[0])
            git_cpu_ms.append(theirs[1])
    await writer.close()

    backup_line_bytes = sum(len(line) + 1 for line in writer.path.read_text().splitlines()
                            if '"type":"file_backup"' in line)
    git_loose_bytes = du(shadow.git_dir)
    t0 = time.perf_counter()
    try:
        shadow.run("gc", "-q")
        gc_s: float | None = time.perf_counter() - t0
    except subprocess.TimeoutExpired:
        gc_s = None
    return {
        "package_tree_files": files, "turns_timed": turns, "warmup_turns": WARMUP_TURNS,
        "files_per_turn": FILES_PER_TURN,
        "changed_file_bytes": sum(p.stat().st_size for p in changed),
        "ours_ms": percentiles(ours_ms), "shadow_git_ms": percentiles(git_ms),
        "ours_cpu_ms": percentiles(ours_cpu_ms), "shadow_git_cpu_ms": percentiles(git_cpu_ms),
        "shadow_git_initial_commit_s": init_s, "errors": errors, "timeouts": timeouts,
        "disk": {
            "ours_blob_bytes_on_disk": du(store.blobs.root),
            "ours_blob_bytes_apparent": apparent(store.blobs.root),
            "ours_backup_entry_bytes": backup_line_bytes,
            "shadow_git_after_initial_commit": git_initial_bytes,
            "shadow_git_after_checkpoints_loose": git_loose_bytes,
            "shadow_git_increment_loose": git_loose_bytes - git_initial_bytes,
            "shadow_git_after_gc": du(shadow.git_dir), "shadow_git_gc_s": gc_s,
        },
    }


# -- report ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def mib(value: int) -> str:
    return f"{value / 1024 / 1024:.2f}"


def report(results: dict[str, Any]) -> None:
    if "append" in results:
        a = results["append"]
        print(f"\n### Append on the event loop ({a['events']} events, "
              f"{a['bytes'] / 1e6:.1f} MB)\n")
        print("| event | n | p50 (us) | p95 (us) | p99 (us) | max (us) |\n"
              "|---|---|---|---|---|---|")
        rows = [("all", a["append_us"]), *a["append_us_by_type"].items(),
                ("reference: os.write on the loop", a["direct_write_on_loop_us"])]
        for name, p in rows:
            print(f"| {name} | {p['n']} | {fmt(p['p50'], 1)} | {fmt(p['p95'], 1)} | "
                  f"{fmt(p['p99'], 1)} | {fmt(p['max'], 1)} |")
        print(f"\nwriter thread: drained {fmt(a['drain_after_last_append_s'])} s after the "
              f"last append (enqueueing took {fmt(a['enqueue_all_s'])} s)")
    if "load" in results:
        lo = results["load"]
        print(f"\n### Load of a {lo['turns']}-turn session ({lo['file_bytes'] / 1e6:.1f} MB, "
              f"{lo['entries']} entries)\n")
        print(f"({lo['compactions']} summaries on the way; {lo['messages']} messages after "
              "the last one)\n")
        print("| step | wall p50 (ms) | wall p95 (ms) | CPU p50 (ms) |\n|---|---|---|---|")
        for name, key in (("parse + chain", "load"), ("full resume", "resume")):
            wall, cpu = lo[f"{key}_ms"], lo[f"{key}_cpu_ms"]
            print(f"| {name} | {fmt(wall['p50'], 1)} | {fmt(wall['p95'], 1)} | "
                  f"{fmt(cpu['p50'], 1)} |")
    if "server_resume" in results:
        r = results["server_resume"]
        print(f"\n### Resume through the server ({r['turns']} turns, "
              f"{r['file_bytes'] / 1e6:.1f} MB, {r['repeats']} runs, {r['errors']} errors)\n")
        print("| request | p50 (ms) | p95 (ms) | max (ms) |\n|---|---|---|---|")
        for name, key in (("agent/resumeSession", "resume_ms"),
                          ("agent/sessionHistory, first page", "first_page_ms")):
            p = r[key]
            print(f"| {name} | {fmt(p.get('p50'), 1)} | {fmt(p.get('p95'), 1)} | "
                  f"{fmt(p.get('max'), 1)} |")
    if "checkpoint" in results:
        c = results["checkpoint"]
        d = c["disk"]
        print(f"\n### Checkpoint per turn ({c['package_tree_files']} files, "
              f"{c['files_per_turn']} files changed a turn, {c['turns_timed']} timed turns)\n")
        print("| approach | wall p50 (ms) | wall p95 (ms) | wall max (ms) | CPU p50 (ms) | "
              "errors | timeouts |\n|---|---|---|---|---|---|---|")
        for name, key in (("lsp-agent pre-images", "ours"), ("shadow git", "shadow_git")):
            p, cpu = c[f"{key}_ms"], c[f"{key}_cpu_ms"]
            print(f"| {name} | {fmt(p.get('p50'), 2)} | {fmt(p.get('p95'), 2)} | "
                  f"{fmt(p.get('max'), 2)} | {fmt(cpu.get('p50'), 2)} | {c['errors'][key]} | "
                  f"{c['timeouts'][key]} |")
        print(f"\nshadow git initial commit: {fmt(c['shadow_git_initial_commit_s'], 1)} s")
        print("\n| disk (MiB) | lsp-agent | shadow git |\n|---|---|---|")
        initial = mib(d["shadow_git_after_initial_commit"])
        print(f"| before the first checkpoint | 0.00 | {initial} |")
        ours = d["ours_blob_bytes_on_disk"] + d["ours_backup_entry_bytes"]
        count = c["turns_timed"] + c["warmup_turns"]
        print(f"| {count} checkpoints of the change | {mib(ours)} | "
              f"{mib(d['shadow_git_increment_loose'])} (loose objects) |")
        print(f"| total | {mib(ours)} | {mib(d['shadow_git_after_checkpoints_loose'])}; "
              f"{mib(d['shadow_git_after_gc'])} after git gc |")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    only = (set(args.only.split(",")) if args.only
            else {"append", "load", "server_resume", "checkpoint"})
    results: dict[str, Any] = {"machine": {**machine_info(), **run_facts()},
                               "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as raw:
        tmp = Path(raw)
        if "append" in only:
            results["append"] = await bench_append(tmp, 50 if args.quick else 300)
        if "load" in only:
            results["load"] = await asyncio.to_thread(
                bench_load, tmp, 1000, 3 if args.quick else 10)
        if "server_resume" in only:
            results["server_resume"] = await bench_server_resume(
                tmp, 1000, 3 if args.quick else 10)
        if "checkpoint" in only:
            tree = Path(args.tree) if args.tree else await asyncio.to_thread(
                fetch_tree, tmp, args.package, Path(args.sdist) if args.sdist else None)
            if args.tree:  # never touch the user's tree: work on a copy
                copy = tmp / "tree-copy"
                await asyncio.to_thread(shutil.copytree, tree, copy, symlinks=True)
                tree = copy
            results["checkpoint"] = await bench_checkpoints(
                tmp, tree, 20 if args.quick else 100)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only",
                        help="comma list of: append, load, server_resume, checkpoint")
    parser.add_argument("--package", default="ansible", help="sdist to download from PyPI")
    parser.add_argument("--sdist", help="use this downloaded sdist instead")
    parser.add_argument("--tree", help="use a copy of this source tree instead")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    report(results)
    print(f"\nmachine: {json.dumps(results['machine'])}")
    # Sections not run this time keep their last results; each section says when it ran.
    merged: dict[str, Any] = {}
    if RESULTS.exists():
        merged = json.loads(RESULTS.read_text())
    for section in ("append", "load", "server_resume", "checkpoint"):
        if section in results:
            merged[section] = {**results[section], "machine": results["machine"],
                               "args": results["args"]}
    merged.pop("machine", None)
    merged.pop("args", None)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=1) + "\n")


if __name__ == "__main__":
    main()
