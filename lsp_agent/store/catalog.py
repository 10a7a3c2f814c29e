"""The sessions of a state dir: create, resume, list, fork, rename, delete, prompt history,
retention and garbage collection.

Every method that touches the disk is async and runs its I/O on a worker thread; the
``*_blocking`` twins are for synchronous callers (CLI, tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.store import entries as en
from lsp_agent.store import retention as rt
from lsp_agent.store.blobs import GC_GRACE_SECONDS, BlobStore, GcReport, collect_garbage
from lsp_agent.store.layout import (
    SESSION_ID_RE,
    StateLayout,
    atomic_write,
    atomic_write_json,
    check_session_id,
    ensure_private_dir,
    meta_path_for,
    open_private_append,
    read_json,
    session_id_of,
    write_all,
)
from lsp_agent.store.reader import (
    TranscriptReader,
    TranscriptVersionError,
    load_transcript,
)
from lsp_agent.store.redact import Redactor
from lsp_agent.store.writer import (
    ErrorCallback,
    SessionInUse,
    TranscriptWriter,
    dumps_line,
    now_iso,
    open_writer,
    open_writer_blocking,
)

log = logging.getLogger(__name__)

PROMPT_MAX_CHARS = 10_000
PROMPT_HISTORY_COMPACT_BYTES = 1 << 20  # rewrite the history deduplicated past this size
PROMPT_HISTORY_KEEP = 1_000
FORK_DROPS = frozenset({"usage", "rewind"})  # a fork's cost starts at zero; its chain is linear


class SessionNotFound(LookupError):
    pass


# Old sessions are looked for at a server's start at most this often (store-wide).
RETENTION_INTERVAL_S = 12 * 3600.0


@dataclass
class SessionSummary:
    session_id: str
    title: str
    created_at: str
    updated_at: str
    turns: int
    model: str | None
    cost_usd: float
    git_branch: str | None
    live: bool = False
    forked_from: dict[str, Any] | None = None
    error: str | None = None  # the transcript cannot be read (e.g. a newer format)


@dataclass
class SessionPage:
    items: list[SessionSummary]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


@dataclass
class Store:
    """Shared by every session of a server. ``redactor`` masks secrets in all that is written."""

    state_dir: Path
    redactor: Redactor = field(default_factory=Redactor.from_environment)
    policy: rt.RetentionPolicy = field(default_factory=rt.RetentionPolicy)

    def __post_init__(self) -> None:
        self.layout = StateLayout(Path(self.state_dir))
        self.blobs = BlobStore(self.layout.blobs)
        self._last_loaded: tuple[tuple[str, int, int], TranscriptReader] | None = None

    # -- writers -------------------------------------------------------------------------------

    async def create(self, workspace: Path, *, session_id: str | None = None,
                     on_error: ErrorCallback | None = None) -> TranscriptWriter:
        """A new session's writer (its header line queued)."""
        session_id = check_session_id(session_id or str(uuid.uuid4()))
        path = self.layout.transcript(workspace, session_id)
        await asyncio.to_thread(self._remember_workspace, workspace)
        return await open_writer(path, session_id, cwd=str(workspace), redactor=self.redactor,
                                 on_error=on_error)

    async def resume(self, workspace: Path, session_id: str, *,
                     on_error: ErrorCallback | None = None,
                     ) -> tuple[TranscriptReader, TranscriptWriter]:
        """The session as saved and a writer that goes on with it. Raises ``SessionNotFound``,
        ``TranscriptVersionError`` and ``SessionInUse``."""
        reader = await self.load(workspace, session_id)
        state = await asyncio.to_thread(reader.writer_state)  # reads the whole chain
        writer = await open_writer(reader.path, session_id, state=state,
                                   redactor=self.redactor, on_error=on_error)
        return reader, writer

    async def load(self, workspace: Path, session_id: str) -> TranscriptReader:
        return await asyncio.to_thread(self.load_blocking, workspace, session_id)

    def load_blocking(self, workspace: Path, session_id: str) -> TranscriptReader:
        path = self.layout.transcript(workspace, session_id)
        try:
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns)
            cached = self._last_loaded
            if cached is not None and cached[0] == key:
                # A resume then its first history page, a rewind then its checkpoints: the
                # same file, unchanged; a reader never changes once loaded.
                return cached[1]
            reader = load_transcript(path)
        except FileNotFoundError:
            raise SessionNotFound(f"no session {session_id} for {workspace}") from None
        self._last_loaded = (key, reader)
        return reader

    async def latest(self, workspace: Path) -> str | None:
        """The most recently updated session of the workspace (``--continue``)."""
        page = await self.list_sessions(workspace, limit=1)
        return page.items[0].session_id if page.items else None

    def _remember_workspace(self, workspace: Path) -> None:
        """Best effort: when the state dir is unusable the writer reports it, once."""
        with contextlib.suppress(OSError):
            marker = ensure_private_dir(self.layout.project(workspace)) / "workspace.json"
            if not marker.exists():
                atomic_write_json(marker, {"path": os.path.realpath(workspace)})

    # -- listing -------------------------------------------------------------------------------

    async def list_sessions(self, workspace: Path, *, offset: int = 0,
                            limit: int = 50) -> SessionPage:
        return await asyncio.to_thread(self.list_sessions_blocking, workspace, offset, limit)

    def list_sessions_blocking(self, workspace: Path, offset: int = 0,
                               limit: int = 50) -> SessionPage:
        if offset < 0 or limit < 1:
            raise ValueError("offset must be >= 0 and limit >= 1")
        folder = self.layout.project(workspace)
        paths = [p for p in folder.glob("*.jsonl") if SESSION_ID_RE.match(session_id_of(p))]
        summaries = [s for p in paths if (s := self._summary(p)) is not None]
        summaries.sort(key=lambda s: (s.updated_at, s.session_id), reverse=True)
        return SessionPage(summaries[offset: offset + limit], len(summaries), offset, limit)

    def _summary(self, transcript: Path) -> SessionSummary | None:
        meta = self._meta(transcript)
        if meta is None:
            return None
        return SessionSummary(
            session_id=session_id_of(transcript), title=en.display_title(meta),
            created_at=meta.get("createdAt") or "", updated_at=meta.get("updatedAt") or "",
            turns=int(meta.get("turns") or 0), model=meta.get("model"),
            cost_usd=float(meta.get("costUsd") or 0.0), git_branch=meta.get("gitBranch"),
            live=rt.is_live(transcript), forked_from=meta.get("forkedFrom"),
            error=meta.get("error"))

    def _meta(self, transcript: Path) -> dict[str, Any] | None:
        """The index entry; rebuilt from the transcript when missing or stale (a crash between
        a line and the index update), and rewritten when no writer holds the session."""
        try:
            size = transcript.stat().st_size
        except FileNotFoundError:
            return None
        meta_path = meta_path_for(transcript)
        old: dict[str, Any] | None = None
        with contextlib.suppress(OSError, ValueError):
            old = read_json(meta_path)
        if isinstance(old, dict) and old.get("transcriptBytes") == size:
            return old
        try:
            reader = load_transcript(transcript)
        except TranscriptVersionError as exc:
            return {**en.new_meta(session_id_of(transcript), "", ""), "error": str(exc),
                    "firstPrompt": "(written by a newer lsp-agent)"}
        except OSError:
            return old if isinstance(old, dict) else None
        meta = reader.meta()
        meta["transcriptBytes"] = size
        meta["gitBranch"] = old.get("gitBranch") if isinstance(old, dict) else None
        if not rt.is_live(transcript):
            with contextlib.suppress(OSError):
                atomic_write(meta_path, self.redactor.line_bytes(dumps_line(meta)))
        return meta

    # -- rename, delete, fork --------------------------------------------------------------------

    async def rename(self, workspace: Path, session_id: str, title: str) -> None:
        """Set a closed session's title (an open one: ``TranscriptWriter.set_title``)."""
        await asyncio.to_thread(self._rename, workspace, session_id, title)

    def _rename(self, workspace: Path, session_id: str, title: str) -> None:
        reader = self.load_blocking(workspace, session_id)
        writer = open_writer_blocking(reader.path, session_id, state=reader.writer_state(),
                                      redactor=self.redactor)
        try:
            writer.set_title(" ".join(title.split())[:200])
        finally:
            writer.close_blocking()
        if writer.error:
            raise OSError(writer.error)

    async def delete(self, workspace: Path, session_id: str) -> None:
        """Delete a session's files (its blobs go with the next garbage collection)."""
        path = self.layout.transcript(workspace, session_id)
        if not await asyncio.to_thread(rt.delete_session_files, path):
            raise SessionInUse(f"session {session_id} is open; close it before deleting it")

    async def fork(self, workspace: Path, session_id: str, before_turn: int,
                   new_id: str | None = None) -> str:
        """A new session holding the current branch before turn ``before_turn`` (1-based;
        ``turns + 1`` copies the whole branch). Returns the new session's id."""
        return await asyncio.to_thread(self.fork_blocking, workspace, session_id, before_turn,
                                       new_id)

    def fork_blocking(self, workspace: Path, session_id: str, before_turn: int,
                      new_id: str | None = None) -> str:
        reader = self.load_blocking(workspace, session_id)
        turns = reader.turns()
        if not 1 <= before_turn <= len(turns) + 1:
            raise ValueError(f"cannot fork before turn {before_turn}: the session has "
                             f"{len(turns)} turns")
        chain = reader.chain
        cut = len(chain)
        if before_turn <= len(turns):
            start = turns[before_turn - 1].uuid
            cut = next(i for i, e in enumerate(chain) if e["uuid"] == start)
        new_id = check_session_id(new_id or str(uuid.uuid4()))
        stamp = now_iso()
        head = {"uuid": str(uuid.uuid4()), "parentUuid": None, "sessionId": new_id,
                "timestamp": stamp, **en.header(
                    reader.header.get("cwd", str(workspace)) if reader.header else str(workspace),
                    {"sessionId": session_id, "beforeTurn": before_turn})}
        copied = [head]
        parent: str | None = None
        for entry in chain[:cut]:
            if entry.get("type") in FORK_DROPS:
                continue
            copy = {**entry, "sessionId": new_id, "parentUuid": parent}
            copy.pop("sessionCost", None)  # the original's running total, not the fork's
            copied.append(copy)
            parent = entry["uuid"]
        meta = en.new_meta(new_id, head["cwd"], stamp)
        for entry in copied:
            en.fold_meta(meta, entry)
        meta["updatedAt"] = stamp
        data = b"".join(self.redactor.line_bytes(dumps_line(e)) + b"\n" for e in copied)
        meta["transcriptBytes"] = len(data)
        path = self.layout.transcript(workspace, new_id)
        if path.exists():
            raise FileExistsError(f"session {new_id} exists already")
        atomic_write(path, data, fsync=True)
        atomic_write(meta_path_for(path), self.redactor.line_bytes(dumps_line(meta)))
        return new_id

    # -- prompt history --------------------------------------------------------------------------

    async def add_prompt(self, workspace: Path, prompt: str, session_id: str) -> bool:
        return await asyncio.to_thread(self.add_prompt_blocking, workspace, prompt, session_id)

    def add_prompt_blocking(self, workspace: Path, prompt: str, session_id: str) -> bool:
        """Remember a prompt; False when it could not be saved (the caller goes on: the
        transcript writer reports an unusable state dir once)."""
        if not prompt.strip():
            return True
        try:
            self._append_prompt(workspace, prompt, session_id)
        except OSError as exc:
            log.warning("prompt history not saved: %s", exc)
            return False
        return True

    def _append_prompt(self, workspace: Path, prompt: str, session_id: str) -> None:
        """One line, one ``write`` on an ``O_APPEND`` descriptor: lines of concurrent servers
        never interleave. The shared lock only keeps a compaction from replacing the file
        under us (we check that the file we hold is still the file at the path)."""
        line = dumps_line({"prompt": prompt[:PROMPT_MAX_CHARS], "timestamp": now_iso(),
                           "sessionId": session_id})
        data = self.redactor.line_bytes(line) + b"\n"
        path = self.layout.prompts(workspace)
        ensure_private_dir(path.parent)
        for _ in range(5):
            fd = open_private_append(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if os.fstat(fd).st_ino != _inode(path):
                    continue  # compacted meanwhile: append to the new file
                write_all(fd, data)
                size = os.fstat(fd).st_size
                break
            finally:
                os.close(fd)
        else:
            return
        if size > PROMPT_HISTORY_COMPACT_BYTES:
            self._compact_prompts(path)

    async def prompt_history(self, workspace: Path, limit: int = 100) -> list[str]:
        return await asyncio.to_thread(self.prompt_history_blocking, workspace, limit)

    def prompt_history_blocking(self, workspace: Path, limit: int = 100) -> list[str]:
        """Prompts of every session of the workspace, newest first, each once."""
        return [r["prompt"] for r in self._prompt_records(self.layout.prompts(workspace))][:limit]

    def _prompt_records(self, path: Path) -> list[dict[str, Any]]:
        try:
            data = path.read_bytes()
        except OSError:  # none yet, or an unusable state dir
            return []
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for raw in reversed(data.split(b"\n")):
            try:
                record = json.loads(raw) if raw else None
            except ValueError:
                continue  # a torn line
            if not isinstance(record, dict):
                continue
            text = record.get("prompt")
            if isinstance(text, str) and text not in seen:
                seen.add(text)
                out.append(record)
        return out

    def _compact_prompts(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != _inode(path):
                return
            # At most half the threshold is kept, so compactions stay rare (amortised O(1)).
            kept: list[bytes] = []
            budget = PROMPT_HISTORY_COMPACT_BYTES // 2
            for record in self._prompt_records(path)[:PROMPT_HISTORY_KEEP]:
                line = dumps_line(record).encode("utf-8", "surrogateescape") + b"\n"
                budget -= len(line)
                if budget < 0:
                    break
                kept.append(line)
            atomic_write(path, b"".join(reversed(kept)))
        finally:
            os.close(fd)

    # -- retention and garbage collection --------------------------------------------------------

    async def apply_retention(self, *, keep: frozenset[Path] = frozenset(),
                              now: float | None = None) -> rt.RetentionReport:
        return await asyncio.to_thread(self.apply_retention_blocking, keep=keep, now=now)

    async def apply_retention_if_due(self, *, keep: frozenset[Path] = frozenset(),
                                     now: float | None = None) -> rt.RetentionReport | None:
        """As ``apply_retention``, unless it ran under the same policy less than
        ``RETENTION_INTERVAL_S`` ago (in any process): applying it reads every transcript, which
        every editor window's server start would otherwise pay. None when not due."""
        now = time.time() if now is None else now
        if not self._retention_due(now):
            return None
        report = await self.apply_retention(keep=keep, now=now)
        with contextlib.suppress(OSError):
            self._retention_marker().write_text(json.dumps(
                {"at": now, "policy": self._policy_key()}))
        return report

    def _retention_marker(self) -> Path:
        return self.layout.root / "retention.json"

    def _policy_key(self) -> list[float]:
        return [self.policy.max_age_days, self.policy.max_total_bytes]

    def _retention_due(self, now: float) -> bool:
        try:
            last = json.loads(self._retention_marker().read_text())
            at, policy = float(last["at"]), last["policy"]
        except (OSError, ValueError, KeyError, TypeError):
            return True
        # A shorter age limit is due sooner: at most a quarter of it between two runs.
        interval = min(RETENTION_INTERVAL_S, self.policy.max_age_days * 86400 / 4)
        return policy != self._policy_key() or not 0 <= now - at < interval

    def apply_retention_blocking(self, *, keep: frozenset[Path] = frozenset(),
                                 now: float | None = None) -> rt.RetentionReport:
        now = time.time() if now is None else now
        sessions = rt.scan_sessions(self.layout)
        sizes = rt.blob_sizes(self.blobs)
        report = rt.RetentionReport(total_bytes_before=rt.stored_size(sizes, sessions))
        doomed = rt.plan_retention(sessions, sizes, self.policy, now, keep)
        gone = set()
        for session in doomed:
            if rt.delete_session_files(session.transcript):
                report.deleted.append(str(session.transcript))
                gone.add(session.transcript)
            else:
                report.skipped_live += 1
        remaining = [s for s in sessions if s.transcript not in gone]
        report.gc = self._collect(remaining, now=now)
        report.total_bytes_after = rt.stored_size(rt.blob_sizes(self.blobs), remaining)
        return report

    async def collect_garbage(self, grace_seconds: float = GC_GRACE_SECONDS) -> GcReport:
        return await asyncio.to_thread(
            lambda: self._collect(rt.scan_sessions(self.layout), grace_seconds=grace_seconds))

    def _collect(self, sessions: list[rt.StoredSession], *, now: float | None = None,
                 grace_seconds: float = GC_GRACE_SECONDS) -> GcReport:
        referenced = {b for s in sessions for b in s.blobs}
        return collect_garbage(self.blobs, referenced, grace_seconds=grace_seconds, now=now)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
