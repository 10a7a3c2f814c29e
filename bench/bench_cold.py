"""Cold start: a fix-a-bug task by `lsp-agent run` and by Claude Code's `claude -p`, side by side,
and language-server start (spawn to initialize response, idle memory) next to
jedi-language-server and pylsp.

1. **fix**: a small project with one failing test; the scripted model answers 4 requests in
   each agent's own tool vocabulary (Read the file, Edit it, Bash the test, a final text).
   `lsp-agent run` twice over: a *first run* (a fresh project and HOME: no warm server, so the
   run starts one, client/warm.py) and a run *reusing the warm server* an earlier run of the
   same project started. Through a warm server, the run's CPU includes the warm server's (its
   own and its forks', from /proc; for a first run also the warm-up it does once the run is
   over) and its memory the warm server's tree (sampled).
   Per run: wall time, CPU (user+sys of the process and every child it reaped), time from the
   spawn to the first model request (the model server's clock), from the last response to the
   exit, bytes per request, peak RSS (the largest process; and the largest sum over the live
   tree, sampled every 20 ms).
2. **initialize**: `lsp-agent serve`, jedi-language-server and pylsp from spawn to the parsed
   initialize response (raw JSON-RPC over stdio), then the server tree's RSS after 2 s idle.

Every comparison is interleaved (rotating order, several rounds) after one guarded warm-up per
thing measured; failures enter the percentiles at the timeout value and are counted. Both
agents and the model server run in a network namespace whose only interface is the loopback
(recorded: ``network_isolated``). Peers are pinned (bench/peers.py) and their versions recorded.

    python bench/bench_cold.py                # 5 rounds of each
    python bench/bench_cold.py --quick        # 2 rounds
    python bench/bench_cold.py --only fix --rounds 9

Results: bench/results/cold-<date>.json and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench import peers  # noqa: E402
from bench.common import (  # noqa: E402
    NETNS_FLAG,
    LoadWatch,
    Samples,
    failures_note,
    fmt,
    in_loopback_namespace,
    load_note,
    loopback_up,
    machine_facts,
    measured_env,
    our_versions,
    ratio,
    rotations,
    run_measured,
    tree_of,
    tree_rss_kib,
    warm_up,
    write_results,
)
from bench.timed_model import TimedModel  # noqa: E402

VENV_BIN = Path(sys.executable).parent
RUN_TIMEOUT = 120.0
INIT_TIMEOUT = 30.0
IDLE_SETTLE_S = 2.0

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
PROMPT = "test_add fails. Find the bug in calc.py and fix it."
FIRST, REUSED, CLAUDE = "lsp-agent run", "lsp-agent run (reused)", "claude -p"
AGENTS = (FIRST, REUSED, CLAUDE)
KEEPALIVE_S = "600"  # the default; the bench stops every warm server it started
BASELINE_PREFIX = "lsp-agent run @"  # --baseline DIR: another checkout's run, as a first run


# --------------------------------------------------------------------------- the task


def make_project(root: Path) -> Path:
    workspace = root / "project"
    workspace.mkdir(parents=True)
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(TEST)
    return workspace


def tool_inputs(agent: str, workspace: Path) -> dict[str, dict[str, Any]]:
    """The same three steps in each agent's tool vocabulary (Claude Code's tools want absolute
    ``file_path``s and a Bash ``description``)."""
    if agent.startswith("lsp-agent"):
        return {"Read": {"path": "calc.py"},
                "Edit": {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
                "Bash": {"command": "python -m pytest -q"}}
    calc = str(workspace / "calc.py")
    return {"Read": {"file_path": calc},
            "Edit": {"file_path": calc, "old_string": "a - b", "new_string": "a + b"},
            "Bash": {"command": "python -m pytest -q", "description": "Run the tests"}}


def fix_turns(agent: str, workspace: Path) -> list[dict[str, Any]]:
    steps = tool_inputs(agent, workspace)
    return [
        {"content": [{"type": "text", "text": "Let me look at calc.py."},
                     {"type": "tool_use", "name": "Read", "input": steps["Read"]}]},
        {"content": [{"type": "text", "text": "add() subtracts; fixing it."},
                     {"type": "tool_use", "name": "Edit", "input": steps["Edit"]}]},
        {"content": [{"type": "tool_use", "name": "Bash", "input": steps["Bash"]}]},
        {"content": "Fixed: add() returned a - b; it returns a + b and the test passes."},
    ]


def fix_scenario(agent: str, workspace: Path) -> dict[str, Any]:
    return {"name": f"fix-{agent.split()[0]}", "turns": fix_turns(agent, workspace)}


def agent_env(agent: str, home: Path, base_url: str) -> dict[str, str]:
    """An empty HOME and private folders for each run (the reused run: the same ones every
    time); PATH finds this venv's python (with pytest) first; every Python started gets the
    persistent bytecode cache."""
    path = f"{peers.PROJECT_VENV / 'bin'}:{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
    if agent.startswith("claude"):
        return measured_env(peers.claude_env(home, base_url)) | {"PATH": path}
    extra = {"XDG_RUNTIME_DIR": str(home / "rt"), "LSP_AGENT_RUN_KEEPALIVE": KEEPALIVE_S}
    if agent.startswith(BASELINE_PREFIX):
        extra["PYTHONPATH"] = agent[len(BASELINE_PREFIX):]
    return extra | measured_env({
        "HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "TERM": "dumb",
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "bench-dummy-key",
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "LSP_AGENT_CONFIG_DIR": str(home / "config"), "LSP_AGENT_STATE_DIR": str(home / "state"),
        "LSP_AGENT_CACHE_DIR": str(home / "cache")})


def agent_command(agent: str, workspace: Path, claude: Path) -> list[str]:
    if agent.startswith("claude"):
        return [str(claude), "-p", PROMPT, "--output-format", "json",
                "--permission-mode", "acceptEdits", "--allowedTools", "Bash(python -m pytest*)"]
    program = VENV_BIN / "lsp-agent"
    head = [str(program)] if program.exists() else [sys.executable, "-m", "lsp_agent"]
    if agent.startswith(BASELINE_PREFIX):  # that checkout's code, on PYTHONPATH
        head = [sys.executable, "-m", "lsp_agent"]
    return [*head, "run", PROMPT, "--workspace", str(workspace), "--yes",
            "--permission-mode", "acceptEdits"]


@dataclass
class FixRun:
    wall_s: float
    cpu_s: float
    first_request_s: float | None
    exit_after_last_s: float | None
    bytes_per_request: float | None
    requests: int
    max_rss_mb: float
    peak_tree_rss_mb: float
    problem: str | None  # why the run does not count as a fix (None: it did the task)


# --------------------------------------------------------------------------- warm servers


def warm_servers(home: Path) -> list[int]:
    """The pids of the warm servers `run` started with this HOME (their status files)."""
    pids = []
    for status in (home / "rt" / "lsp-agent").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids.append(int(json.loads(status.read_text())["pid"]))
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def cpu_of(pid: int) -> float:
    """User+sys seconds of a process and of the children it reaped (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def warm_statuses(home: Path) -> list[dict[str, Any]]:
    found = []
    for status in (home / "rt" / "lsp-agent").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(status.read_text()))
    return found


def wait_warm(home: Path, limit: float = 60.0) -> None:
    """Until the warm servers a first run started have warmed up (after the run, while
    nobody waits): that CPU is the first run's too."""
    deadline = time.monotonic() + limit
    while any(not s.get("warm") for s in warm_statuses(home)) and time.monotonic() < deadline:
        time.sleep(0.05)


def settle(pid: int, limit: float = 10.0) -> None:
    """Until the warm server has reaped the fork that served the run (its CPU is then in
    the warm server's cutime/cstime)."""
    deadline = time.monotonic() + limit
    while tree_of(pid)[1:] and time.monotonic() < deadline:
        time.sleep(0.01)


def stop_warm_servers(home: Path) -> None:
    for pid in warm_servers(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_fix(agent: str, model: TimedModel, root: Path, claude: Path,
            timeout: float = RUN_TIMEOUT) -> tuple[FixRun | None, str | None]:
    """One run of the task. Returns (measurements, None), or (None, 'timeout'). A first run
    (and Claude Code) gets a fresh project and HOME; the reused run keeps both, with the
    project put back as it was, so that its warm server is the one earlier runs started."""
    home = root / "home"
    if agent == REUSED and home.exists():
        workspace = root / "project"
        (workspace / "calc.py").write_text(CALC)
        shutil.rmtree(workspace / ".pytest_cache", ignore_errors=True)
        shutil.rmtree(workspace / "__pycache__", ignore_errors=True)
    else:
        if home.exists():
            stop_warm_servers(home)
        shutil.rmtree(root, ignore_errors=True)
        workspace = make_project(root)
        home.mkdir()
    warm_before = {pid: cpu_of(pid) for pid in warm_servers(home)}
    model.load(fix_scenario(agent, workspace))
    run = run_measured(agent_command(agent, workspace, claude),
                       env=agent_env(agent, home, model.base_url), cwd=workspace,
                       timeout=timeout, also_sample=lambda: list(warm_before))
    warm_cpu = 0.0
    if agent != REUSED:
        wait_warm(home)
    for pid in warm_servers(home):  # the run's server was a warm server's fork
        settle(pid)
        warm_cpu += cpu_of(pid) - warm_before.get(pid, 0.0)
    run.cpu_s += warm_cpu
    if agent != REUSED:
        stop_warm_servers(home)  # a first run's warm server: not for the next first run
    if run.timed_out:
        return None, "timeout"
    timings = model.timings()
    records = model.records()
    main = [t for t in timings if t["has_tools"]] or timings
    problems = []
    if run.returncode != 0:
        problems.append(f"exit {run.returncode}: {(run.stderr or run.stdout)[-300:]}")
    if (workspace / "calc.py").read_text() == CALC:
        problems.append("calc.py not fixed")
    bad = [r["outcome"] for r in records if r["outcome"] != "ok"]
    if bad or len(main) != 4:
        problems.append(f"{len(main)} main requests, outcomes not ok: {bad}")
    last_end = main[-1]["ended"] if main else None
    return FixRun(
        wall_s=run.wall_s, cpu_s=run.cpu_s,
        first_request_s=main[0]["arrived"] - run.started if main else None,
        exit_after_last_s=run.ended - last_end if last_end else None,
        bytes_per_request=sum(t["bytes"] for t in timings) / len(timings) if timings else None,
        requests=len(timings), max_rss_mb=run.max_rss_kib / 1024,
        peak_tree_rss_mb=run.peak_tree_rss_kib / 1024,
        problem="; ".join(problems) or None), None


FIX_METRICS = ("wall_s", "cpu_s", "first_request_s", "exit_after_last_s", "bytes_per_request",
               "max_rss_mb", "peak_tree_rss_mb")


def bench_fix(rounds: int, model: TimedModel, workdir: Path, claude: Path,
              agents: tuple[str, ...]) -> dict[str, Any]:
    samples = {a: {m: Samples(timeout=RUN_TIMEOUT) for m in FIX_METRICS} for a in agents}
    runs: dict[str, list[dict[str, Any]]] = {a: [] for a in agents}
    warmups = []
    for agent in agents:  # fills the bytecode cache and the page cache; untimed
        print(f"  fix: warm-up {agent}", flush=True)
        warmups.append(warm_up(agent, partial(_checked_fix, agent, model, workdir, claude)))
    watch = LoadWatch()
    for number, order in enumerate(rotations(list(agents), rounds)):
        loaded = watch.round_started()
        for agent in order:
            result, failure = run_fix(agent, model, fix_root(workdir, agent), claude)
            wall = samples[agent]["wall_s"]
            if result is None:
                wall.add_timeout(loaded=loaded)
                runs[agent].append({"round": number, "failure": failure})
                continue
            runs[agent].append({"round": number, **vars(result), "loaded": loaded})
            if result.problem:
                wall.add_error(result.problem, loaded=loaded)
                continue
            for metric in FIX_METRICS:
                value = getattr(result, metric)
                if value is not None:
                    samples[agent][metric].add(value, loaded=loaded)
            print(f"  fix: round {number} {agent}: {result.wall_s:.2f} s", flush=True)
    for agent in agents:
        stop_warm_servers(fix_root(workdir, agent) / "home")
    return {
        "rounds": rounds, "order": rotations(list(agents), rounds),
        "warmups": [vars(w) for w in warmups], "load": watch.finish(),
        "stats": {a: {m: s.summary(3) for m, s in per.items()} for a, per in samples.items()},
        "runs": runs,
    }


def fix_root(workdir: Path, agent: str) -> Path:
    """The reused run keeps its own project and HOME from the warm-up on (its warm server's
    key depends on both); every other run starts from nothing."""
    return workdir / ("reuse" if agent == REUSED else "run")


def _checked_fix(agent: str, model: TimedModel, workdir: Path, claude: Path) -> None:
    root = fix_root(workdir, agent) if agent == REUSED else workdir / "warmup"
    result, failure = run_fix(agent, model, root, claude)
    if result is None:
        raise TimeoutError(failure)
    if result.problem:
        raise RuntimeError(result.problem)


# --------------------------------------------------------------------------- initialize


def server_commands(peer_bin: Path, baseline: str | None = None) -> dict[str, list[str]]:
    commands = {
        "lsp-agent serve": [sys.executable, "-m", "lsp_agent", "serve"],
        "jedi-language-server": [str(peer_bin / "jedi-language-server")],
        "pylsp": [str(peer_bin / "pylsp")],
    }
    if baseline:  # another checkout's server (env(1) sets its PYTHONPATH: one more exec)
        commands[f"lsp-agent serve @{baseline}"] = [
            "/usr/bin/env", f"PYTHONPATH={baseline}", sys.executable, "-m", "lsp_agent",
            "serve"]
    return commands


async def _send(stdin: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await stdin.drain()


async def _read_response(stdout: asyncio.StreamReader, request_id: int) -> dict[str, Any]:
    while True:
        length = 0
        while (line := await stdout.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise RuntimeError("server closed its output before answering")
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        message = json.loads(await stdout.readexactly(length))
        if message.get("id") == request_id and "method" not in message:
            return message


async def time_initialize(command: list[str], root: Path, env: dict[str, str]
                          ) -> tuple[float, float]:
    """(seconds from spawn to the initialize response, MB of the server tree's RSS after it
    has been idle for IDLE_SETTLE_S following `initialized`)."""
    params = {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {},
              "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}]}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env, cwd=str(root))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        await _send(proc.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                 "params": params})
        reply = await asyncio.wait_for(_read_response(proc.stdout, 1), INIT_TIMEOUT)
        elapsed = time.monotonic() - started
        if "error" in reply:
            raise RuntimeError(f"initialize failed: {reply['error']}")
        await _send(proc.stdin, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        drain = asyncio.ensure_future(_drain(proc.stdout))
        await asyncio.sleep(IDLE_SETTLE_S)
        rss_mb = tree_rss_kib(proc.pid) / 1024
        drain.cancel()
        return elapsed, rss_mb
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _drain(stdout: asyncio.StreamReader) -> None:
    while await stdout.read(65536):
        pass


def bench_initialize(rounds: int, workdir: Path, peer_bin: Path,
                     baseline: str | None = None) -> dict[str, Any]:
    root = workdir / "init-root"
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text("print('hello')\n")
    home = workdir / "init-home"
    env = measured_env(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
                       XDG_CONFIG_HOME=str(home / ".config"),
                       LSP_AGENT_STATE_DIR=str(home / "state"), LSP_AGENT_LOG="warning",
                       LSP_AGENT_CONFIG_DIR=str(home / "config"))
    commands = server_commands(peer_bin, baseline)
    names = list(commands)
    init = {n: Samples(timeout=INIT_TIMEOUT * 1000) for n in names}
    rss = {n: Samples(timeout=0.0) for n in names}

    def once(name: str) -> tuple[float, float]:
        return asyncio.run(time_initialize(commands[name], root, env))

    warmups = [vars(warm_up(n, partial(once, n))) for n in names]
    watch = LoadWatch()
    for order in rotations(names, rounds):
        loaded = watch.round_started()
        for name in order:
            try:
                seconds, mb = once(name)
            except TimeoutError:
                init[name].add_timeout(loaded=loaded)
                continue
            except Exception as exc:
                init[name].add_error(f"{type(exc).__name__}: {exc}", loaded=loaded)
                continue
            init[name].add(seconds * 1000, loaded=loaded)
            rss[name].add(mb, loaded=loaded)
        print(f"  initialize: round {len(watch.rounds)} done", flush=True)
    return {"rounds": rounds, "idle_settle_s": IDLE_SETTLE_S, "warmups": warmups,
            "load": watch.finish(),
            "stats": {n: {"initialize_ms": init[n].summary(1), "idle_rss_mb": rss[n].summary(1)}
                      for n in names}}


# --------------------------------------------------------------------------- report


FIX_ROWS = (
    ("wall", "wall_s", 2, "s"),
    ("CPU (user+sys, process tree)", "cpu_s", 2, "s"),
    ("time to first model request", "first_request_s", 2, "s"),
    ("last response to exit", "exit_after_last_s", 3, "s"),
    ("bytes per request", "bytes_per_request", 0, "B"),
    ("peak RSS, largest process", "max_rss_mb", 0, "MB"),
    ("peak RSS, whole tree (sampled)", "peak_tree_rss_mb", 0, "MB"),
)


AGENT_LABELS = {FIRST: "`lsp-agent run`, first run (starts its warm server)",
                REUSED: "`lsp-agent run`, reusing the warm server",
                CLAUDE: "Claude Code `-p`"}


def agent_label(agent: str, versions: dict[str, Any]) -> str:
    if agent.startswith(BASELINE_PREFIX):
        return f"`lsp-agent run` of {agent[len(BASELINE_PREFIX):]} (PYTHONPATH)"
    version = versions.get("claude-code" if agent == CLAUDE else "lsp-agent", "?")
    return f"{AGENT_LABELS.get(agent, agent)} ({version})"


def fix_table(data: dict[str, Any], versions: dict[str, Any]) -> str:
    stats = data["stats"]
    ours = [a for a in stats if a != CLAUDE]
    theirs = stats.get(CLAUDE)
    head = "| p50 (p95) | " + " | ".join(agent_label(a, versions) for a in stats) + " |"
    ratios = [f"{agent_label(a, {}).split(' (')[0]} / Claude Code, p50" for a in ours] \
        if theirs else []
    lines = [head + "".join(f" {r} |" for r in ratios),
             "|---|" + "---|" * (len(stats) + len(ratios))]
    for label, key, digits, unit in FIX_ROWS:
        cells = []
        for row in stats.values():
            s = row[key]
            note = failures_note(s) if key == "wall_s" else ""
            cells.append(f"{fmt(s['p50'], digits)} {unit} ({fmt(s['p95'], digits)})"
                         + (f", {note}" if note else ""))
        if theirs:
            cells += [f"{fmt(ratio(stats[a][key]['p50'], theirs[key]['p50']), 2)}x"
                      for a in ours]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    runs = ", ".join(f"{a}: {len(v)}" for a, v in data["runs"].items())
    lines.append(f"\n{data['rounds']} interleaved rounds (runs per agent: {runs}); "
                 f"{load_note(data['load'])}. Failed runs count as {RUN_TIMEOUT:.0f} s in the "
                 "wall percentiles. A first run starts with no warm server (a fresh project "
                 "and HOME), the reused run with the one its warm-up started; through a warm "
                 "server, CPU and memory include the warm server's.")
    return "\n".join(lines)


def init_table(data: dict[str, Any], versions: dict[str, Any]) -> str:
    stats = data["stats"]
    ours = stats["lsp-agent serve"]["initialize_ms"]["p50"]
    jls = stats.get("jedi-language-server", {}).get("initialize_ms", {}).get("p50")
    lines = ["| server | version | initialize p50 (p95) ms | failures | vs jedi-language-server "
             "p50 | idle RSS after initialize p50, MB |", "|---|---|---|---|---|---|"]
    for name, row in stats.items():
        s, mem = row["initialize_ms"], row["idle_rss_mb"]
        lines.append(f"| {name} | {versions.get(name, '?')} | {fmt(s['p50'], 0)} "
                     f"({fmt(s['p95'], 0)}) | {failures_note(s) or 'none'} | "
                     f"{fmt(ratio(s['p50'], jls), 2)} | {fmt(mem['p50'], 1)} |")
    lines.append(f"\n{data['rounds']} interleaved rounds; lsp-agent / jls = "
                 f"{fmt(ratio(ours, jls), 2)}; {load_note(data['load'])}.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--only", default="fix,initialize", help="fix, initialize")
    parser.add_argument("--agents", default=",".join(AGENTS),
                        help="comma-separated: 'lsp-agent run', 'lsp-agent run (reused)', "
                             "'claude -p'")
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also run another checkout of lsp-agent (e.g. main's), from DIR "
                             "on PYTHONPATH, as a first run and as a server")
    parser.add_argument("--no-netns", action="store_true",
                        help="do not run in a loopback-only network namespace")
    parser.add_argument(NETNS_FLAG, dest="inside_netns", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--netns-unavailable", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.inside_netns and not args.no_netns:
        # Installs need the network: before entering the namespace.
        peers.ensure_claude()
        peers.ensure_python_peers()
        peers.ensure_project_python()
        outcome = in_loopback_namespace([__file__, *argv])  # exits when it ran inside
        if outcome is not None:
            argv = [*argv, "--netns-unavailable", outcome[1]]
            args = parse_args(argv)
    isolation: dict[str, Any] = {"network_isolated": False,
                                 "reason": args.netns_unavailable or "--no-netns"}
    if args.inside_netns:
        problem = loopback_up()
        isolation = {"network_isolated": problem is None,
                     "how": "unshare -rn, loopback only", "problem": problem}
    rounds = args.rounds or (2 if args.quick else 5)
    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    if args.baseline:
        agents = (f"{BASELINE_PREFIX}{Path(args.baseline).resolve()}", *agents)
    claude = peers.claude_binary()
    peer_versions = peers.versions(claude)
    versions = {"lsp-agent": our_versions()["lsp-agent"],
                "lsp-agent serve": our_versions()["lsp-agent"],
                "claude-code": peer_versions["claude-code"]["installed"],
                "jedi-language-server": peer_versions["jedi-language-server"]["installed"],
                "pylsp": peer_versions["pylsp"]["installed"]}
    results: dict[str, Any] = {"meta": {**machine_facts(), "isolation": isolation,
                                        "rounds": rounds, "peers": peer_versions,
                                        "ours": our_versions()}}
    tables = []
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        workdir = Path(tmp)
        only = args.only.split(",")
        if "fix" in only:
            env = measured_env(LSP_AGENT_LOG="warning")
            with TimedModel(sys.executable, workdir, env) as model:
                results["fix"] = bench_fix(rounds, model, workdir, claude, agents)
            tables.append("### Cold fix-a-bug task\n\n" + fix_table(results["fix"], versions))
        if "initialize" in only:
            results["initialize"] = bench_initialize(
                rounds, workdir, peers.peers_bin(),
                str(Path(args.baseline).resolve()) if args.baseline else None)
            tables.append("### Server start\n\n" + init_table(results["initialize"], versions))
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    table = "\n\n".join(tables)
    path = write_results("cold", results, table)
    print("\n" + table + f"\n\nwrote {path}")
    with contextlib.suppress(OSError):
        os.chmod(path, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
