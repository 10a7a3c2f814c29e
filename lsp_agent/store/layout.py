"""Where the store keeps things under the state dir, and the small file-system helpers it uses.

    <state>/projects/<workspace slug>/<sessionId>.jsonl       the transcript (append-only)
    <state>/projects/<workspace slug>/<sessionId>.meta.json   its index entry (atomic rewrite)
    <state>/projects/<workspace slug>/prompts.history.jsonl   prompt history (O_APPEND lines)
    <state>/projects/<workspace slug>/workspace.json          which folder the slug stands for
    <state>/blobs/<2 hex>/<62 hex>                             checkpoint contents, by sha256

Everything is created user-only: folders 0700, files 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
FILE_MODE = 0o600
SLUG_MAX = 80  # readable part of a slug; the hash suffix keeps long paths apart
TRANSCRIPT_SUFFIX = ".jsonl"
META_SUFFIX = ".meta.json"
PROMPTS_FILE = "prompts.history.jsonl"  # dots: never taken for a session id
WORKSPACE_FILE = "workspace.json"
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class InvalidSessionId(ValueError):
    pass


def workspace_slug(workspace: Path) -> str:
    """Claude Code's rule (``/ . \\ :`` become ``-``) plus a short hash of the real path.

    The hash is where we differ: with the bare rule ``/a/b.c`` and ``/a/b-c`` share a folder,
    and a deep path can exceed the 255-byte limit of a file name.
    """
    real = os.path.realpath(workspace)
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", real)[-SLUG_MAX:]
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{readable}-{digest}"


def check_session_id(session_id: str) -> str:
    """Session ids become file names: letters, digits, ``_`` and ``-`` only."""
    if not SESSION_ID_RE.match(session_id):
        raise InvalidSessionId(f"invalid session id {session_id!r}")
    return session_id


class StateLayout:
    """Paths under one state dir. Pure: nothing here touches the disk."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def project(self, workspace: Path) -> Path:
        return self.projects / workspace_slug(workspace)

    def transcript(self, workspace: Path, session_id: str) -> Path:
        return self.project(workspace) / f"{check_session_id(session_id)}{TRANSCRIPT_SUFFIX}"

    def meta(self, workspace: Path, session_id: str) -> Path:
        return self.project(workspace) / f"{check_session_id(session_id)}{META_SUFFIX}"

    def session_dir(self, workspace: Path, session_id: str) -> Path:
        """Per-session files other than the transcript (saved tool outputs)."""
        return self.project(workspace) / check_session_id(session_id)

    def prompts(self, workspace: Path) -> Path:
        return self.project(workspace) / PROMPTS_FILE


def meta_path_for(transcript: Path) -> Path:
    return transcript.with_name(transcript.name[: -len(TRANSCRIPT_SUFFIX)] + META_SUFFIX)


def session_id_of(transcript: Path) -> str:
    return transcript.name[: -len(TRANSCRIPT_SUFFIX)]


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700; tighten an existing ``path`` we own.
    (``mkdir(parents=True)`` would create the parents with the umask's mode.)"""
    missing = []
    folder = path
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, DIR_MODE)
    return path


def open_private_append(path: Path) -> int:
    """An O_APPEND descriptor on ``path``, created 0600 if missing."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written (a regular file rarely writes short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step: readers see the old or the new file, never a
    mix, and two processes writing the same path both leave a whole file (the last wins)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8"))


def fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.loads(f.read())


def git_branch(workspace: Path) -> str | None:
    """The checked-out branch read straight from ``.git/HEAD`` (no subprocess); a short commit
    id when detached; None outside a repository. Follows ``gitdir:`` files (worktrees)."""
    git = Path(workspace) / ".git"
    try:
        if git.is_file():
            pointer = git.read_text("utf-8", "replace").strip()
            if not pointer.startswith("gitdir:"):
                return None
            git = (git.parent / pointer.removeprefix("gitdir:").strip()).resolve()
        head = (git / "HEAD").read_text("utf-8", "replace").strip()
    except OSError:
        return None
    if head.startswith("ref:"):
        return head.removeprefix("ref:").strip().removeprefix("refs/heads/")
    return head[:12] or None
