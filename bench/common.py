"""What every benchmark here shares, so that each comparison is made the same way.

* **Interleaving**: every compared thing runs once per round, the order rotating from round to
  round (``rotations``), so drift in the machine's load hits all of them alike.
* **Failures count**: a timed-out or failed sample enters the percentiles at the timeout value
  (``Samples``); timeouts and errors are also counted and shown next to p50/p95. Nothing that
  went wrong is dropped to make a percentile look better.
* **Guarded warm-ups** (``warm_up``): a warm-up that errors or times out is recorded, never
  crashes the run.
* **Load**: the 1-minute load average is recorded before and after each run and per round;
  rounds that started above the threshold are flagged (``LoadWatch``).
* **Facts, not assumptions**: the machine (cores, CPU model, OS, Python) and the version of
  every program compared, as its own ``--version`` prints it (``machine_facts``,
  ``command_version``).
* **Bytecode**: this machine sets ``PYTHONDONTWRITEBYTECODE=1``, so an editable install would
  compile its sources again at every start, which a user's install never does. Every Python
  process measured gets a persistent ``PYTHONPYCACHEPREFIX`` instead (``measured_env``).
* **Results**: ``bench/results/<name>-<date>.json`` (with a markdown table inside), and the
  tables of ``docs/benchmarks.md`` live between ``<!-- bench:NAME -->`` markers that
  ``bench/run_all.py`` rewrites (``replace_marked``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_DIR = HERE / "results"
CACHE_DIR = Path.home() / ".cache" / "lsp-agent-bench"
PYCACHE_DIR = CACHE_DIR / "pycache"

# Rounds that start while the 1-minute load average is above this many runnable tasks per core
# are flagged: their timings include waiting for a CPU.
LOAD_PER_CORE_LIMIT = float(os.environ.get("LSP_AGENT_BENCH_LOAD_PER_CORE", "1.0"))

T = TypeVar("T")


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The pct-th percentile, linear between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Samples:
    """Timings of one measured thing. A timeout or an error enters the percentiles as the
    timeout value (the time a user would have waited before giving up), and is counted."""

    timeout: float
    values: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    flagged: int = 0  # samples taken while the load was above the limit

    def add(self, value: float, *, loaded: bool = False) -> None:
        self.values.append(value)
        self.flagged += loaded

    def add_timeout(self, *, loaded: bool = False) -> None:
        self.timeouts += 1
        self.add(self.timeout, loaded=loaded)

    def add_error(self, message: str, *, loaded: bool = False) -> None:
        self.errors.append(message[:300])
        self.add(self.timeout, loaded=loaded)

    def summary(self, digits: int = 2) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "n": len(self.values),
            "p50": rounded(percentile(self.values, 50)),
            "p95": rounded(percentile(self.values, 95)),
            "max": rounded(max(self.values)) if self.values else None,
            "mean": rounded(statistics.fmean(self.values)) if self.values else None,
            "timeouts": self.timeouts,
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "loaded_samples": self.flagged,
            "timeout_value": self.timeout,
        }


def failures_note(summary: dict[str, Any]) -> str:
    """'' or e.g. '2 timeouts, 1 error' for a table cell next to p50/p95."""
    parts = []
    if summary.get("timeouts"):
        parts.append(f"{summary['timeouts']} timeout{'s' * (summary['timeouts'] != 1)}")
    if summary.get("errors"):
        parts.append(f"{summary['errors']} error{'s' * (summary['errors'] != 1)}")
    return ", ".join(parts)


def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


# --------------------------------------------------------------------------- interleaving


def rotations(names: Sequence[T], rounds: int) -> list[list[T]]:
    """The order of each round: round r starts with item r (mod n), so each comes first,
    second, ... equally often, and no one always runs right after the same other."""
    n = len(names)
    return [[names[(r + i) % n] for i in range(n)] for r in range(rounds)] if n else []


@dataclass
class WarmUp:
    name: str
    ok: bool
    seconds: float
    error: str | None = None


def warm_up(name: str, action: Callable[[], Any], timeout: float | None = None) -> WarmUp:
    """Run an untimed warm-up; a failure or a timeout (``action`` raising TimeoutError or
    subprocess.TimeoutExpired) is recorded and returned, never raised."""
    started = time.perf_counter()
    try:
        action()
    except Exception as exc:
        kind = "timeout" if isinstance(exc, (TimeoutError, subprocess.TimeoutExpired)) else "error"
        message = f"{kind}: {type(exc).__name__}: {exc}"[:300]
        return WarmUp(name, False, round(time.perf_counter() - started, 3), message)
    elapsed = time.perf_counter() - started
    if timeout is not None and elapsed > timeout:
        return WarmUp(name, False, round(elapsed, 3), f"timeout: took {elapsed:.1f} s")
    return WarmUp(name, True, round(elapsed, 3))


# --------------------------------------------------------------------------- load


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def is_loaded(load1: float, cores: int | None = None, limit: float | None = None) -> bool:
    cores = cores or os.cpu_count() or 1
    per_core = LOAD_PER_CORE_LIMIT if limit is None else limit
    return load1 > per_core * cores


@dataclass
class LoadWatch:
    """The load average before and after a run, and per round."""

    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    limit_per_core: float = LOAD_PER_CORE_LIMIT
    before: float = field(default_factory=lambda: load_average())
    after: float | None = None
    rounds: list[float] = field(default_factory=list)

    def round_started(self) -> bool:
        """Record the load at the start of a round; True if the round is flagged."""
        load = load_average()
        self.rounds.append(load)
        return is_loaded(load, self.cores, self.limit_per_core)

    def finish(self) -> dict[str, Any]:
        self.after = load_average()
        flagged = sum(is_loaded(x, self.cores, self.limit_per_core) for x in self.rounds)
        return {
            "cores": self.cores,
            "limit_per_core": self.limit_per_core,
            "threshold": round(self.limit_per_core * self.cores, 2),
            "before": self.before,
            "after": self.after,
            "per_round": self.rounds,
            "rounds_flagged": flagged,
            "max": max([self.before, self.after, *self.rounds]),
        }


def load_note(load: dict[str, Any]) -> str:
    """One sentence for the docs: the load during the run and how many rounds were flagged."""
    text = (f"load average {load['before']:.2f} before, {load['after']:.2f} after "
            f"(max {load['max']:.2f}) on {load['cores']} cores")
    if load.get("per_round"):
        text += (f"; {load['rounds_flagged']} of {len(load['per_round'])} rounds started above "
                 f"{load['threshold']:.1f} (flagged)")
    return text


# --------------------------------------------------------------------------- facts


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "pycache_prefix": str(PYCACHE_DIR),
    }


def command_version(command: Sequence[str], timeout: float = 60,
                    env: dict[str, str] | None = None) -> str:
    """The first line ``command --version`` prints (as installed, never assumed), or why not."""
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({type(exc).__name__})"
    text = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return text[0] if text else f"unavailable (exit {done.returncode}, no output)"


def package_versions(names: Sequence[str]) -> dict[str, str]:
    """Installed versions of Python distributions in this interpreter."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision(repo: Path = REPO) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10, check=False)
        return done.stdout.strip() or "unknown"
    return "unknown"


def our_versions() -> dict[str, str]:
    return {"lsp-agent": git_revision(),
            **package_versions(["anthropic", "pygls", "lsprotocol", "jedi", "pydantic"])}


# --------------------------------------------------------------------------- environment


def measured_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for a measured Python process: a persistent bytecode cache (as a user's
    install has), never the repository's folders; ``extra`` on top."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_DIR)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- results


def results_path(name: str, day: dt.date | None = None) -> Path:
    day = day or dt.datetime.now(dt.UTC).date()
    return RESULTS_DIR / f"{name}-{day.isoformat()}.json"


def write_results(name: str, data: dict[str, Any], table_md: str) -> Path:
    """bench/results/<name>-<date>.json with the markdown table inside; returns the path."""
    path = results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**data, "table_md": table_md}, indent=1, default=str) + "\n")
    return path


def latest_results(name: str) -> Path | None:
    found = sorted(RESULTS_DIR.glob(f"{name}-????-??-??.json"))
    return found[-1] if found else None


MARKER = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)",
                    re.DOTALL)


def marked_sections(text: str) -> list[str]:
    return [m.group("name") for m in MARKER.finditer(text)]


def replace_marked(text: str, name: str, body: str) -> str:
    """Replace what stands between ``<!-- bench:name -->`` and ``<!-- /bench:name -->``.
    A missing marker is an error: the docs must say where each table goes."""
    found = False

    def swap(match: re.Match[str]) -> str:
        nonlocal found
        if match.group("name") != name:
            return match.group(0)
        found = True
        return match.group(1) + body.rstrip("\n") + "\n" + match.group(4)

    replaced = MARKER.sub(swap, text)
    if not found:
        raise KeyError(f"no <!-- bench:{name} --> ... <!-- /bench:{name} --> markers")
    return replaced


# --------------------------------------------------------------------------- processes


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(x) for x in (task / "children").read_text().split()]
    return out


def tree_of(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children_of(current)
    return pids


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_rss_kib(pid: int) -> int:
    return sum(rss_kib(p) for p in tree_of(pid))


@dataclass
class ProcessRun:
    """One measured process: wall, CPU of the whole waited-for tree, memory."""

    started: float  # time.monotonic() just before the spawn
    ended: float
    returncode: int | None
    timed_out: bool
    cpu_s: float  # user + sys of the process and every descendant it waited for
    # The largest single process: getrusage's ru_maxrss over what the run reaped, or the
    # largest sampled one (processes it did not reap: a warm server's), whichever is larger.
    max_rss_kib: int
    peak_tree_rss_kib: int  # the largest sum over the live tree, sampled
    stdout: str = ""
    stderr: str = ""

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


def largest_rss_kib(pids: Sequence[int]) -> int:
    return max((rss_kib(p) for p in pids), default=0)


def run_measured(command: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float,
                 stdin: bytes | None = None, sample_every: float = 0.02,
                 also_sample: Callable[[], Sequence[int]] | None = None) -> ProcessRun:
    """Spawn ``command``, sample its tree's RSS until it exits, and reap it with wait4 for its
    resource usage (which includes every child it reaped itself). A run past ``timeout`` is
    killed (its whole process group) and reported as timed out. ``also_sample`` names more
    processes whose trees work for the run (a warm server and its fork serving it): their RSS
    is sampled with the run's tree, counted once."""
    import signal
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(list(command), env=env, cwd=str(cwd), stdout=out, stderr=err,
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                start_new_session=True)
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(stdin)
                proc.stdin.close()
        peak, largest, timed_out, status, usage = 0, 0, False, 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            pids = set(tree_of(proc.pid))
            for root in (also_sample() if also_sample else ()):
                pids.update(tree_of(root))
            peak = max(peak, sum(rss_kib(p) for p in pids))
            largest = max(largest, largest_rss_kib(list(pids)))
            time.sleep(sample_every)
        ended = time.monotonic()
        proc.returncode = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(ProcessLookupError):  # no stragglers outlive a measurement
            os.killpg(proc.pid, signal.SIGKILL)
        out.seek(0)
        err.seek(0)
        return ProcessRun(
            started=started, ended=ended, returncode=None if timed_out else proc.returncode,
            timed_out=timed_out, cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_kib=max(usage.ru_maxrss, largest), peak_tree_rss_kib=peak,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"))


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


# --------------------------------------------------------------------------- network namespace


NETNS_FLAG = "--inside-netns"


def in_loopback_namespace(argv: Sequence[str]) -> tuple[bool, str] | None:
    """Re-run this script (``argv``) in a new network namespace holding only the loopback
    interface, so that nothing it starts can reach another address. Returns None when already
    inside (the caller goes on), otherwise runs the child and exits with its code. When no
    namespace can be made, returns (False, reason): the caller goes on and records it."""
    if NETNS_FLAG in argv:
        return None
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True,
                           check=False) if _which("unshare") else None
    if probe is None or probe.returncode != 0:
        reason = "unshare(1) missing" if probe is None else probe.stderr.strip()[:200]
        return False, f"no network namespace: {reason}"
    done = subprocess.run(["unshare", "-rn", sys.executable, *argv, NETNS_FLAG], check=False)
    raise SystemExit(done.returncode)


def loopback_up() -> str | None:
    """Inside the namespace: bring ``lo`` up. Returns an error or None."""
    done = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True,
                          check=False, env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    return None if done.returncode == 0 else done.stderr.strip()[:200]


def _which(program: str) -> str | None:
    import shutil

    return shutil.which(program)


def run_facts() -> dict[str, Any]:
    """Machine facts, load and our versions, for a benchmark's results file."""
    return {**machine_facts(), "versions": our_versions()}
