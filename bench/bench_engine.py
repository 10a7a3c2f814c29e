"""Engine benchmarks: server start, harness overhead per model round, editor latency mid-turn.

1. **startup**: time from spawning a language server to its initialize response (raw JSON-RPC
   over stdio), for lsp-agent and, for reference, jedi-language-server and pylsp. One untimed
   warm-up start per server, then N timed starts. Also: a bare interpreter start and which
   imports the lsp-agent start spends its time in (one ``-X importtime`` run).
2. **overhead**: a scripted turn of many rounds (short text + one ``Read`` of a tiny file each)
   with zero streaming delay. Per round: the agent's round time (ModelRequest event to the next
   one) minus the time the bare SDK takes for the exact same request body (replayed from the
   scripted server's log). Measured in-process (``Agent`` built directly) and through the full
   LSP server (``AgentClient``).
3. **editor**: hover/definition requests every ~50 ms on an open file of a small project, with
   no turn running and while a slow-streaming turn with tool calls runs.

All numbers come from one run; compare ratios within it rather than across machines.

    python bench/bench_engine.py            # full run (about 1.5 minutes on 2 cores)
    python bench/bench_engine.py --quick    # smaller N, about 25 s
    python bench/bench_engine.py --only startup,overhead

Results: bench/results/engine.json and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.context.prompt import system_blocks
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy
from lsp_agent.tools.base import FileEdit, ToolContext
from lsp_agent.tools.pool import default_pool
from lsp_agent.tools.results import finalize_output
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import run_facts

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = HERE / "results" / "engine.json"
SECTIONS = ("startup", "overhead", "editor")

# The SDK warns about the default model's deprecation date on every request; irrelevant here.
warnings.filterwarnings("ignore", message=r"The model .* is deprecated")

TARGETS = {"startup_p50_ms": 300.0, "overhead_p50_ms": 5.0, "editor_busy_p95_ms": 50.0}
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
TURN_TIMEOUT = 120.0
LSP_MAX_ROUNDS = 50  # the server's ModelSettings.max_rounds (not configurable per session)
MODEL = "claude-sonnet-4-5"


@dataclass
class Config:
    startup_runs: int
    rounds: int
    busy_turns: int
    idle_requests: int
    repeats: int
    request_interval_s: float = 0.05


def config_for(quick: bool) -> Config:
    if quick:
        return Config(startup_runs=2, rounds=40, busy_turns=6, idle_requests=20, repeats=2)
    return Config(startup_runs=10, rounds=200, busy_turns=20, idle_requests=60, repeats=3)


# --------------------------------------------------------------------------- statistics


def percentile(samples: list[float], pct: int) -> float | None:
    if not samples:
        return None
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def summary(samples: list[float]) -> dict[str, Any]:
    """n, p50, p95, max and mean of samples in milliseconds, rounded for the report."""
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50) or 0.0, 2),
        "p95": round(percentile(samples, 95) or 0.0, 2),
        "max": round(max(samples), 2),
        "mean": round(statistics.fmean(samples), 2),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- environment


def server_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for spawned servers: private caches and state, quiet logs."""
    env = dict(os.environ)
    env.update(
        XDG_CACHE_HOME=str(workdir / "cache"),
        LSP_AGENT_STATE_DIR=str(workdir / "state"),
        LSP_AGENT_LOG="warning",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# The scripted server's listening socket is created with proto 0, and asyncio only sets
# TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP: every response on a kept-alive
# connection then waits ~40 ms for the client's delayed ACK (Nagle). The real API has no such
# stall, so by default the server is started with TCP_NODELAY set on its listening socket
# (Linux copies it to accepted sockets). ``--as-shipped`` measures the server unchanged.
NODELAY_LAUNCHER = """
import socket, sys
import lsp_agent.scripted.server as scripted
_listen = scripted._listening_socket
def _listen_nodelay(host, port):
    sock = _listen(host, port)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
scripted._listening_socket = _listen_nodelay
sys.exit(scripted.main(sys.argv[1:]))
"""


class ScriptedProcess:
    """The scripted model server as a subprocess, so its work never shares a GIL with ours."""

    nodelay = True

    def __init__(self, scenario: dict[str, Any], workdir: Path, env: dict[str, str]):
        self._file = workdir / f"scenario-{scenario['name']}.json"
        self._file.write_text(json.dumps(scenario))
        self._env = env
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ScriptedProcess:
        launcher = ["-c", NODELAY_LAUNCHER] if self.nodelay else ["-m", "lsp_agent.scripted.server"]
        command = [sys.executable, *launcher, "--scenario", str(self._file)]
        self._proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self._env
        )
        line = _read_line_within(self._proc, START_TIMEOUT)
        if not line.startswith("LISTENING "):
            self.__exit__()
            raise RuntimeError(f"scripted model server did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def __exit__(self, *_: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def load(self, scenario: dict[str, Any]) -> None:
        self._post("/_scripted/scenario", scenario)

    def reset(self) -> None:
        """Forget the request log and the prompt cache (so a replay sees the same states)."""
        self._post("/_scripted/reset", {})

    def request_bodies(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base_url}/_scripted/requests", timeout=30) as resp:
            return [record["body"] for record in json.load(resp)["requests"]]

    def _post(self, path: str, data: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(data).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()


def _read_line_within(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return "(no output within the start timeout)"
    return proc.stdout.readline().strip()


# --------------------------------------------------------------------------- 1. startup


async def _send(stdin: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await stdin.drain()


async def _read_response(stdout: asyncio.StreamReader, request_id: int) -> dict[str, Any]:
    """Read messages until the response to ``request_id`` (servers may log or notify first)."""
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


async def time_initialize(command: list[str], root: Path, env: dict[str, str]) -> float:
    """Seconds from spawning ``command`` to its initialize response."""
    params = {"processId": os.getpid(), "rootUri": from_fs_path(str(root)), "capabilities": {}}
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=str(root),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        await _send(
            proc.stdin, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
        )
        reply = await asyncio.wait_for(_read_response(proc.stdout, 1), START_TIMEOUT)
        elapsed = time.perf_counter() - started
        if "error" in reply:
            raise RuntimeError(f"initialize failed: {reply['error']}")
        await _shutdown_raw(proc)
        return elapsed
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _shutdown_raw(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(Exception):
        await _send(proc.stdin, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        await asyncio.wait_for(_read_response(proc.stdout, 2), STOP_TIMEOUT)
        await _send(proc.stdin, {"jsonrpc": "2.0", "method": "exit"})
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)


def startup_commands() -> dict[str, list[str]]:
    return {
        "lsp-agent": [sys.executable, "-m", "lsp_agent", "serve"],
        "jedi-language-server": [str(VENV_BIN / "jedi-language-server")],
        "pylsp": [str(VENV_BIN / "pylsp")],
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    }


async def time_bare_interpreter(env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *startup_commands()["python -c pass (baseline)"], env=env
    )
    await asyncio.wait_for(proc.wait(), START_TIMEOUT)
    return time.perf_counter() - started


async def bench_startup(cfg: Config, workdir: Path) -> dict[str, Any]:
    root = workdir / "startup-root"
    root.mkdir()
    (root / "main.py").write_text("print('hello')\n")
    env = server_env(workdir)
    out: dict[str, Any] = {}
    for name, command in startup_commands().items():
        print(f"  startup: {name}", flush=True)
        if not is_runnable(command[0]):
            out[name] = {"skipped": f"{command[0]} not found"}
            continue
        samples: list[float] = []
        try:
            for i in range(cfg.startup_runs + 1):  # the first start compiles bytecode: untimed
                if command[1:] == ["-c", "pass"]:
                    seconds = await time_bare_interpreter(env)
                else:
                    seconds = await time_initialize(command, root, env)
                if i:
                    samples.append(seconds * 1000)
        except Exception as exc:
            out[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        out[name] = summary(samples)
    out["lsp_agent_import_ms"] = import_breakdown(env)
    return out


def is_runnable(program: str) -> bool:
    return Path(program).exists()


IMPORT_PROBES = (
    "lsp_agent.server.app",
    "anthropic",
    "lsprotocol.types",
    "pygls.lsp.server",
    "pydantic",
    "lsp_agent.types.events",
    "jedi",
)


def import_breakdown(env: dict[str, str]) -> dict[str, float]:
    """Cumulative first-import time (ms) of the heavy modules the server start pulls in."""
    code = "from lsp_agent.server.app import create_server; create_server()"
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {}
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)$", line)
        if match and match.group(2) in IMPORT_PROBES:
            found[match.group(2)] = round(int(match.group(1)) / 1000, 1)
    return found


# --------------------------------------------------------------------------- 2. overhead


def make_tiny_workspace(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    (path / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    return path


def overhead_scenario(rounds: int, name: str = "overhead") -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {
            "content": [
                {"type": "text", "text": f"Step {i}: reading the notes again."},
                {"type": "tool_use", "name": "Read", "input": {"path": "notes.txt"}},
            ]
        }
        for i in range(rounds - 1)
    ]
    turns.append({"content": "Done."})
    return {"name": name, "delay_ms": 0, "turns": turns}


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        return "Edits are disabled in this benchmark."


@dataclass
class RoundTimes:
    """Per-round wall times (ms) seen by one consumer of agent events."""

    rounds: list[float] = field(default_factory=list)
    tools: list[float] = field(default_factory=list)
    stop_reasons: list[str] = field(default_factory=list)
    _round_start: float | None = None

    def on_event(self, event: ev.AgentEvent, now: float) -> None:
        if isinstance(event, ev.ModelRequest):
            self._close_round(now)
            self._round_start = now
        elif isinstance(event, ev.ToolResult):
            # The tool's own timestamps: both events often reach a consumer in one batch.
            self.tools.append((event.finished_at - event.started_at) * 1000)
        elif isinstance(event, ev.TurnEnded):
            self._close_round(now)
            self.stop_reasons.append(event.stop_reason)

    def _close_round(self, now: float) -> None:
        if self._round_start is not None:
            self.rounds.append((now - self._round_start) * 1000)
            self._round_start = None


def in_process_agent(base_url: str, workspace: Path, max_rounds: int) -> Agent:
    settings = ModelSettings(
        model=MODEL,
        fallback_model=None,
        api_key="bench",
        base_url=base_url,
        max_rounds=max_rounds,
        sdk_max_retries=0,
    )
    client = anthropic.AsyncAnthropic(
        api_key="bench", base_url=base_url, max_retries=0, timeout=REQUEST_TIMEOUT
    )
    system = system_blocks(workspace)
    results_dir = workspace.parent / "agent-results"
    documents, proposals, diagnostics = DiskDocuments(), NoProposals(), DiagnosticsStore()

    def tool_context(tool_use_id: str) -> ToolContext:
        return ToolContext(
            workspace=workspace,
            documents=documents,
            proposals=proposals,
            diagnostics=diagnostics,
            results_dir=results_dir,
            tool_use_id=tool_use_id,
            sandbox=Sandbox(SandboxPolicy(enabled=False), workspace),
        )

    return Agent(
        AgentDeps(
            model=ModelService(settings, client),
            tools=default_pool(),
            gate=PermissionGate(workspace, "default", [results_dir]),
            system=lambda: system,
            tool_context=tool_context,
            finalize=finalize_output,
        )
    )


async def run_in_process(agent: Agent, prompt: str) -> RoundTimes:
    times = RoundTimes()
    turn = agent.run_turn([{"type": "text", "text": prompt}])
    async with contextlib.aclosing(turn):
        async with asyncio.timeout(TURN_TIMEOUT):
            async for event in turn:
                times.on_event(event, time.perf_counter())
    return times


async def replay_with_sdk(model: ScriptedProcess) -> list[float]:
    """Milliseconds the bare SDK takes to stream each recorded request body to its end.

    The server is reset first so that its prompt cache evolves exactly as during the run.
    """
    bodies = model.request_bodies()
    model.reset()
    base_url = model.base_url
    client = anthropic.AsyncAnthropic(
        api_key="bench", base_url=base_url, max_retries=0, timeout=REQUEST_TIMEOUT
    )
    out = []
    try:
        for body in bodies:
            kwargs = {k: v for k, v in body.items() if k != "stream"}
            started = time.perf_counter()
            async with asyncio.timeout(REQUEST_TIMEOUT):
                async with client.messages.stream(**kwargs) as stream:
                    async for _ in stream:
                        pass
                    await stream.get_final_message()
            out.append((time.perf_counter() - started) * 1000)
    finally:
        await client.close()
    return out


async def run_through_lsp(base_url: str, workspace: Path, workdir: Path, rounds: int,
                          persist: bool = True) -> RoundTimes:
    """The same scenario through ``lsp-agent serve``: several prompts of at most 50 rounds.
    ``persist``: the session writes its transcript (the default), or not."""
    times = RoundTimes()
    env = server_env(workdir, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="bench")

    async def allow(_: dict[str, Any]) -> dict[str, Any]:
        return {"decision": "allow"}

    async def reject(_: ev.ProposalCreated) -> dict[str, Any]:
        return {"reject": "all"}

    client = AgentClient(
        workspace,
        lambda e: times.on_event(e, time.perf_counter()),
        allow,
        reject,
        env=env,
        server_log=workdir / "lsp-overhead.log",
        initialization_options={"persistSessions": persist},
    )
    try:
        await asyncio.wait_for(client.start(), START_TIMEOUT)
        session = await asyncio.wait_for(client.new_session(), REQUEST_TIMEOUT)
        for _ in range(rounds // LSP_MAX_ROUNDS + 2):
            result = await asyncio.wait_for(client.prompt(session, "Read the notes."), TURN_TIMEOUT)
            if result["stopReason"] != "max_turns":
                break
        await asyncio.sleep(0.2)  # let the last events arrive
    finally:
        await client.stop()
    return times


def overhead_stats(times: RoundTimes, sdk_ms: list[float]) -> dict[str, Any]:
    n = min(len(times.rounds), len(sdk_ms))
    per_round = [times.rounds[i] - sdk_ms[i] for i in range(n)]
    tool = times.tools[:n] + [0.0] * max(0, n - len(times.tools))
    excl_tool = [per_round[i] - tool[i] for i in range(n)]
    tenth = max(1, n // 10)
    return {
        "rounds": n,
        "stop_reasons": times.stop_reasons,
        "round_ms": summary(times.rounds[:n]),
        "sdk_ms": summary(sdk_ms[:n]),
        "tool_ms": summary(times.tools),
        "overhead_ms": summary(per_round),
        "overhead_excl_tool_ms": summary(excl_tool),
        "overhead_total_per_round_ms": round((sum(times.rounds[:n]) - sum(sdk_ms[:n])) / n, 2)
        if n
        else None,
        "overhead_first_tenth_p50_ms": round(statistics.median(per_round[:tenth]), 2)
        if n
        else None,
        "overhead_last_tenth_p50_ms": round(statistics.median(per_round[-tenth:]), 2)
        if n
        else None,
    }


def time_for_request(agent: Agent, repeat: int = 20) -> float:
    """Milliseconds ``Conversation.for_request()`` takes on the final conversation."""
    started = time.perf_counter()
    for _ in range(repeat):
        agent.conversation.for_request()
    return round((time.perf_counter() - started) * 1000 / repeat, 3)


def fastest_per_round(runs: list[list[float]]) -> list[float]:
    """Per round, the minimum over repeated runs: load from other processes only adds time."""
    n = min(len(run) for run in runs)
    return [min(run[i] for run in runs) for i in range(n)]


def combine(times: list[RoundTimes]) -> RoundTimes:
    return RoundTimes(
        rounds=fastest_per_round([t.rounds for t in times]),
        tools=fastest_per_round([t.tools for t in times]),
        stop_reasons=[r for t in times for r in t.stop_reasons],
    )


async def measure_path(
    model: ScriptedProcess, rounds: int, repeats: int, run: Callable[[], Any]
) -> dict[str, Any]:
    """Run the scenario ``repeats`` times through ``run``, each followed by its SDK replay."""
    all_times, all_sdk = [], []
    for _ in range(repeats):
        model.load(overhead_scenario(rounds))
        all_times.append(await run())
        all_sdk.append(await replay_with_sdk(model))
    stats = overhead_stats(combine(all_times), fastest_per_round(all_sdk))
    stats["repeats"] = repeats
    return stats


async def bench_overhead(cfg: Config, workdir: Path) -> dict[str, Any]:
    workspace = make_tiny_workspace(workdir / "overhead-ws")
    out: dict[str, Any] = {}
    with ScriptedProcess(overhead_scenario(5, "warmup"), workdir, server_env(workdir)) as model:
        # Warm-up: imports, connection pool, caches; nothing here is measured.
        await run_in_process(in_process_agent(model.base_url, workspace, 10), "warm up")
        await replay_with_sdk(model)

        print(f"  overhead: in-process agent, {cfg.rounds} rounds x {cfg.repeats}", flush=True)
        agents: list[Agent] = []

        async def in_process() -> RoundTimes:
            agents.append(in_process_agent(model.base_url, workspace, cfg.rounds + 1))
            return await run_in_process(agents[-1], "Read the notes.")

        out["in_process"] = await measure_path(model, cfg.rounds, cfg.repeats, in_process)
        out["in_process"]["for_request_final_ms"] = time_for_request(agents[-1])
        out["in_process"]["final_messages"] = len(agents[-1].conversation)

        print(
            f"  overhead: through the LSP server, {cfg.rounds} rounds x {cfg.repeats}", flush=True
        )

        # Sessions saved (the default) and not, interleaved repeat by repeat: the difference
        # is what writing the transcript costs the loop.
        paths = {"lsp_server": True, "lsp_server_unsaved": False}
        times: dict[str, list[RoundTimes]] = {name: [] for name in paths}
        sdk: dict[str, list[list[float]]] = {name: [] for name in paths}
        try:
            for _ in range(cfg.repeats):
                for name, persist in paths.items():
                    model.load(overhead_scenario(cfg.rounds))
                    times[name].append(await run_through_lsp(
                        model.base_url, workspace, workdir, cfg.rounds, persist))
                    sdk[name].append(await replay_with_sdk(model))
            for name in paths:
                out[name] = overhead_stats(combine(times[name]), fastest_per_round(sdk[name]))
                out[name]["repeats"] = cfg.repeats
        except Exception as exc:
            out["lsp_server"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return out


# --------------------------------------------------------------------------- 3. editor


def prepare_project(workdir: Path) -> tuple[Path, Path]:
    """A copy of fixtures/multimodule (or of jedi's source) and the file to open in it."""
    root = workdir / "project"
    source = REPO / "fixtures" / "multimodule"
    if (source / "shop" / "orders.py").exists():
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__"))
        return root, root / "shop" / "orders.py"
    import jedi

    shutil.copytree(
        Path(jedi.__file__).parent,
        root / "jedi",
        ignore=shutil.ignore_patterns("__pycache__", "third_party"),
    )
    return root, root / "jedi" / "api" / "__init__.py"


def query_positions(text: str, limit: int = 6) -> list[types.Position]:
    """Positions of usages (not definitions) of names imported or used in the file."""
    positions = []
    for line_no, line in enumerate(text.splitlines()):
        if line.lstrip().startswith(("def ", "class ", "import ", "from ", "#", '"')):
            continue
        for match in re.finditer(r"\b[A-Za-z_][A-Za-z_0-9]{3,}\b", line):
            positions.append(types.Position(line=line_no, character=match.start() + 1))
            break
        if len(positions) >= limit:
            break
    return positions


def busy_scenario(turns: int) -> dict[str, Any]:
    text = (
        "Looking at how orders are priced and how stock is reserved before the "
        "checkout; next I will check the helpers that round money. "
    )
    tools = [
        {"type": "tool_use", "name": "Read", "input": {"path": "shop/models.py"}},
        {"type": "tool_use", "name": "Grep", "input": {"pattern": "def ", "path": "shop"}},
    ]
    script = [
        {"content": [{"type": "text", "text": f"{text}({i})"}, tools[i % 2]]}
        for i in range(turns - 1)
    ]
    script.append({"content": text + "All done."})
    return {"name": "busy", "delay_ms": 5, "chunk_chars": 4, "turns": script}


class EditorClient:
    """A bare LanguageClient acting as the editor: answers the server's requests."""

    def __init__(self) -> None:
        self.client = LanguageClient("bench-engine", "1")
        self.events = 0
        self._register()

    def _register(self) -> None:
        client = self.client

        @client.feature("agent/event")
        def on_event(_: Any) -> None:
            self.events += 1

        @client.feature("agent/requestPermission")
        def on_permission(_: Any) -> dict[str, Any]:
            return {"decision": "allow"}

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply(_: Any) -> types.ApplyWorkspaceEditResult:
            return types.ApplyWorkspaceEditResult(applied=False, failure_reason="benchmark")

        @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_progress_create(_: Any) -> None:
            return None

        @client.feature(types.PROGRESS)
        def on_progress(_: Any) -> None:
            return None

    async def start(self, root: Path, env: dict[str, str]) -> None:
        await self.client.start_io(
            sys.executable, "-m", "lsp_agent", "serve", env=env, cwd=str(root)
        )
        self._drain = asyncio.create_task(self._drain_stderr())
        uri = from_fs_path(str(root))
        await asyncio.wait_for(
            self.client.initialize_async(
                types.InitializeParams(
                    process_id=os.getpid(),
                    root_uri=uri,
                    capabilities=types.ClientCapabilities(),
                    workspace_folders=[types.WorkspaceFolder(uri=uri or "", name=root.name)],
                )
            ),
            START_TIMEOUT,
        )
        self.client.initialized(types.InitializedParams())

    async def _drain_stderr(self) -> None:
        process = self.client._server
        if process is not None and process.stderr is not None:
            while await process.stderr.read(65536):
                pass

    def open(self, path: Path) -> str:
        uri = from_fs_path(str(path)) or ""
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=path.read_text()
                )
            )
        )
        return uri

    async def request(self, kind: str, uri: str, pos: types.Position) -> Any:
        doc = types.TextDocumentIdentifier(uri=uri)
        if kind == "hover":
            call = self.client.text_document_hover_async(
                types.HoverParams(text_document=doc, position=pos)
            )
        else:
            call = self.client.text_document_definition_async(
                types.DefinitionParams(text_document=doc, position=pos)
            )
        return await asyncio.wait_for(call, REQUEST_TIMEOUT)

    async def agent_request(self, method: str, params: dict[str, Any]) -> Any:
        return await self.client.protocol.send_request_async(method, params)

    async def stop(self) -> None:
        process = self.client._server
        if process is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.shutdown_async(None), STOP_TIMEOUT)
                self.client.exit(None)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), STOP_TIMEOUT)
        self._drain.cancel()


@dataclass
class Latencies:
    ms: dict[str, list[float]] = field(default_factory=lambda: {"hover": [], "definition": []})
    empty: dict[str, int] = field(default_factory=lambda: {"hover": 0, "definition": 0})
    errors: list[str] = field(default_factory=list)

    def all(self) -> list[float]:
        return self.ms["hover"] + self.ms["definition"]


async def probe(
    editor: EditorClient,
    uri: str,
    positions: list[types.Position],
    interval: float,
    keep_going: Callable[[int], bool],
) -> Latencies:
    """Alternate hover and definition requests every ``interval`` s while keep_going(i)."""
    out = Latencies()
    i = 0
    while keep_going(i):
        kind = ("hover", "definition")[i % 2]
        pos = positions[(i // 2) % len(positions)]
        started = time.perf_counter()
        try:
            result = await editor.request(kind, uri, pos)
            out.ms[kind].append((time.perf_counter() - started) * 1000)
            out.empty[kind] += not result
        except Exception as exc:
            out.errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
        i += 1
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
    return out


def latency_stats(lat: Latencies) -> dict[str, Any]:
    return {
        "all_ms": summary(lat.all()),
        "hover_ms": summary(lat.ms["hover"]),
        "definition_ms": summary(lat.ms["definition"]),
        "empty": lat.empty,
        "errors": len(lat.errors),
        "first_errors": lat.errors[:3],
    }


async def bench_editor(cfg: Config, workdir: Path) -> dict[str, Any]:
    root, opened = prepare_project(workdir)
    positions = query_positions(opened.read_text())
    with ScriptedProcess(busy_scenario(cfg.busy_turns), workdir, server_env(workdir)) as model:
        env = server_env(workdir, ANTHROPIC_BASE_URL=model.base_url, ANTHROPIC_API_KEY="bench")
        editor = EditorClient()
        try:
            await editor.start(root, env)
            uri = editor.open(opened)
            # Warm-up: jedi's first queries in a process are slow (cold caches); not measured.
            await probe(editor, uri, positions, 0.0, lambda i: i < 2 * len(positions))
            print(f"  editor: idle, {cfg.idle_requests} requests", flush=True)
            idle = await probe(
                editor, uri, positions, cfg.request_interval_s, lambda i: i < cfg.idle_requests
            )
            print(f"  editor: during a {cfg.busy_turns}-round streaming turn", flush=True)
            busy, turn = await probe_during_turn(
                editor, root, uri, positions, cfg.request_interval_s
            )
        finally:
            await editor.stop()
    idle_stats, busy_stats = latency_stats(idle), latency_stats(busy)
    return {
        "project": str(opened.relative_to(root)),
        "interval_ms": cfg.request_interval_s * 1000,
        "idle": idle_stats,
        "busy": busy_stats,
        "turn": turn,
        "ratio_p50": ratio(busy_stats["all_ms"]["p50"], idle_stats["all_ms"]["p50"]),
        "ratio_p95": ratio(busy_stats["all_ms"]["p95"], idle_stats["all_ms"]["p95"]),
    }


async def probe_during_turn(
    editor: EditorClient, root: Path, uri: str, positions: list[types.Position], interval: float
) -> tuple[Latencies, dict[str, Any]]:
    session = await asyncio.wait_for(
        editor.agent_request("agent/newSession", {"workspaceUri": from_fs_path(str(root))}),
        REQUEST_TIMEOUT,
    )
    session_id = getattr(session, "sessionId", None) or session["sessionId"]
    events_before = editor.events
    started = time.perf_counter()
    prompt = asyncio.ensure_future(
        asyncio.wait_for(
            editor.agent_request(
                "agent/prompt", {"sessionId": session_id, "text": "Explain the checkout."}
            ),
            TURN_TIMEOUT,
        )
    )
    busy = await probe(editor, uri, positions, interval, lambda _: not prompt.done())
    result = await prompt
    stop = getattr(result, "stopReason", None) or result["stopReason"]
    return busy, {
        "seconds": round(time.perf_counter() - started, 2),
        "stop_reason": stop,
        "agent_events": editor.events - events_before,
    }


# --------------------------------------------------------------------------- report


def startup_table(data: dict[str, Any]) -> str:
    lines = [
        "| server | p50 (ms) | p95 (ms) | max (ms) | vs lsp-agent p50 |",
        "|---|---|---|---|---|",
    ]
    ours = data.get("lsp-agent", {}).get("p50")
    for name in startup_commands():
        row = data.get(name, {})
        if "skipped" in row:
            lines.append(f"| {name} | skipped: {row['skipped']} | | | |")
            continue
        lines.append(
            f"| {name} | {fmt(row['p50'], 0)} | {fmt(row['p95'], 0)} | "
            f"{fmt(row['max'], 0)} | {fmt(ratio(row['p50'], ours), 2)} |"
        )
    imports = data.get("lsp_agent_import_ms") or {}
    if imports:
        parts = ", ".join(f"`{k}` {v:.0f}" for k, v in imports.items())
        lines.append(f"\nlsp-agent start, cumulative first-import time (ms): {parts}")
    return "\n".join(lines)


def overhead_table(data: dict[str, Any]) -> str:
    head = (
        "| path | rounds | round p50 (ms) | SDK alone p50 (ms) | tool p50 (ms) | "
        "overhead p50 / p95 (ms) | overhead excl. tool p50 (ms) | mean overhead (ms) | "
        "first 10% / last 10% p50 (ms) |"
    )
    lines = [head, "|" + "---|" * 9]
    for key, label in (("in_process", "in-process Agent"), ("lsp_server", "LSP server"),
                       ("lsp_server_unsaved", "LSP server, sessions not saved")):
        row = data.get(key)
        if row is None:
            continue
        if "skipped" in row:
            lines.append(f"| {label} | skipped: {row['skipped']} |" + " |" * 7)
            continue
        lines.append(
            f"| {label} | {row['rounds']} | {fmt(row['round_ms']['p50'], 2)} | "
            f"{fmt(row['sdk_ms']['p50'], 2)} | {fmt(row['tool_ms']['p50'], 2)} | "
            f"{fmt(row['overhead_ms']['p50'], 2)} / {fmt(row['overhead_ms']['p95'], 2)} | "
            f"{fmt(row['overhead_excl_tool_ms']['p50'], 2)} | "
            f"{fmt(row['overhead_total_per_round_ms'], 2)} | "
            f"{fmt(row['overhead_first_tenth_p50_ms'], 2)} / "
            f"{fmt(row['overhead_last_tenth_p50_ms'], 2)} |"
        )
    proc = data.get("in_process", {})
    if "for_request_final_ms" in proc:
        lines.append(
            f"\n`Conversation.for_request()` on the final {proc['final_messages']}-message "
            f"conversation: {proc['for_request_final_ms']:.2f} ms"
        )
    return "\n".join(lines)


def editor_table(data: dict[str, Any]) -> str:
    lines = [
        "| state | requests | p50 (ms) | p95 (ms) | max (ms) | errors | empty answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("idle", "busy"):
        row = data[key]
        stats = row["all_ms"]
        empty = row["empty"]["hover"] + row["empty"]["definition"]
        label = "idle" if key == "idle" else "turn streaming"
        lines.append(
            f"| {label} | {stats['n']} | {fmt(stats['p50'])} | {fmt(stats['p95'])} | "
            f"{fmt(stats['max'])} | {row['errors']} | {empty} |"
        )
    lines.append(
        f"| ratio streaming / idle | | {fmt(data['ratio_p50'], 2)} | "
        f"{fmt(data['ratio_p95'], 2)} | | | |"
    )
    turn = data["turn"]
    lines.append(
        f"\nTurn: {turn['seconds']} s, stop reason `{turn['stop_reason']}`, "
        f"{turn['agent_events']} `agent/event` notifications; file `{data['project']}`."
    )
    return "\n".join(lines)


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    startup = results.get("startup", {}).get("lsp-agent", {})
    if startup.get("p50") is not None:
        out.append(_verdict("start to initialize p50", startup["p50"], TARGETS["startup_p50_ms"]))
    for key in ("in_process", "lsp_server"):
        row = results.get("overhead", {}).get(key, {})
        if row.get("overhead_ms", {}).get("p50") is not None:
            out.append(
                _verdict(
                    f"overhead per round p50 ({key})",
                    row["overhead_ms"]["p50"],
                    TARGETS["overhead_p50_ms"],
                )
            )
    busy = results.get("editor", {}).get("busy", {}).get("all_ms", {})
    if busy.get("p95") is not None:
        out.append(
            _verdict("editor p95 while streaming", busy["p95"], TARGETS["editor_busy_p95_ms"])
        )
    return out


def _verdict(label: str, value: float, target: float) -> str:
    status = "meets" if value < target else "MISSES"
    return f"- {label}: {value:.1f} ms, target < {target:.0f} ms: {status}"


def report(results: dict[str, Any]) -> str:
    parts = []
    if "startup" in results:
        parts += ["### Server start to initialize response", startup_table(results["startup"])]
    if "overhead" in results:
        parts += ["### Harness overhead per model round", overhead_table(results["overhead"])]
    if "editor" in results:
        parts += ["### Editor requests while a turn streams", editor_table(results["editor"])]
    parts += ["### Targets", "\n".join(verdicts(results))]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, about 25 s")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated subset of: " + ", ".join(SECTIONS),
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--as-shipped",
        action="store_true",
        help="run the scripted model server without the TCP_NODELAY fix",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cfg = config_for(args.quick)
    ScriptedProcess.nodelay = not args.as_shipped
    runners = {"startup": bench_startup, "overhead": bench_overhead, "editor": bench_editor}
    results: dict[str, Any] = {
        "meta": {
            **machine_info(),
            **run_facts(),
            "quick": args.quick,
            "model_server_nodelay": not args.as_shipped,
            "config": vars(cfg),
            "targets_ms": TARGETS,
        }
    }
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        for name in args.only.split(","):
            print(f"{name} ...", flush=True)
            started = time.perf_counter()
            section_dir = Path(tmp) / name
            section_dir.mkdir()
            try:
                results[name] = await runners[name](cfg, section_dir)
            except Exception as exc:  # one broken section must not lose the others
                results[name + "_error"] = f"{type(exc).__name__}: {exc}"
                print(f"  {name} failed: {results[name + '_error']}", flush=True)
            results["meta"][f"{name}_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results = asyncio.run(main_async(args))
    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(report(results))
    print(f"\nwrote {args.output} in {results['meta']['total_seconds']} s")
    return 1 if any(key.endswith("_error") for key in results) else 0


if __name__ == "__main__":
    sys.exit(main())
