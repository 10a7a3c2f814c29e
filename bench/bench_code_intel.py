"""Python code intelligence on a large real project: lsp-agent vs jedi-language-server vs pylsp.

All servers run at once over stdio and are asked the same questions, interleaved: every
question goes to each server in turn, the order rotating from one question to the next and
from one round to the next, so load on the machine falls on all of them alike. Asked:
definition, references and hover at cross-file positions, documentSymbol of the files those
positions are in, and workspace/symbol for the names there.

    python bench/bench_code_intel.py                    # Django 5.2, 20 positions, 3 rounds
    python bench/bench_code_intel.py --quick            # fixtures/multimodule, 5 positions, 1 round
    python bench/bench_code_intel.py --project ~/src/app --rounds 5 --servers lsp-agent,pylsp
    python bench/bench_code_intel.py --kinds references --baseline /work/main   # before/after

Django is fetched once with ``pip download django==5.2.* --no-deps`` into ``--cache-dir``
(default ``$LSP_AGENT_BENCH_CACHE`` or ``~/.cache/lsp-agent-bench``), outside the repository.

Counted honestly:
- warm-up (one query of each kind per server, untimed) is guarded: a timeout or error there is
  recorded and the run goes on;
- a request without an answer within ``--timeout`` counts as the limit itself in the
  percentiles (and as a timeout); an error answer counts with its own latency (and as an
  error); nothing is dropped;
- result counts per query are kept next to the peers' (completeness), from the first round;
- the load average is recorded per round; rounds started above ``--max-load`` are flagged;
- peers' versions come from the installed distributions, never assumed; RSS of each server's
  process tree (the server and its children, e.g. lsp-agent's jedi workers and symbol index)
  is measured at the end.

Results: ``bench/results/code_intel.json`` and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jedi
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
RESULTS = HERE / "results" / "code_intel.json"
DJANGO = "django==5.2.*"

START_TIMEOUT = 120.0  # process start + initialize, on a loaded machine
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
KINDS = ("definition", "references", "hover", "documentSymbol", "workspaceSymbol")
COUNTED = ("references", "documentSymbol", "workspaceSymbol")  # completeness is compared
BASELINE = "lsp-agent@baseline"
DISTRIBUTIONS = {"lsp-agent": "lsp-agent", "jedi-language-server": "jedi-language-server",
                 "pylsp": "python-lsp-server"}


@dataclass
class ServerSpec:
    name: str
    command: list[str]
    init_options: dict[str, Any] = field(default_factory=dict)
    checkout: Path = REPO  # the lsp-agent sources the server imports (PYTHONPATH)


def server_specs() -> dict[str, ServerSpec]:
    return {
        "lsp-agent": ServerSpec(
            "lsp-agent",
            [sys.executable, "-m", "lsp_agent", "serve"],
            {"pythonLanguageFeatures": True},
        ),
        # Every result, as the others give: its default is 20 workspace symbols.
        "jedi-language-server": ServerSpec(
            "jedi-language-server", [str(VENV_BIN / "jedi-language-server")],
            {"workspace": {"symbols": {"maxSymbols": 0}}},
        ),
        "pylsp": ServerSpec("pylsp", [str(VENV_BIN / "pylsp")]),
    }


@dataclass(frozen=True)
class Query:
    path: Path
    line: int  # 0-based
    character: int
    name: str

    @property
    def label(self) -> str:
        where = f"{self.path.parent.name}/{self.path.name}"
        return f"{where}:{self.line + 1}:{self.character} {self.name}"


# --------------------------------------------------------------------------- the project


def default_cache_dir() -> Path:
    configured = os.environ.get("LSP_AGENT_BENCH_CACHE")
    return Path(configured).expanduser() if configured else (
        Path.home() / ".cache" / "lsp-agent-bench")


def django_source(cache_dir: Path) -> Path:
    """The django package folder of Django 5.2, downloaded and unpacked once."""
    unpacked = cache_dir / "django-5.2"
    if (unpacked / "django" / "__init__.py").exists():
        return unpacked / "django"
    cache_dir.mkdir(parents=True, exist_ok=True)
    archives = sorted(a for a in cache_dir.glob("[Dd]jango-5.2*") if a.is_file())
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", DJANGO, "--no-deps",
                        "-d", str(cache_dir)], check=True, timeout=600)
        archives = sorted(a for a in cache_dir.glob("[Dd]jango-5.2*") if a.is_file())
    archive = archives[-1]
    staging = Path(tempfile.mkdtemp(dir=cache_dir))
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(staging)
        package = staging / "django"
    else:
        with tarfile.open(archive) as sdist:
            sdist.extractall(staging, filter="data")
        package = next(staging.glob("*/django"))
    unpacked.mkdir(parents=True, exist_ok=True)
    shutil.move(str(package), unpacked / "django")
    shutil.rmtree(staging, ignore_errors=True)
    return unpacked / "django"


def prepare_project(source: Path, workdir: Path) -> Path:
    """Copy the project to benchmark into ``workdir`` so no server writes into the source."""
    root = workdir / "project"
    target = root / source.name if (source / "__init__.py").exists() else root
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv")
    shutil.copytree(source, target, ignore=ignore)
    return root


def pick_queries(root: Path, count: int, seed: int) -> list[Query]:
    """Usages whose definition is in another project file: the interesting cross-file case."""
    rng = random.Random(seed)
    project = jedi.Project(root)
    files = sorted(root.rglob("*.py"))
    rng.shuffle(files)
    picked: list[Query] = []
    for path in files:
        picked += _usages_in_file(path, root, project, rng, limit=2)
        if len(picked) >= count:
            break
    return picked[:count]


def _usages_in_file(
    path: Path, root: Path, project: jedi.Project, rng: random.Random, limit: int
) -> list[Query]:
    code = path.read_text(encoding="utf-8", errors="replace")
    script = jedi.Script(code, path=path, project=project)
    names = [n for n in script.get_names(all_scopes=True, references=True) if not n.is_definition()]
    rng.shuffle(names)
    found: list[Query] = []
    for name in names[: limit * 10]:
        targets = script.goto(name.line, name.column, follow_imports=True)
        if any(_elsewhere_in_project(t.module_path, path, root) for t in targets):
            found.append(Query(path, name.line - 1, name.column, name.name))
            if len(found) == limit:
                break
    return found


def _elsewhere_in_project(module_path: Path | None, origin: Path, root: Path) -> bool:
    return module_path is not None and module_path != origin and module_path.is_relative_to(root)


# --------------------------------------------------------------------------- one server


class LenientProtocol(LanguageServerProtocol):
    """Leaves the initialize result untyped: pylsp advertises a notebook selector that the
    strict lsprotocol types reject, and only timings are needed from that answer."""

    def get_result_type(self, method: str) -> type[Any] | None:
        if method == types.INITIALIZE:
            return None
        return super().get_result_type(method)


class ServerFailed(Exception):
    pass


@dataclass
class Sample:
    ms: float
    outcome: str  # "ok", "empty", "timeout", "error"
    count: int | None = None


@dataclass
class Server:
    spec: ServerSpec
    client: LanguageClient | None = None
    initialize_s: float | None = None
    skipped: str | None = None
    warmup: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {k: [] for k in KINDS})
    counts: dict[str, dict[str, int | None]] = field(
        default_factory=lambda: {k: {} for k in COUNTED})
    stderr_tail: list[bytes] = field(default_factory=list)
    drain: asyncio.Task | None = None
    rss_kb: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def summary(self, limit_ms: float) -> dict[str, Any]:
        out: dict[str, Any] = {"initialize_s": self.initialize_s, "skipped": self.skipped,
                               "warmup": self.warmup, "rss_kb": self.rss_kb}
        for kind in KINDS:
            samples = self.samples[kind]
            ms = [s.ms for s in samples]
            out[kind] = {
                "n": len(samples),
                "p50_ms": _percentile(ms, 50),
                "p95_ms": _percentile(ms, 95),
                "max_ms": round(max(ms), 1) if ms else None,
                **{outcome: sum(1 for s in samples if s.outcome == outcome)
                   for outcome in ("empty", "timeout", "error")},
                "samples_ms": [round(s.ms, 1) for s in samples],  # in the order asked
            }
        out["counts"] = self.counts
        out["timeout_counted_as_ms"] = limit_ms
        return out


def _percentile(samples: list[float], pct: int) -> float | None:
    if not samples:
        return None
    if len(samples) == 1:
        return round(samples[0], 1)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(cuts[pct - 1], 1)


async def start(server: Server, root: Path, workdir: Path) -> None:
    client = LanguageClient("bench-code-intel", "1", protocol_cls=LenientProtocol)
    for method in (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE,
                   types.WINDOW_SHOW_MESSAGE):
        client.feature(method)(lambda params: None)
    server.client = client
    started = time.perf_counter()
    try:
        # In the project folder, as an editor starts it. Not the bench's own folder: `python -m`
        # puts the working folder first on sys.path, ahead of PYTHONPATH, so from a checkout
        # every lsp-agent server (the baseline too) would import that checkout.
        await client.start_io(*server.spec.command, cwd=str(root),
                              env=_server_env(server.name, workdir, server.spec.checkout))
    except OSError as exc:
        raise ServerFailed(f"cannot start {server.spec.command[0]}: {exc}") from exc
    server.drain = asyncio.create_task(_drain(client, server.stderr_tail))
    uri = from_fs_path(str(root)) or ""
    params = types.InitializeParams(
        process_id=os.getpid(), root_uri=uri,
        workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)],
        capabilities=_client_capabilities(),
        initialization_options=server.spec.init_options or None)
    try:
        await asyncio.wait_for(client.initialize_async(params), START_TIMEOUT)
    except TimeoutError as exc:
        raise ServerFailed(f"no initialize response within {START_TIMEOUT:.0f}s") from exc
    except Exception as exc:  # the process died or answered with an error
        raise ServerFailed(f"initialize failed: {exc}") from exc
    server.initialize_s = round(time.perf_counter() - started, 3)
    client.initialized(types.InitializedParams())


def _server_env(name: str, workdir: Path, checkout: Path = REPO) -> dict[str, str]:
    # A private cache per server: every server starts cold and nothing lands in the home
    # folder. A kept bytecode cache: an installed server does not recompile at every start.
    cache = workdir / "cache" / name
    env = dict(os.environ)
    env.update(
        XDG_CACHE_HOME=str(cache),
        LSP_AGENT_CACHE_DIR=str(cache / "lsp-agent"),
        LSP_AGENT_LOG="warning",
        PYTHONPYCACHEPREFIX=str(default_cache_dir() / "pycache"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")])),
    )
    return env


async def _drain(client: LanguageClient, tail: list[bytes]) -> None:
    # start_io pipes stderr and nobody reads it: a chatty server would block on a full pipe.
    process = client._server
    if process is None or process.stderr is None:
        return
    while chunk := await process.stderr.read(4096):
        tail.append(chunk)
        del tail[:-8]


def _client_capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
            definition=types.DefinitionClientCapabilities(link_support=False),
            document_symbol=types.DocumentSymbolClientCapabilities(
                hierarchical_document_symbol_support=True
            ),
        )
    )


def open_documents(server: Server, queries: list[Query]) -> None:
    assert server.client is not None
    for path in sorted({q.path for q in queries}):
        item = types.TextDocumentItem(uri=from_fs_path(str(path)) or "", language_id="python",
                                      version=1,
                                      text=path.read_text(encoding="utf-8", errors="replace"))
        server.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))


async def ask(server: Server, kind: str, query: Query, limit: float) -> Sample:
    assert server.client is not None
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(_request(server.client, kind, query), limit)
    except TimeoutError:
        return Sample(limit * 1000, "timeout")
    except Exception:  # an error answer: counted with its latency
        return Sample((time.perf_counter() - started) * 1000, "error")
    ms = (time.perf_counter() - started) * 1000
    count = _count(kind, result)
    return Sample(ms, "ok" if result else "empty", count)


def _count(kind: str, result: Any) -> int | None:
    if kind not in COUNTED:
        return None
    if not result:
        return 0
    if kind == "documentSymbol":
        return sum(_tree_size(item) for item in result)
    return len(result)


def _tree_size(symbol: Any) -> int:
    children = getattr(symbol, "children", None) or []
    return 1 + sum(_tree_size(child) for child in children)


def _request(client: LanguageClient, kind: str, query: Query) -> Any:
    document = types.TextDocumentIdentifier(uri=from_fs_path(str(query.path)) or "")
    position = types.Position(line=query.line, character=query.character)
    if kind == "definition":
        return client.text_document_definition_async(
            types.DefinitionParams(text_document=document, position=position))
    if kind == "references":
        return client.text_document_references_async(types.ReferenceParams(
            text_document=document, position=position,
            context=types.ReferenceContext(include_declaration=True)))
    if kind == "hover":
        return client.text_document_hover_async(
            types.HoverParams(text_document=document, position=position))
    if kind == "documentSymbol":
        return client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=document))
    return client.workspace_symbol_async(types.WorkspaceSymbolParams(query=query.name))


async def stop(server: Server) -> None:
    client = server.client
    if client is None:
        return
    process = client._server
    if process is not None and process.returncode is None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_async(None), STOP_TIMEOUT)
            client.exit(None)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), STOP_TIMEOUT)
    if server.drain is not None:
        server.drain.cancel()


def tree_rss_kb(pid: int) -> dict[str, int]:
    """Resident memory of a process and its descendants (Linux /proc), by process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out: dict[str, int] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError, ValueError):
            cmd = (Path("/proc") / str(current) / "cmdline").read_bytes().split(b"\0")
            label = " ".join(part.decode(errors="replace").rsplit("/", 1)[-1]
                             for part in cmd[:3] if part)
            for row in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if row.startswith("VmRSS:"):
                    out[f"{current} {label}"] = int(row.split()[1])
    return out


# --------------------------------------------------------------------------- the run


def rotated(servers: list[Server], shift: int) -> list[Server]:
    shift %= len(servers)
    return servers[shift:] + servers[:shift]


async def warm_up(servers: list[Server], queries: list[Query], limit: float,
                  kinds: tuple[str, ...]) -> None:
    """One untimed query of each kind per server; a timeout or error is noted, not fatal."""
    for kind in kinds:
        for server in servers:
            sample = await ask(server, kind, queries[0], limit)
            server.warmup[kind] = f"{sample.outcome} {sample.ms:.0f} ms"


async def measure(servers: list[Server], queries: list[Query], rounds: int, limit: float,
                  max_load: float, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    step = 0
    for number in range(rounds):
        load = os.getloadavg()
        log.append({"round": number + 1, "load_at_start": [round(x, 2) for x in load],
                    "flagged": load[0] > max_load})
        started = time.perf_counter()
        for kind in kinds:
            for query in queries:
                for server in rotated(servers, step):
                    sample = await ask(server, kind, query, limit)
                    server.samples[kind].append(sample)
                    if kind in COUNTED and number == 0:
                        server.counts[kind][query.label] = sample.count
                step += 1
        log[-1]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"round {number + 1}/{rounds}: load {load[0]:.2f}, "
              f"{log[-1]['seconds']} s", flush=True)
    return log


# --------------------------------------------------------------------------- report


def latency_table(servers: list[Server], limit_ms: float) -> str:
    header = "| server | initialize (s) | " + " | ".join(
        f"{kind} p50 / p95 (ms)" for kind in KINDS) + " |"
    lines = [header, "|" + "---|" * (2 + len(KINDS))]
    for server in servers:
        if server.skipped:
            lines.append(f"| {server.name} | skipped: {server.skipped} |" + " |" * len(KINDS))
            continue
        summary = server.summary(limit_ms)
        cells = [_cell(summary[kind]) for kind in KINDS]
        lines.append(f"| {server.name} | {server.initialize_s:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(stats: dict[str, Any]) -> str:
    if stats["p50_ms"] is None:
        return "no answers"
    text = f"{stats['p50_ms']:.0f} / {stats['p95_ms']:.0f}"
    notes = [f"{stats[k]} {k}" for k in ("timeout", "error", "empty") if stats[k]]
    return text + (f" ({', '.join(notes)})" if notes else "")


def completeness_table(servers: list[Server]) -> str:
    """Result totals per kind, and on how many questions lsp-agent found fewer than each peer."""
    live = [s for s in servers if not s.skipped]
    agent = next((s for s in live if s.name == "lsp-agent"), None)
    peers = [s for s in live if s is not agent]
    lines = ["| kind | " + " | ".join(f"{s.name} total" for s in live) + " | " + " | ".join(
        f"questions with fewer than {p.name}" for p in peers) + " |",
        "|" + "---|" * (1 + len(live) + len(peers))]
    for kind in COUNTED:
        totals = [sum(c or 0 for c in s.counts[kind].values()) for s in live]
        fewer = [sum((count or 0) < (peer.counts[kind].get(label) or 0)
                     for label, count in agent.counts[kind].items()) if agent else 0
                 for peer in peers]
        lines.append(f"| {kind} | " + " | ".join(map(str, totals)) + " | "
                     + " | ".join(map(str, fewer)) + " |")
    return "\n".join(lines)


def versions(names: list[str], baseline: Path | None = None) -> dict[str, str]:
    out = {"python": platform.python_version(), "jedi": jedi.__version__}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(DISTRIBUTIONS[name])
    checkouts = {"lsp-agent commit": REPO, "baseline commit": baseline}
    for label, checkout in checkouts.items():
        if checkout is None:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out[label] = subprocess.run(
                ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, timeout=10).stdout.strip()
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="cross-file positions (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="5 positions on the small fixture, one round")
    parser.add_argument("--project", type=Path, help="project to query (default: Django 5.2)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where Django is downloaded (default ~/.cache/lsp-agent-bench)")
    parser.add_argument("--servers", default=",".join(server_specs()),
                        help="comma-separated subset of: " + ", ".join(server_specs()))
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                        help="seconds per request; a timeout counts as this (default 30)")
    parser.add_argument("--max-load", type=float, default=float(os.cpu_count() or 1) * 1.5,
                        help="rounds starting above this 1-minute load are flagged")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma-separated subset of: " + ", ".join(KINDS))
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another lsp-agent checkout, run too as 'lsp-agent@baseline' "
                             "(before/after in one interleaved run)")
    parser.add_argument("--seed", type=int, default=7, help="seed for choosing query positions")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds = min(args.n, 5), 1
    unknown = set(args.servers.split(",")) - set(server_specs())
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    args.kinds = tuple(args.kinds.split(","))
    if set(args.kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(set(args.kinds) - set(KINDS)))}")
    if args.n < 1 or args.rounds < 1:
        parser.error("-n and --rounds must be at least 1")
    return args


def project_source(args: argparse.Namespace) -> tuple[Path, str]:
    if args.project:
        return args.project, str(args.project)
    if args.quick:
        return REPO / "fixtures" / "multimodule", "fixtures/multimodule"
    return django_source(args.cache_dir or default_cache_dir()), "Django 5.2 (django package)"


async def main_async(args: argparse.Namespace) -> int:
    names = args.servers.split(",")
    servers = [Server(server_specs()[name]) for name in names]
    if args.baseline:
        agent = server_specs()["lsp-agent"]
        servers.insert(1, Server(ServerSpec(BASELINE, agent.command, agent.init_options,
                                            args.baseline.resolve())))
    source, label = project_source(args)
    installed = versions(names, args.baseline)  # what runs, recorded before anything can change
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-code-intel-") as tmp:
        workdir = Path(tmp)
        jedi.settings.cache_directory = str(workdir / "cache" / "picker")
        root = prepare_project(source, workdir)
        queries = pick_queries(root, args.n, args.seed)
        if not queries:
            print(f"no cross-file usages found in {root}", file=sys.stderr)
            return 1
        files = list(root.rglob("*.py"))
        lines = sum(len(p.read_text(errors="replace").splitlines()) for p in files)
        print(f"project: {label} ({len(files)} files, {lines} lines), {len(queries)} "
              f"positions, {args.rounds} rounds, load {load_before[0]:.2f}", flush=True)
        live: list[Server] = []
        try:
            for server in servers:
                try:
                    await start(server, root, workdir)
                    open_documents(server, queries)
                    live.append(server)
                except ServerFailed as exc:
                    tail = b"".join(server.stderr_tail).decode(errors="replace").strip()
                    server.skipped = str(exc) + (
                        f" (stderr: {' | '.join(tail.splitlines()[-3:])})" if tail else "")
                    print(f"skip: {server.name}: {server.skipped}", flush=True)
            if not live:
                return 1
            await warm_up(live, queries, args.timeout, args.kinds)
            print("warm-up: " + "; ".join(f"{s.name}: {s.warmup}" for s in live), flush=True)
            rounds = await measure(live, queries, args.rounds, args.timeout, args.max_load,
                                   args.kinds)
            for server in live:
                process = server.client._server if server.client else None
                if process is not None:
                    server.rss_kb = tree_rss_kb(process.pid)
        finally:
            for server in servers:
                await stop(server)
    limit_ms = args.timeout * 1000
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "project": label, "python_files": len(files), "python_lines": lines,
        "positions": [q.label for q in queries], "rounds": args.rounds, "seed": args.seed,
        "kinds": list(args.kinds),
        "timeout_s": args.timeout, "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()], "round_log": rounds,
        "max_load": args.max_load, "cpus": os.cpu_count(), "platform": platform.platform(),
        "versions": installed,
        "note": "a timeout counts as the limit in p50/p95; error answers count with their "
                "latency; counts are from round 1",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "servers": {s.name: s.summary(limit_ms) for s in servers}}
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print()
    print(latency_table(servers, limit_ms))
    print()
    print(completeness_table(servers))
    print()
    for server in live:
        total = sum(server.rss_kb.values()) / 1024
        print(f"RSS {server.name}: {total:.0f} MB in {len(server.rss_kb)} processes")
    print(f"\nversions: {meta['versions']}")
    print(f"load: before {meta['load_before']}, after {meta['load_after']}")
    print(f"results: {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
