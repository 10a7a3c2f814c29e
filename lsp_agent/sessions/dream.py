"""Dream: consolidating a project's auto memory from its recent sessions, in the background.

When it runs: every gate must pass, cheapest first --

1. time: at least ``min_hours`` since the last successful run (default 24);
2. sessions: at least ``min_sessions`` saved sessions changed since then (default 5);
3. the lock: no other process (another server on the same workspace) is dreaming there.

``force`` (``agent/dream {force: true}``) skips the first two, never the lock.

The lock is ``.dream.lock`` in the memory folder, held with ``flock`` (the kernel releases it
when the holder dies). Its mtime is the time of the last successful run. A run writes the
previous mtime into the file first; a run that fails or is cancelled puts it back, and a run
that was killed is found by the next holder (the file still says ``running``) and rolled back
the same way, so a failed run never counts as the last one.

The run is an agent (sessions/dream_agent.py): the same agent loop as a session's, with a
prompt that walks the four phases -- *orient* (read the index and topic files), *gather* (the
recent transcripts, narrowly), *consolidate* (merge duplicates, resolve contradictions,
absolute dates), *prune and re-index* -- declared by the agent with its ``DreamPhase`` tool and
reported as they come. Its tools read only the memory and the project's transcripts, its shell
runs read-only commands only, and nothing asks: what the rules do not allow is refused.

Its Memory writes go to a staging copy of the memory folder (sessions/dream_staging.py) that is
written into the memory through ``AutoMemory`` only when the agent's turn ended well: a run that
fails (the turn limit, the token budget, the time limit, a model error), is cancelled or killed
leaves the memory as it was, and its lock is rolled back. The result is a short report of what
changed: the agent's last words and the files written and deleted.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.context.auto_memory import AutoMemory
from lsp_agent.model.service import ModelService
from lsp_agent.sessions.dream_staging import Changes, Staging, StagingRefused
from lsp_agent.store.layout import SESSION_ID_RE, ensure_private_dir, session_id_of
from lsp_agent.types import events as ev

if TYPE_CHECKING:
    from lsp_agent.sessions.dream_agent import DreamLimits

log = logging.getLogger(__name__)

LOCK = ".dream.lock"
Report = Callable[[dict[str, Any]], None]
Events = Callable[[ev.AgentEvent], None]


@dataclass
class DreamPolicy:
    min_hours: float = 24.0
    min_sessions: int = 5
    max_turns: int = 30  # the agent's model requests
    max_tokens: int = 400_000  # every token of every request of the run
    max_seconds: float = 900.0

    def limits(self) -> DreamLimits:
        from lsp_agent.sessions.dream_agent import DreamLimits

        return DreamLimits(self.max_turns, self.max_tokens, self.max_seconds)


@dataclass
class DreamResult:
    status: str  # "done", "skipped", "failed", "cancelled"
    reason: str = ""
    report: str = ""
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sessions: int = 0
    turns: int = 0  # the agent's model requests
    usage: ev.Usage = field(default_factory=ev.Usage)

    def wire(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "report": self.report,
                "written": self.written, "deleted": self.deleted, "sessions": self.sessions,
                "turns": self.turns, "usage": self.usage.wire()}


class DreamBusy(Exception):
    """Another process holds the lock."""


class DreamLock:
    """``.dream.lock``: who dreams now (flock) and when the last run succeeded (mtime)."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self._fd: int | None = None
        self._previous = 0.0

    def last_run(self) -> float:
        """When the last successful run ended (0: never); a killed run does not count."""
        try:
            state = self._state(self.path.read_bytes())
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0
        if state.get("state") == "running":
            return float(state.get("previous") or 0.0)
        # "done" and "rolled-back" keep the last success in the mtime; a new, empty file
        # (or "never") has seen none.
        return mtime if state.get("state") in ("done", "rolled-back") else 0.0

    def acquire(self) -> None:
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DreamBusy("another process is consolidating this project's memory") from None
        self._fd = fd
        self._previous = self.last_run()  # a killed run's "running" reads as its previous
        self._write({"state": "running", "pid": os.getpid(), "previous": self._previous})

    def release(self, succeeded: bool) -> None:
        if self._fd is None:
            return
        try:
            self._write({"state": "done" if succeeded else
                         ("rolled-back" if self._previous else "never")})
            if not succeeded:  # the last run stays the last successful one
                os.utime(self.path, (self._previous, self._previous))
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _write(self, state: dict[str, Any]) -> None:
        assert self._fd is not None
        data = json.dumps(state).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    @staticmethod
    def _state(data: bytes) -> dict[str, Any]:
        try:
            value = json.loads(data or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class Dream:
    """One project's consolidation: gates, then the agent over a staging copy."""

    memory: AutoMemory
    transcripts: Path  # the project's folder of saved sessions
    service: ModelService
    policy: DreamPolicy = field(default_factory=DreamPolicy)
    report: Report = lambda _update: None  # the phases
    events: Events = lambda _event: None  # the agent's events
    secret_files: list[str] = field(default_factory=list)  # the project's settings' patterns
    phase: str = field(default="", init=False)  # the phase the agent declared last
    _usage: ev.Usage = field(default_factory=ev.Usage, init=False)
    _turns: int = field(default=0, init=False)
    _swapped: bool = field(default=False, init=False)

    def recent_sessions(self, since: float) -> list[Path]:
        try:
            found = [(p.stat().st_mtime, p) for p in self.transcripts.glob("*.jsonl")
                     if SESSION_ID_RE.match(session_id_of(p))]  # not the prompt history
        except OSError:
            return []
        return [p for mtime, p in sorted(found, reverse=True) if mtime > since]

    def gate(self, force: bool) -> tuple[str | None, list[Path], float]:
        """Why not to run now (None: run), the sessions to read, the last run's time."""
        last = DreamLock(self.memory.folder).last_run()
        if not force and time.time() - last < self.policy.min_hours * 3600:
            return f"the last run was less than {self.policy.min_hours:g} h ago", [], last
        sessions = self.recent_sessions(last)
        if not force and len(sessions) < self.policy.min_sessions:
            return (f"{len(sessions)} session(s) since the last run; it runs after "
                    f"{self.policy.min_sessions}"), sessions, last
        return None, sessions, last

    async def run(self, force: bool = False) -> DreamResult:
        why, sessions, _last = await asyncio.to_thread(self.gate, force)
        if why is not None:
            return DreamResult("skipped", why)
        lock = DreamLock(self.memory.folder)
        try:
            await asyncio.to_thread(lock.acquire)
        except DreamBusy as exc:
            return DreamResult("skipped", str(exc))
        except OSError as exc:  # a link in place of the lock, an unwritable folder
            return DreamResult("failed", f"the lock cannot be taken: {exc}")
        # Here, not at the top: the server imports this module before initialize, the agent
        # loop and its tools only when a Dream runs.
        from lsp_agent.sessions.dream_agent import DreamFailed

        self._swapped = False
        staging: Staging | None = None
        result = DreamResult("failed", "the run did not complete")
        try:
            staging = await asyncio.to_thread(Staging.create, self.memory)
            result = await self._phases(staging, sessions)
        except asyncio.CancelledError:
            raise
        except (DreamFailed, StagingRefused) as exc:  # the memory stays as it was
            result = self._ended("failed", str(exc)[:500], sessions)
        except Exception as exc:
            log.warning("Dream of %s failed: %s", self.memory.folder, exc)
            result = self._ended("failed", f"{type(exc).__name__}: {exc}"[:500], sessions)
        finally:
            await asyncio.shield(asyncio.to_thread(
                _finish, staging, lock, result.status == "done" or self._swapped))
        return result

    async def _phases(self, staging: Staging, sessions: list[Path]) -> DreamResult:
        from lsp_agent.sessions.dream_agent import DreamAgent

        agent = DreamAgent(self.service, staging, self.transcripts, self.policy.limits(),
                           lambda phase: self._declared(phase, len(sessions)),
                           self.memory.redact, self.secret_files)
        run = await agent.run(sessions, len(sessions), self._on_event)
        changes = await asyncio.to_thread(staging.changes)
        written, deleted = await self._swap(staging, changes)
        result = self._ended("done", "", sessions)
        result.report, result.written, result.deleted = run.report, written, deleted
        return result

    async def _swap(self, staging: Staging, changes: Changes) -> tuple[list[str], list[str]]:
        """The staging copy into the memory. Short, and never cut half-way: a cancel that
        arrives meanwhile waits for it (the run then counts as done)."""
        applying = asyncio.ensure_future(asyncio.to_thread(staging.apply, self.memory, changes))
        try:
            return await asyncio.shield(applying)
        except asyncio.CancelledError:
            await applying
            self._swapped = True
            raise

    def _declared(self, phase: str, sessions: int) -> None:
        self.phase = phase
        self.report({"phase": phase, **({"sessions": sessions} if phase == "gather" else {})})

    def _on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.UsageReport):
            self._usage = self._usage + event.usage
            self._turns += 1
        try:
            self.events(event)
        except Exception:  # a broken consumer must not break the run
            log.exception("Dream: the event consumer failed")

    def _ended(self, status: str, reason: str, sessions: list[Path]) -> DreamResult:
        return DreamResult(status, reason, sessions=len(sessions), turns=self._turns,
                           usage=self._usage)


def _finish(staging: Staging | None, lock: DreamLock, succeeded: bool) -> None:
    try:
        if staging is not None:
            staging.close()
    finally:
        lock.release(succeeded)
