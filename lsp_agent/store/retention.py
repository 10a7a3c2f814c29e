"""Retention: whole old sessions go, with the blobs only they referenced.

Policy (defaults 30 days, 500 MB): first every session not updated for ``max_age_days`` is
deleted; then, while the store (transcripts, their folders and the blobs still referenced) is
over ``max_total_bytes``, the least recently updated session is deleted. Sessions open in a
process (their transcript is locked) and those the caller names are never deleted. Blobs are
removed afterwards by the garbage collection, which keeps any blob a remaining session uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lsp_agent.store.blobs import BlobStore, GcReport
from lsp_agent.store.layout import (
    SESSION_ID_RE,
    TRANSCRIPT_SUFFIX,
    StateLayout,
    meta_path_for,
    read_json,
    session_id_of,
)

DAY = 86_400.0
BACKUP_MARKER = b'"type":"file_backup"'
AFTER_MARKER = b'"type":"file_after"'


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_days: float = 30.0
    max_total_bytes: int = 500 * 1024 * 1024


@dataclass(frozen=True)
class StoredSession:
    transcript: Path
    session_id: str
    updated: float  # epoch seconds
    bytes: int  # transcript, index entry and the session's folder
    blobs: frozenset[str]
    live: bool  # open for writing in some process


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)  # transcript paths
    skipped_live: int = 0
    gc: GcReport | None = None
    total_bytes_before: int = 0
    total_bytes_after: int = 0


def plan_retention(sessions: Iterable[StoredSession], blob_sizes: dict[str, int],
                   policy: RetentionPolicy, now: float,
                   keep: frozenset[Path] = frozenset()) -> list[StoredSession]:
    """The sessions to delete (pure). A session's size counts its own files and every blob it
    references; a blob shared by several sessions is freed with the last of them."""
    def deletable(s: StoredSession) -> bool:
        return not s.live and s.transcript not in keep

    doomed: list[StoredSession] = []
    remaining: list[StoredSession] = []
    for s in sessions:
        too_old = now - s.updated > policy.max_age_days * DAY
        (doomed if too_old and deletable(s) else remaining).append(s)
    refs = Counter(b for s in remaining for b in s.blobs if b in blob_sizes)
    total = sum(s.bytes for s in remaining) + sum(blob_sizes[b] for b in refs)
    for s in sorted(remaining, key=lambda s: (s.updated, str(s.transcript))):
        if total <= policy.max_total_bytes:
            break
        if not deletable(s):
            continue
        doomed.append(s)
        total -= s.bytes
        for b in s.blobs:
            if b in refs:
                refs[b] -= 1
                if refs[b] == 0:
                    total -= blob_sizes[b]
    return doomed


def stored_size(blob_sizes: dict[str, int], sessions: Iterable[StoredSession]) -> int:
    kept = list(sessions)
    used = {b for s in kept for b in s.blobs if b in blob_sizes}
    return sum(s.bytes for s in kept) + sum(blob_sizes[b] for b in used)


# -- reading the disk ----------------------------------------------------------------------


def transcripts(layout: StateLayout) -> list[Path]:
    if not layout.projects.is_dir():
        return []
    found = []
    for project in layout.projects.iterdir():
        if not project.is_dir():
            continue
        found += [p for p in project.glob(f"*{TRANSCRIPT_SUFFIX}")
                  if SESSION_ID_RE.match(session_id_of(p))]
    return found


def referenced_blobs(transcript: Path) -> frozenset[str]:
    """Blob hashes named by the transcript's file_backup and file_after lines (other lines
    are not parsed)."""
    found: set[str] = set()
    try:
        with open(transcript, "rb") as f:
            for line in f:
                if BACKUP_MARKER not in line and AFTER_MARKER not in line:
                    continue
                with contextlib.suppress(ValueError):
                    blob = json.loads(line).get("blob")
                    if isinstance(blob, str):
                        found.add(blob)
    except OSError:
        pass
    return frozenset(found)


def is_live(transcript: Path) -> bool:
    """True when a writer holds the transcript's lock."""
    try:
        fd = os.open(transcript, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _updated(transcript: Path, mtime: float) -> float:
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        stamp = read_json(meta_path_for(transcript)).get("updatedAt")
        return datetime.fromisoformat(stamp).timestamp()
    return mtime


def _tree_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def scan_session(transcript: Path) -> StoredSession | None:
    try:
        st = transcript.stat()
    except OSError:
        return None
    meta = meta_path_for(transcript)
    size = st.st_size + (meta.stat().st_size if meta.exists() else 0)
    folder = transcript.with_suffix("")
    if folder.is_dir():
        size += _tree_bytes(folder)
    return StoredSession(transcript, session_id_of(transcript), _updated(transcript, st.st_mtime),
                         size, referenced_blobs(transcript), is_live(transcript))


def scan_sessions(layout: StateLayout) -> list[StoredSession]:
    return [s for p in transcripts(layout) if (s := scan_session(p)) is not None]


def blob_sizes(blobs: BlobStore) -> dict[str, int]:
    sizes = {}
    for name, path in blobs.iter_blobs():
        with contextlib.suppress(OSError):
            sizes[name] = path.stat().st_size
    return sizes


def delete_session_files(transcript: Path) -> bool:
    """Delete a session's transcript, index entry and folder, unless a writer has it open."""
    try:
        fd = os.open(transcript, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        transcript.unlink(missing_ok=True)
        meta_path_for(transcript).unlink(missing_ok=True)
        folder = transcript.with_suffix("")
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(fd)

