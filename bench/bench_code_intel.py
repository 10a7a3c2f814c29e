"""Latency of Python code intelligence: lsp-agent vs jedi-language-server vs pylsp.

Each server is started over stdio and asked the same definition, references and hover
queries on a real project (by default a copy of the installed ``jedi`` package, ~23k lines).
Reported per server: time from process start to the initialize response, and p50/p95 latency
per request kind, after one untimed warm-up of each kind.

    python bench/bench_code_intel.py            # 30 queries of each kind
    python bench/bench_code_intel.py --quick    # 5 queries on fixtures/multimodule
    python bench/bench_code_intel.py -n 50 --servers lsp-agent,pylsp --project ~/src/app

Results: bench/results/code_intel.json and a markdown table on stdout. A server that fails
to start is skipped with a line saying why; the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
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

START_TIMEOUT = 60.0  # process start + initialize
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
KINDS = ("definition", "references", "hover")


@dataclass
class ServerSpec:
    name: str
    command: list[str]
    init_options: dict[str, Any] = field(default_factory=dict)


def server_specs() -> dict[str, ServerSpec]:
    return {
        "lsp-agent": ServerSpec(
            "lsp-agent",
            [sys.executable, "-m", "lsp_agent", "serve"],
            {"pythonLanguageFeatures": True},
        ),
        "jedi-language-server": ServerSpec(
            "jedi-language-server", [str(VENV_BIN / "jedi-language-server")]
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


def prepare_project(source: Path | None, quick: bool, workdir: Path) -> Path:
    """Copy the project to benchmark into ``workdir`` so no server writes into the source."""
    if source is None:
        source = REPO / "fixtures" / "multimodule" if quick else Path(jedi.__file__).parent
    root = workdir / "project"
    target = root / source.name if (source / "__init__.py").exists() else root
    ignore = shutil.ignore_patterns("__pycache__", "third_party", "*.pyc", ".git", ".venv")
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
        picked += _usages_in_file(path, root, project, rng, limit=3)
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
class ServerRun:
    name: str
    initialize_s: float | None = None
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    empty: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    slowest: dict[str, tuple[float, str]] = field(default_factory=dict)
    unanswered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    skipped: str | None = None

    def record(self, kind: str, query: Query, ms: float, result: Any) -> None:
        self.latencies_ms[kind].append(ms)
        if ms > self.slowest.get(kind, (-1.0, ""))[0]:
            self.slowest[kind] = (ms, query.label)
        if not result:
            self.empty[kind] += 1
            self.unanswered[kind].append(query.label)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"initialize_s": self.initialize_s, "skipped": self.skipped}
        for kind in KINDS:
            samples = self.latencies_ms[kind]
            out[kind] = {
                "n": len(samples),
                "p50_ms": _percentile(samples, 50),
                "p95_ms": _percentile(samples, 95),
                "empty": self.empty[kind],
                "errors": self.errors[kind],
                "slowest": _slowest(self.slowest.get(kind)),
                "unanswered": self.unanswered[kind],
            }
        return out


def _slowest(entry: tuple[float, str] | None) -> dict[str, Any] | None:
    return None if entry is None else {"ms": round(entry[0], 2), "query": entry[1]}


def _percentile(samples: list[float], pct: int) -> float | None:
    if not samples:
        return None
    if len(samples) == 1:
        return round(samples[0], 2)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(cuts[pct - 1], 2)


async def run_server(
    spec: ServerSpec, root: Path, queries: list[Query], workdir: Path
) -> ServerRun:
    run = ServerRun(spec.name)
    client = LanguageClient("bench-code-intel", "1", protocol_cls=LenientProtocol)
    _ignore_server_chatter(client)
    drain: asyncio.Task | None = None
    stderr_tail: list[bytes] = []
    try:
        started = time.perf_counter()
        try:
            await client.start_io(*spec.command, env=_server_env(spec.name, workdir))
        except OSError as exc:
            raise ServerFailed(f"cannot start {spec.command[0]}: {exc}") from exc
        drain = asyncio.create_task(_drain(client, stderr_tail))
        await _initialize(client, spec, root)
        run.initialize_s = round(time.perf_counter() - started, 3)
        _open_documents(client, queries)
        await _measure(client, queries, run)
    except ServerFailed as exc:
        tail = b"".join(stderr_tail).decode(errors="replace").strip().splitlines()[-3:]
        run.skipped = str(exc) + (f" (stderr: {' | '.join(tail)})" if tail else "")
    finally:
        await _stop(client)
        if drain is not None:
            drain.cancel()
    return run


def _ignore_server_chatter(client: LanguageClient) -> None:
    for method in (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE):
        client.feature(method)(lambda params: None)


def _server_env(name: str, workdir: Path) -> dict[str, str]:
    # A private cache per server: every server starts cold and nothing lands in the home folder.
    cache = workdir / "cache" / name
    env = dict(os.environ)
    env.update(
        XDG_CACHE_HOME=str(cache),
        LSP_AGENT_CACHE_DIR=str(cache / "lsp-agent"),
        LSP_AGENT_LOG="warning",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
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


async def _initialize(client: LanguageClient, spec: ServerSpec, root: Path) -> None:
    uri = from_fs_path(str(root)) or ""
    params = types.InitializeParams(
        process_id=os.getpid(),
        root_uri=uri,
        workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)],
        capabilities=_client_capabilities(),
        initialization_options=spec.init_options or None,
    )
    try:
        await asyncio.wait_for(client.initialize_async(params), START_TIMEOUT)
    except TimeoutError as exc:
        raise ServerFailed(f"no initialize response within {START_TIMEOUT:.0f}s") from exc
    except Exception as exc:  # the process died or answered with an error
        raise ServerFailed(f"initialize failed: {exc}") from exc
    client.initialized(types.InitializedParams())


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


def _open_documents(client: LanguageClient, queries: list[Query]) -> None:
    for path in sorted({q.path for q in queries}):
        item = types.TextDocumentItem(
            uri=from_fs_path(str(path)) or "",
            language_id="python",
            version=1,
            text=path.read_text(encoding="utf-8", errors="replace"),
        )
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))


async def _measure(client: LanguageClient, queries: list[Query], run: ServerRun) -> None:
    for kind in KINDS:
        await _request(client, kind, queries[0])  # warm-up, untimed
        for query in queries:
            started = time.perf_counter()
            try:
                result = await _request(client, kind, query)
            except Exception as exc:  # an error answer or a timeout: count it, keep measuring
                run.errors[kind] += 1
                run.unanswered[kind].append(f"{query.label}: {type(exc).__name__} {exc}")
                continue
            run.record(kind, query, (time.perf_counter() - started) * 1000, result)


async def _request(client: LanguageClient, kind: str, query: Query) -> Any:
    document = types.TextDocumentIdentifier(uri=from_fs_path(str(query.path)) or "")
    position = types.Position(line=query.line, character=query.character)
    if kind == "definition":
        call = client.text_document_definition_async(
            types.DefinitionParams(text_document=document, position=position)
        )
    elif kind == "references":
        call = client.text_document_references_async(
            types.ReferenceParams(
                text_document=document,
                position=position,
                context=types.ReferenceContext(include_declaration=True),
            )
        )
    else:
        call = client.text_document_hover_async(
            types.HoverParams(text_document=document, position=position)
        )
    return await asyncio.wait_for(call, REQUEST_TIMEOUT)


async def _stop(client: LanguageClient) -> None:
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


# --------------------------------------------------------------------------- report


def markdown_table(runs: list[ServerRun]) -> str:
    header = "| server | initialize (s) | " + " | ".join(f"{kind} p50 / p95 (ms)" for kind in KINDS)
    lines = [header + " |", "|" + "---|" * (2 + len(KINDS))]
    for run in runs:
        if run.skipped:
            lines.append(f"| {run.name} | skipped: {run.skipped} |" + " |" * len(KINDS))
            continue
        summary = run.summary()
        cells = [_cell(summary[kind]) for kind in KINDS]
        lines.append(f"| {run.name} | {run.initialize_s:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(stats: dict[str, Any]) -> str:
    if stats["p50_ms"] is None:
        return "no answers"
    text = f"{stats['p50_ms']:.1f} / {stats['p95_ms']:.1f}"
    notes = []
    if stats["empty"]:
        notes.append(f"{stats['empty']} empty")
    if stats["errors"]:
        notes.append(f"{stats['errors']} errors")
    return text + (f" ({', '.join(notes)})" if notes else "")


def write_results(path: Path, meta: dict[str, Any], runs: list[ServerRun]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "servers": {run.name: run.summary() for run in runs}}
    path.write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=30, help="queries of each kind (default 30)")
    parser.add_argument("--quick", action="store_true", help="5 queries on the small fixture")
    parser.add_argument("--project", type=Path, help="project to query (default: jedi's source)")
    parser.add_argument(
        "--servers",
        default=",".join(server_specs()),
        help="comma-separated subset of: " + ", ".join(server_specs()),
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for choosing query positions")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 5)
    unknown = set(args.servers.split(",")) - set(server_specs())
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if args.n < 1:
        parser.error("-n must be at least 1")
    return args


async def main_async(args: argparse.Namespace) -> int:
    specs = [server_specs()[name] for name in args.servers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-code-intel-") as tmp:
        workdir = Path(tmp)
        jedi.settings.cache_directory = str(workdir / "cache" / "picker")
        root = prepare_project(args.project, args.quick, workdir)
        queries = pick_queries(root, args.n, args.seed)
        if not queries:
            print(f"no cross-file usages found in {root}", file=sys.stderr)
            return 1
        lines = sum(len(p.read_text(errors="replace").splitlines()) for p in root.rglob("*.py"))
        print(f"project: {args.project or 'default'} ({lines} lines), {len(queries)} queries/kind")
        runs = []
        for spec in specs:
            print(f"running {spec.name} ...", flush=True)
            run = await run_server(spec, root, queries, workdir)
            if run.skipped:
                print(f"skip: {spec.name}: {run.skipped}")
            runs.append(run)
        meta = {
            "project": str(args.project or ("fixtures/multimodule" if args.quick else "jedi")),
            "python_lines": lines,
            "queries_per_kind": len(queries),
            "seed": args.seed,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "jedi": jedi.__version__,
        }
    write_results(args.output, meta, runs)
    print()
    print(markdown_table(runs))
    print(f"\nresults: {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
