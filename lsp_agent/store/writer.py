"""The transcript writer: appends on the event loop, slow work on a thread, in order.

``append(entry)`` stamps the common fields, serialises the entry, masks secrets in the line and
writes it with a single ``write`` on an ``O_APPEND`` descriptor, at once: a write of a short
line to the page cache takes microseconds. Handing each line to a thread instead cost the loop
milliseconds per model round on a busy machine (every hand-off wakes the thread, which then
takes the GIL from the loop; bench/bench_warm.py, "Overhead per model round"). A line longer
than ``DIRECT_MAX`` goes to the thread, and so does every line behind it while the thread has
lines queued, so that lines keep their order; the index entry, fsync and close are always the
thread's. fsync policy: the page cache survives a crash of the process, so lines are not
fsynced one by one (an fsync costs milliseconds and would throttle a streaming turn); the file
is fsynced after the entries that end a unit of work (``SYNC_AFTER``: end of a turn, rewind,
compaction, title), on ``sync()`` and on ``close()``. A power loss can thus lose the turn that
was running; a SIGKILL loses only long lines still queued for the thread (a short line is in
the kernel when ``append`` returns) and at worst tears the line being written, which the reader
skips.

Errors (disk full, read-only state dir, quota) switch persistence off: ``on_error`` is told
once, later appends only keep the in-memory state, and the caller carries on. A second process
cannot open the same session: the writer holds an exclusive ``flock`` on its transcript.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import copy
import fcntl
import json
import logging
import os
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.store import entries as en
from lsp_agent.store.layout import (
    atomic_write,
    ensure_private_dir,
    fsync_dir,
    git_branch,
    meta_path_for,
    write_all,
)
from lsp_agent.store.redact import Redactor

log = logging.getLogger(__name__)

SYNC_AFTER = frozenset({"turn_end", "rewind", "compact_boundary", "title"})
META_AFTER = frozenset({"user", "turn_end", "rewind", "title", "mode", "model"})
CLOSE_TIMEOUT = 30.0

# Lines up to this many bytes are written on the loop by ``append``; longer ones (a large tool
# result) by the thread.
DIRECT_MAX = 64 * 1024

_LINE, _META, _FLUSH, _SYNC, _CLOSE, _FSYNC = range(6)

ErrorCallback = Callable[[str], None]


class SessionInUse(RuntimeError):
    """Another process has this session open for writing."""


class WriterClosed(RuntimeError):
    pass


@dataclass
class TurnPoint:
    """Where turn ``n`` starts on the current branch: its user entry and that entry's parent."""

    uuid: str
    parent: str | None


@dataclass
class WriterState:
    """What a writer needs to go on with an existing transcript (from ``TranscriptReader``)."""

    leaf: str | None
    meta: dict[str, Any]
    turns: list[TurnPoint] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=en.new_ledger)  # see entries.add_cost


_second: list[Any] = [None, ""]  # the last whole second formatted, reused within it


def now_iso(t: float | None = None) -> str:
    """``2026-12-01T10:41:08.804Z``; formatting a date costs microseconds, so the part up to
    the second is formatted once per second."""
    t = time.time() if t is None else t
    second = int(t)
    if _second[0] != second:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_second[1]}.{int(t * 1000) % 1000:03d}Z"


class _Ids:
    """UUID-shaped (version 4) entry ids from a generator seeded from the OS once: uniqueness
    is what they need, and ``uuid.uuid4()`` costs a getrandom call (up to 20 us on a VM)."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked child must not repeat us

    def reseed(self) -> None:
        self._random = random.Random(os.urandom(32))

    def new(self) -> str:
        value = (self._random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) \
            & ~(0xC << 60) | (0x8 << 60)
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ids = _Ids()


def new_id() -> str:
    return _ids.new()


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps_line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=_json_default)


class TranscriptWriter:
    """Appends to one session's transcript. Use ``open_writer`` to make one.

    Call ``append`` from one thread (the event loop's); the state it keeps (leaf, turns, the
    index entry) is not locked.
    """

    def __init__(self, path: Path, session_id: str, fd: int | None, *, state: WriterState,
                 start_offset: int = 0, redactor: Redactor | None = None,
                 on_error: ErrorCallback | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, open_error: str | None = None):
        self.path = path
        self.meta_path = meta_path_for(path)
        self.session_id = session_id
        self.error: str | None = None
        self._fd = fd
        self._leaf = state.leaf
        self._meta = state.meta
        self._turns = list(state.turns)
        self._cost = copy.deepcopy(state.cost)  # running total, stamped on turn ends
        self._redactor = redactor or Redactor()
        self._on_error = on_error
        self._loop = loop
        # Bytes in the file once every line appended so far is written (the loop's count).
        self._offset = start_offset
        self._disabled = fd is None
        self._closed = False
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Lines handed to the thread, and lines it is done with: equal, it has none queued and
        # ``append`` may write the next line itself. Each count has one writer (loop, thread).
        self._lines_queued = 0
        self._lines_done = 0
        # Held around every use of the descriptor by the loop, and by the thread when it closes
        # it: the loop never writes to a number the thread closed (and the kernel reused).
        self._fd_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if fd is None:
            self._report(open_error or "the transcript could not be opened")
        else:
            self._thread = threading.Thread(target=self._run, name=f"transcript-{session_id}",
                                            daemon=True)
            self._thread.start()
            _OPEN_WRITERS.add(self)

    # -- the loop side ---------------------------------------------------------------------

    @property
    def persisting(self) -> bool:
        return not self._disabled

    @property
    def leaf(self) -> str | None:
        return self._leaf

    @property
    def turns(self) -> int:
        return len(self._turns)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def append(self, entry: dict[str, Any]) -> str:
        """Stamp, serialise and queue ``entry`` (the dict becomes the writer's); its uuid."""
        return self._append(entry, chained=True)

    def append_header(self, entry: dict[str, Any]) -> str:
        """The ``session`` line: stamped like any entry but outside the parentUuid chain."""
        return self._append(entry, chained=False)

    def _append(self, entry: dict[str, Any], *, chained: bool) -> str:
        if self._closed:
            raise WriterClosed(f"transcript writer of {self.session_id} is closed")
        uid = new_id()
        kind = entry.get("type", "")
        parent = self._leaf if chained else None
        stamp = now_iso()
        stamped = {"uuid": uid, "parentUuid": parent, "sessionId": self.session_id,
                   "timestamp": stamp, **entry}
        if len(stamped) != len(entry) + 4:  # the entry brought common fields: ours win
            stamped.update(uuid=uid, parentUuid=parent, sessionId=self.session_id,
                           timestamp=stamp)
        if chained:
            self._leaf = uid
        if kind == "user" and entry.get("origin", "user") == "user":
            self._turns.append(TurnPoint(uid, stamped["parentUuid"]))
        elif kind == "usage":
            en.add_cost(self._cost, entry)
        elif kind == "turn_end":
            stamped["sessionCost"] = copy.deepcopy(self._cost)
        en.fold_meta(self._meta, stamped)
        if self._disabled:
            return uid
        self._write_or_queue(self._redactor.line_bytes(dumps_line(stamped)) + b"\n",
                             kind in SYNC_AFTER)
        if kind in META_AFTER:
            self._queue.put((_META, dict(self._meta), self._offset))
        return uid

    def _write_or_queue(self, data: bytes, sync: bool) -> None:
        """Write ``data`` now when it is short and the thread has no line queued before it;
        else queue it for the thread. A sync-ending entry's fsync is the thread's either way."""
        self._offset += len(data)
        if len(data) <= DIRECT_MAX and self._lines_queued == self._lines_done \
                and self._write_now(data):
            if sync:
                self._queue.put((_FSYNC,))
            return
        self._lines_queued += 1
        self._queue.put((_LINE, data, sync))

    def _write_now(self, data: bytes) -> bool:
        """Write on the caller's thread; False when the descriptor is busy (the thread is
        closing it): the line is queued instead. An error turns persistence off."""
        if not self._fd_lock.acquire(blocking=False):
            return False
        try:
            if self._fd is not None and not self._disabled:
                try:
                    write_all(self._fd, data)
                except OSError as exc:
                    self._disable(f"writing failed ({exc.strerror or exc})", locked=True)
            return True
        finally:
            self._fd_lock.release()

    def rewind(self, to_turn: int) -> str:
        """Start a new branch just before turn ``to_turn`` (1-based): the next entries follow
        the entry that preceded that turn's prompt. Nothing is deleted."""
        if not 1 <= to_turn <= len(self._turns):
            raise ValueError(f"no turn {to_turn}: this session has {len(self._turns)} turns")
        point = self._turns[to_turn - 1]
        from_leaf = self._leaf
        self._leaf = point.parent
        del self._turns[to_turn - 1:]
        return self.append(en.rewind(to_turn, from_leaf))

    def turn_uuid(self, turn: int) -> str:
        return self._turns[turn - 1].uuid

    def set_title(self, title: str) -> str:
        return self.append(en.title(title))

    async def flush(self) -> bool:
        """Wait until every line queued so far is written; False when persistence is off."""
        return await self._await_marker(_FLUSH)

    async def sync(self) -> bool:
        """Like ``flush``, then fsync the transcript."""
        return await self._await_marker(_SYNC)

    async def close(self) -> None:
        if self._closed:
            return
        done = self._request_close()
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(done), CLOSE_TIMEOUT)

    def close_blocking(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close from synchronous code (shutdown paths, tests, benchmarks)."""
        done = self._request_close()
        if done is not None:
            with contextlib.suppress(concurrent.futures.TimeoutError):
                done.result(timeout)

    def flush_blocking(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        if self._closed or self._thread is None:
            return not self._disabled
        marker: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._queue.put((_FLUSH, marker))
        return marker.result(timeout)

    def _request_close(self) -> concurrent.futures.Future[bool] | None:
        if self._closed:
            return None
        self._closed = True
        _OPEN_WRITERS.discard(self)
        if self._thread is None:
            return None
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._queue.put((_CLOSE, done))
        return done

    async def _await_marker(self, op: int) -> bool:
        if self._closed or self._thread is None:
            return not self._disabled
        marker: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._queue.put((op, marker))
        return await asyncio.wrap_future(marker)

    def _report(self, reason: str) -> None:
        """Tell the caller once, on its loop when it has one."""
        self.error = reason
        log.warning("%s", reason)
        callback = self._on_error
        if callback is None:
            return
        self._on_error = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, reason)
                return
        callback(reason)

    # -- the thread side -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            op = item[0]
            try:
                if op == _LINE:
                    try:
                        self._write_line(item[1], item[2])
                    finally:
                        self._lines_done += 1
                elif op == _META:
                    self._write_meta(item[1], item[2])
                elif op == _FSYNC:
                    if not self._disabled:
                        self._guard("fsync", os.fsync)
                elif op in (_FLUSH, _SYNC):
                    if op == _SYNC and not self._disabled:
                        self._guard("fsync", os.fsync)
                    item[1].set_result(not self._disabled)
                elif op == _CLOSE:
                    self._finish(item[1])
                    return
            except Exception as exc:  # a bug, not the disk: stop writing, say so once
                log.exception("transcript writer failed")
                self._disable(f"the transcript writer failed ({exc!r})")

    def _write_line(self, data: bytes, sync: bool) -> None:
        if self._disabled:
            return
        if self._guard("writing", write_all, data) and sync:
            self._guard("fsync", os.fsync)

    def _write_meta(self, meta: dict[str, Any], offset: int) -> None:
        if self._disabled:
            return
        meta["transcriptBytes"] = offset
        meta["gitBranch"] = git_branch(Path(meta.get("cwd") or "."))
        data = self._redactor.line_bytes(json.dumps(meta, ensure_ascii=False))
        try:
            atomic_write(self.meta_path, data)
        except OSError as exc:
            self._disable(f"writing the session index failed ({exc.strerror or exc})")

    def _guard(self, what: str, call: Callable[..., Any], *args: Any) -> bool:
        assert self._fd is not None
        try:
            call(self._fd, *args)
            return True
        except OSError as exc:
            self._disable(f"{what} failed ({exc.strerror or exc})")
            return False

    def _disable(self, why: str, *, locked: bool = False) -> None:
        if self._disabled:
            return
        self._disabled = True
        self._close_fd(locked=locked)
        self._report(f"Session history is no longer saved: {why}; transcript {self.path}. "
                     "The session goes on without it.")

    def _finish(self, done: concurrent.futures.Future[bool]) -> None:
        if not self._disabled:
            self._write_meta(dict(self._meta), self._offset)
            if not self._disabled:
                self._guard("fsync", os.fsync)
        self._close_fd()
        done.set_result(not self._disabled)
        # Markers queued behind the close (a flush racing it) must not wait forever.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] in (_FLUSH, _SYNC, _CLOSE):
                item[1].set_result(not self._disabled)

    def _close_fd(self, *, locked: bool = False) -> None:
        if not locked:  # the loop may be writing a line: wait for it
            with self._fd_lock:
                self._close_fd(locked=True)
            return
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing also drops the flock
            self._fd = None


_OPEN_WRITERS: weakref.WeakSet[TranscriptWriter] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:
    """Drain every writer still open when the interpreter exits normally."""
    for writer in list(_OPEN_WRITERS):
        with contextlib.suppress(Exception):
            writer.close_blocking(timeout=5.0)


# -- opening -----------------------------------------------------------------------------------


def repair_torn_tail(fd: int) -> int:
    """Make the file end with a newline before appending: a last line torn by a crash is cut
    off (it cannot be completed), a whole last line missing only its newline gets one.
    Returns the file size after the repair."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    if os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    chunk = 1 << 16
    start = size
    while start > 0:
        start = max(0, start - chunk)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            start += cut + 1
            break
    tail = os.pread(fd, size - start, start)
    try:
        complete = isinstance(json.loads(tail), dict)
    except ValueError:
        complete = False
    if complete:
        write_all(fd, b"\n")
        log.warning("transcript: added the missing newline after its last line")
        return size + 1
    os.ftruncate(fd, start)
    log.warning("transcript: cut a torn last line of %d bytes", size - start)
    return start


def _open_locked(path: Path, *, create: bool) -> tuple[int, int]:
    ensure_private_dir(path.parent)
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SessionInUse(f"session {path.stem} is open in another process") from None
        size = repair_torn_tail(fd)
        if create:
            fsync_dir(path.parent)
        return fd, size
    except BaseException:
        os.close(fd)
        raise


def open_writer_blocking(path: Path, session_id: str, *, state: WriterState | None = None,
                         cwd: str | None = None, forked_from: dict[str, Any] | None = None,
                         redactor: Redactor | None = None, on_error: ErrorCallback | None = None,
                         loop: asyncio.AbstractEventLoop | None = None) -> TranscriptWriter:
    """Open (``state`` given: go on with) or create a transcript. Raises ``SessionInUse`` and
    ``FileExistsError``; any other OS error gives a writer with persistence off (reported once
    through ``on_error``)."""
    create = state is None
    if state is None:
        state = WriterState(leaf=None, meta=en.new_meta(session_id, cwd or "", now_iso()))
    try:
        fd, size = _open_locked(path, create=create)
    except (SessionInUse, FileExistsError):
        raise
    except OSError as exc:
        return TranscriptWriter(path, session_id, None, state=state, redactor=redactor,
                                on_error=on_error, loop=loop, open_error=(
                                    f"Session history is not saved: cannot open {path} "
                                    f"({exc.strerror or exc}). The session goes on without it."))
    writer = TranscriptWriter(path, session_id, fd, state=state, start_offset=size,
                              redactor=redactor, on_error=on_error, loop=loop)
    if create:
        writer.append_header(en.header(cwd or "", forked_from))
    return writer


async def open_writer(path: Path, session_id: str, **kwargs: Any) -> TranscriptWriter:
    """``open_writer_blocking`` off the event loop; errors are reported on this loop."""
    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(open_writer_blocking, path, session_id, loop=loop, **kwargs)
