"""The jedi workers: child processes that answer code-intelligence queries one at a time each.

Why processes: jedi cannot be interrupted and is not thread-safe, so a query that runs away
(a huge buffer, pathological inference) can only be stopped by ending the process it runs in.
The server side (``JediWorker``) gives each query a deadline enforced by a timer in the thread
that waits for the answer: when it passes, the process is killed, the query reports a timeout,
and the next query on that worker starts a fresh process. Because the timer lives next to the
process, the deadline holds even when nobody awaits the answer any more.

A cancelled query (LSP ``$/cancelRequest``, a tool's own limit) stops waiting at once and cuts
the deadline of its worker down to ``CANCEL_GRACE`` seconds: a query about to finish still
warms jedi's caches (editors cancel often, and a killed worker restarts cold), one that would
run on is killed, so its worker is free again soon -- at once when a new query finds every
worker busy, so the work nobody waits for never delays one somebody does.

A ``JediChannel`` is a bounded pool of such workers (``POOL_SIZE``), shared by every JediIntel
of the server with the same cache folder: jedi's warm caches serve all workspace roots, and a
query stuck in one worker does not starve the others. Workers start on demand (the second only
when the first is busy), and a free warm worker is preferred.

Protocol: one JSON object per line on stdin/stdout. The first request is ``{"cache_dir"}``,
answered ``{"ready": true}``; each query ``{"op", "root", "max_results", ...}`` is answered
``{"ok": <QueryResult as JSON>}`` or ``{"error": <message>, "type": <exception class name>}``.
A worker ends when its stdin closes (the server exited) and, on Linux, when the server dies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.code_intel.worker_io import die_with_parent, protocol_streams

START_TIMEOUT = 60.0  # spawning Python and importing jedi, on a busy machine
POOL_SIZE = 2  # workers per channel: one stuck query leaves another worker to answer
CANCEL_GRACE = 10.0  # seconds a cancelled query may still finish if no other query needs its worker
WORKER_MODULE = "lsp_agent.code_intel.jedi_worker"


class JediTimeout(Exception):
    """The query did not finish in time; its worker process was killed."""


class JediWorkerError(RuntimeError):
    """The worker failed or stopped without answering."""


class JediCancelled(Exception):
    """The query was cancelled before a worker took it."""


# --------------------------------------------------------------------------- server side


class JediWorker:
    """The server's handle on one worker process. ``call`` blocks: run it in one thread."""

    def __init__(self, cache_dir: Path, command: list[str] | None = None):
        self._init = {"cache_dir": str(cache_dir)}
        self._command = command or [sys.executable, "-m", WORKER_MODULE]
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # guards _proc and _deadline against other threads
        self._deadline: tuple[threading.Timer, Callable[[], None]] | None = None
        self._cut: float | None = None  # a cut that came while the process was starting

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The answer to ``request``; JediTimeout after ``timeout`` seconds (worker killed)."""
        try:
            proc = self._ensure_started()
            reply, expired = self._exchange(proc, request, timeout, query=True)
        finally:
            with self._lock:
                self._cut = None
        if expired:
            raise JediTimeout(f"no answer within {timeout:g} s")
        if "error" in reply:
            exc_type = _ERRORS.get(reply.get("type", ""), JediWorkerError)
            raise exc_type(reply["error"])
        return reply["ok"]

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None before the first query or after a kill)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def kill(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _kill(proc)

    def cut_short(self, grace: float) -> None:
        """The running query may take at most ``grace`` more seconds (it was cancelled)."""
        with self._lock:
            if self._deadline is None:  # still starting: the query's deadline will be cut
                self._cut = grace
                return
            timer, expire = self._deadline
            timer.cancel()
            cut = threading.Timer(grace, expire)
            cut.daemon = True
            self._deadline = (cut, expire)
            cut.start()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        proc = subprocess.Popen(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            reply, expired = self._exchange(proc, self._init, START_TIMEOUT)
        except JediWorkerError:
            _kill(proc)
            raise
        if expired or not reply.get("ready"):
            _kill(proc)
            raise JediWorkerError(f"the jedi worker did not start within {START_TIMEOUT:g} s")
        with self._lock:
            self._proc = proc
        return proc

    def _exchange(self, proc: subprocess.Popen[bytes], message: dict[str, Any],
                  timeout: float, query: bool = False) -> tuple[dict[str, Any], bool]:
        """Send one line, read one line; a timer kills the process if the answer is late.
        A query's timer can be cut short (``cut_short``); the start-up's cannot."""
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill(proc, reap=False)

        if query:
            with self._lock:
                timeout = min(timeout, self._cut) if self._cut is not None else timeout
        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        if query:
            with self._lock:
                self._deadline = (timer, expire)
        timer.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:  # the pipe broke: the process was killed or died
            line = b""
        finally:
            if query:
                with self._lock:
                    timer = self._deadline[0] if self._deadline else timer
                    self._deadline = None
            timer.cancel()
        if expired.is_set():
            _kill(proc)
            self._forget(proc)
            return {}, True
        if not line:
            code = _kill(proc)
            self._forget(proc)
            raise JediWorkerError(f"the jedi worker stopped (exit status {code})")
        return json.loads(line), False

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            if self._proc is proc:
                self._proc = None


def _kill(proc: subprocess.Popen[bytes], reap: bool = True) -> int | None:
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    if not reap:
        return None
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


class _Ticket:
    """One query's claim on a worker: lets the event loop cut short the worker it runs on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: JediWorker | None = None
        self.cancelled = False

    def start(self, worker: JediWorker) -> bool:
        with self._lock:
            self._worker = worker
            return not self.cancelled

    def finish(self) -> None:
        with self._lock:
            self._worker = None

    def cancel(self, grace: float) -> None:
        with self._lock:
            self.cancelled = True
            if self._worker is not None:
                self._worker.cut_short(grace)


class JediChannel:
    """A bounded pool of workers, each with the one thread that talks to it."""

    def __init__(self, cache_dir: Path, command: list[str] | None, size: int = POOL_SIZE):
        self.workers = [JediWorker(cache_dir, command) for _ in range(size)]
        self._free = list(self.workers)
        self._free_changed = threading.Condition()
        self._waiters = concurrent.futures.ThreadPoolExecutor(
            max_workers=size, thread_name_prefix="jedi-pipe")
        self.cancel_grace = CANCEL_GRACE
        self._running: set[_Ticket] = set()  # guarded by _free_changed
        self._queued: set[_Ticket] = set()  # asked, not yet on a worker (same guard)
        self.users = 0

    async def ask(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The answer of the first free worker; JediTimeout once ``deadline`` seconds have
        passed since the worker took the query (time spent queued is not counted). The
        deadline is enforced next to the process, not by this await. Cancelling the await
        stops waiting at once and leaves the worker ``cancel_grace`` seconds to finish, or
        none when another query is waiting for a worker."""
        ticket = _Ticket()
        with self._free_changed:
            self._queued.add(ticket)
        self._make_room()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._waiters, self._call, ticket, request,
                                              deadline)
        except asyncio.CancelledError:
            ticket.cancel(self.cancel_grace)
            with self._free_changed:
                self._queued.discard(ticket)
            self._make_room()  # others may be waiting for this worker already
            raise
        finally:
            with self._free_changed:
                self._queued.discard(ticket)

    def pids(self) -> list[int]:
        """Process ids of the workers running now."""
        return [pid for worker in self.workers if (pid := worker.pid) is not None]

    def _make_room(self) -> None:
        """More queries waiting than workers free: those still running a cancelled query
        are stopped now."""
        with self._free_changed:
            short = len(self._queued) - len(self._free)
            cancelled = [t for t in self._running if t.cancelled][: max(short, 0)]
        for ticket in cancelled:
            ticket.cancel(0.0)

    def _call(self, ticket: _Ticket, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        worker = self._take()
        try:
            with self._free_changed:
                self._queued.discard(ticket)
                self._running.add(ticket)
            if not ticket.start(worker):
                raise JediCancelled("cancelled before it started")
            return worker.call(request, deadline)
        finally:
            ticket.finish()
            with self._free_changed:
                self._running.discard(ticket)
                self._free.append(worker)
                self._free_changed.notify()

    def _take(self) -> JediWorker:
        """A free worker, a running (warm) one first. There are as many threads as workers,
        so one is always free when a thread asks."""
        with self._free_changed:
            while not self._free:
                self._free_changed.wait()
            warm = [worker for worker in self._free if worker.pid is not None]
            worker = (warm or self._free)[0]
            self._free.remove(worker)
            return worker

    def shut(self) -> None:
        for worker in self.workers:
            worker.kill()
        self._waiters.shutdown(wait=False, cancel_futures=True)


_channels: dict[tuple[str, tuple[str, ...]], JediChannel] = {}
_channels_lock = threading.Lock()


def open_channel(cache_dir: Path, command: list[str] | None = None) -> JediChannel:
    """The shared channel for this cache folder and worker command (one more user)."""
    key = (str(cache_dir), tuple(command or ()))
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None:
            channel = _channels[key] = JediChannel(cache_dir, command)
        channel.users += 1
        return channel


def close_channel(channel: JediChannel) -> None:
    """One user fewer; the last one stops the worker."""
    with _channels_lock:
        channel.users -= 1
        if channel.users > 0:
            return
        for key, known in list(_channels.items()):
            if known is channel:
                del _channels[key]
    channel.shut()


_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,  # a position outside the file: the caller's mistake
    "FileNotFoundError": FileNotFoundError,
}


# --------------------------------------------------------------------------- worker side


def _queries(engine: Any) -> dict[str, Callable[[dict[str, Any]], Any]]:
    def at(r: dict[str, Any]) -> tuple[Path, str, int, int]:
        return Path(r["path"]), r["text"], r["line"], r["column"]

    return {
        "definition": lambda r: engine.definition(*at(r)),
        "references": lambda r: engine.references(*at(r), r.get("include_declaration", True)),
        "hover": lambda r: engine.hover(*at(r)),
        "document_symbols": lambda r: engine.document_symbols(Path(r["path"]), r["text"]),
        "workspace_symbols": lambda r: engine.workspace_symbols(r["query"], r.get("limit")),
    }


def main() -> None:
    die_with_parent()
    requests, out = protocol_streams()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    first = requests.readline()
    if not first:
        return
    from lsp_agent.code_intel import jedi_search, parse_cache_writer
    from lsp_agent.code_intel.jedi_intel import JediEngine

    jedi_search.install()  # the same answers, found faster (see jedi_search)
    pickles = parse_cache_writer.install()  # parso's disk cache written between queries
    request_waiting = parse_cache_writer.input_waiting(requests)
    cache_dir = Path(json.loads(first)["cache_dir"])
    engines: dict[tuple[str, int], dict[str, Callable[[dict[str, Any]], Any]]] = {}
    send({"ready": True})
    while line := requests.readline():
        request = json.loads(line)
        try:
            key = (request["root"], request["max_results"])
            if key not in engines:
                engine = JediEngine(Path(key[0]), max_results=key[1], cache_dir=cache_dir)
                engines[key] = _queries(engine)
            result = engines[key][request["op"]](request)
            send({"ok": result.model_dump(mode="json")})
        except Exception as exc:  # reported to the server, which decides what the caller sees
            kind = type(exc).__name__
            send({"error": str(exc) if kind in _ERRORS else f"{kind}: {exc}", "type": kind})
        if pickles is not None:
            pickles.flush(request_waiting)


if __name__ == "__main__":
    main()
