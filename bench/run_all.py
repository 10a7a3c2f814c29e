"""Run every benchmark and regenerate the tables of docs/benchmarks.md from this run alone.

    python bench/run_all.py             # every benchmark, full size (an hour or more on 2 cores)
    python bench/run_all.py --quick     # each benchmark's --quick (or smallest) form
    python bench/run_all.py --only cold,warm
    python bench/run_all.py --no-docs   # measure, write results, leave the docs alone

Each benchmark runs as its own process (one after another: they would compete for the CPUs),
with the persistent bytecode cache of bench/common.py. Its tables go into docs/benchmarks.md
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, headed by the date, the load
average before and after, the machine and the versions of this run. A benchmark that fails
keeps its markers' previous text and says so at the top of the section; nothing from another
run is mixed in. The summary goes to bench/results/run_all-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench import peers  # noqa: E402
from bench.common import (  # noqa: E402
    RESULTS_DIR,
    latest_results,
    load_average,
    machine_facts,
    measured_env,
    our_versions,
    replace_marked,
    results_path,
    write_results,
)

DOCS = REPO / "docs" / "benchmarks.md"
TIMEOUT_S = 3 * 3600


@dataclass
class Bench:
    name: str
    script: str
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    # The markdown of the run: from the bench's own results file (table_md), else its stdout.
    table: Callable[[str], str] | None = None


def tables_from_stdout(stdout: str) -> str:
    """The markdown tables (and their headings) a bench printed, in order."""
    keep, lines = [], stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("|", "###", "- ")):
            keep.append(line)
        elif not line.strip() and keep and i + 1 < len(lines) and \
                lines[i + 1].startswith(("|", "###")):
            keep.append("")
    return "\n".join(keep).strip()


def own_table(name: str) -> Callable[[str], str]:
    def table(_: str) -> str:
        path = latest_results(name)
        return json.loads(path.read_text())["table_md"] if path else ""
    return table


def mcp_table(_: str) -> str:
    data = json.loads((RESULTS_DIR / "mcp.json").read_text())
    lines = ["| part | measure | value |", "|---|---|---|"]
    for part, values in data.items():
        if isinstance(values, dict) and part != "meta":
            for key, value in values.items():
                shown = f"{value:.4g}" if isinstance(value, float) else value
                lines.append(f"| {part} | {key} | {shown} |")
    return "\n".join(lines)


BENCHES = (
    Bench("cold", "bench_cold.py", [], ["--quick"], own_table("cold")),
    Bench("warm", "bench_warm.py", [], ["--quick"], own_table("warm")),
    # Start-up and overhead per round are measured by bench_cold / bench_warm (interleaved,
    # measured at the model server); the engine bench keeps the editor-while-streaming part.
    Bench("engine", "bench_engine.py", ["--only", "editor"], ["--only", "editor", "--quick"]),
    Bench("code_intel", "bench_code_intel.py", [], ["--quick"]),
    Bench("context", "bench_context.py", [], []),
    Bench("store", "bench_store.py", [], ["--quick", "--only", "append,load,server_resume"]),
    Bench("mcp", "bench_mcp.py", [], ["-n", "50"], mcp_table),
    Bench("delegation", "bench_delegation.py", [], ["--runs", "2"]),
)


def run_bench(bench: Bench, quick: bool) -> dict[str, Any]:
    command = [sys.executable, str(HERE / bench.script), *(bench.quick if quick else bench.full)]
    print(f"== {bench.name}: {' '.join(command[1:])}", flush=True)
    before, started, start_date = load_average(), time.monotonic(), machine_facts()["date"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                              env=measured_env(), cwd=str(REPO), stdin=subprocess.DEVNULL,
                              check=False)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout, stderr = None, _text(exc.stdout), f"timed out after {TIMEOUT_S} s"
    record: dict[str, Any] = {
        "started": start_date, "date": machine_facts()["date"], "quick": quick,
        "command": command[1:],
        "exit_code": code, "seconds": round(time.monotonic() - started),
        "load_before": before, "load_after": load_average(), "stderr_tail": stderr[-1500:]}
    table = ""
    if code == 0:
        try:
            table = (bench.table or tables_from_stdout)(stdout)
        except (OSError, ValueError, KeyError) as exc:
            record["table_error"] = f"{type(exc).__name__}: {exc}"
    record["table_md"] = table
    (RESULTS_DIR / f"{bench.name}-stdout.txt").write_text(stdout)
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    print(f"   {status} in {record['seconds']} s, load {before} -> {record['load_after']}",
          flush=True)
    return record


def _minus(iso: str, seconds: float) -> str:
    """The start of a record that kept only its end."""
    import datetime as dt

    return (dt.datetime.fromisoformat(iso) - dt.timedelta(seconds=seconds)).isoformat()


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def section_header(record: dict[str, Any], facts: dict[str, Any],
                   versions: dict[str, Any]) -> str:
    size = "`--quick`" if record.get("quick") else "full size"
    peer_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    when = record.get("started") or _minus(record["date"], record["seconds"])
    when = when[:16].replace("T", " ")
    head = (f"*Generated by `bench/run_all.py` ({size}), started {when} UTC; load "
            "average "
            f"{record['load_before']:.2f} before, {record['load_after']:.2f} after, on "
            f"{facts['cores']} cores ({facts['cpu_model']}), Python {facts['python']}, "
            f"{facts['os']}; versions: {peer_text}. Raw data: `bench/results/`.*")
    if record["exit_code"] != 0:
        return (head + f"\n\n**This run failed (exit {record['exit_code']}); no figures.** "
                f"Last lines of its error output:\n\n```\n{record['stderr_tail'][-600:]}\n```")
    return head + "\n\n" + (record["table_md"] or "(the benchmark printed no table)")


def update_docs(records: dict[str, dict[str, Any]], facts: dict[str, Any],
                versions: dict[str, Any], docs: Path = DOCS) -> list[str]:
    """Rewrite each benchmark's marked section; returns the names whose markers are missing."""
    text, missing = docs.read_text(), []
    for name, record in records.items():
        try:
            text = replace_marked(text, name, section_header(record, facts, versions))
        except KeyError:
            missing.append(name)
    docs.write_text(text)
    return missing


def docs_from_results() -> int:
    path = latest_results("run_all")
    if path is None:
        print("no bench/results/run_all-<date>.json yet: run the benchmarks first")
        return 1
    data = json.loads(path.read_text())
    missing = update_docs(data["benches"], data["meta"], data["meta"]["versions"])
    print(f"docs/benchmarks.md rewritten from {path}"
          + (f"; no markers for: {', '.join(missing)}" if missing else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(b.name for b in BENCHES))
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true",
                        help="run nothing: rewrite the docs from today's run_all results")
    args = parser.parse_args(argv)
    if args.docs_only:
        return docs_from_results()
    wanted = set(args.only.split(","))
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    # Pinned peers: Claude Code and the Python servers in their cache venv, and the Python
    # servers in this venv too (bench_code_intel.py starts them from here).
    peers.ensure_claude()
    peers.ensure_python_peers()
    peers.ensure_python_peers(Path(sys.prefix))
    peers.ensure_project_python()
    facts = machine_facts()
    installed = peers.versions()
    versions = {"lsp-agent": our_versions()["lsp-agent"],
                **{name: row["installed"] for name, row in installed.items()
                   if isinstance(row, dict)}}
    records = {b.name: run_bench(b, args.quick) for b in BENCHES if b.name in wanted}
    # Runs of the same day add up bench by bench (each record keeps its own date and load).
    earlier = results_path("run_all")
    merged = json.loads(earlier.read_text())["benches"] if earlier.exists() else {}
    merged.update(records)
    summary = {"meta": {**facts, "peers": installed, "versions": versions,
                        "ours": our_versions()}, "benches": merged}
    table = "\n\n".join(f"## {n}\n\n{r['table_md']}" for n, r in merged.items())
    path = write_results("run_all", summary, table)
    if not args.no_docs:
        missing = update_docs(records, facts, versions)
        if missing:
            print(f"docs/benchmarks.md has no markers for: {', '.join(missing)}")
    failed = [n for n, r in records.items() if r["exit_code"] != 0]
    print(f"wrote {path}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
