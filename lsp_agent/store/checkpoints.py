"""Checkpoints: the pre-image of every file a turn touches, and what a rewind restores.

Turn n's checkpoint is the state just before turn n ran. It is taken lazily: the first time
the turn is about to write a file (a proposal being applied, a shell command that may write
it), ``Checkpointer.before_write`` saves the file's current content in the blob store and
appends a ``file_backup`` entry (path, blob hash or "absent", or why it was not captured).
Nothing else is copied: no scan of the repository, no full snapshot.

Rewinding to turn n: for each file, the first backup written after turn n's prompt (in file
order, every branch included) holds its content at that checkpoint, since nothing the agent did
changed the file between the prompt and that backup. Writes made by a rewind are backed up the
same way (``begin_restore``), so a later rewind sees them too.

Not captured, and reported as not restorable: files outside the workspace, over the size cap,
in ignored folders (``.git``, ``node_modules``, virtualenvs, caches, ``.gitignore`` entries),
secret-looking files (keys, ``.env``; they are not copied into the state dir), and anything
that is not a regular file. Changes made by hand between turns are not tracked: a rewind keeps
them when the agent did not touch the file after them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from lsp_agent.permissions.paths import secret_reason
from lsp_agent.store import entries as en
from lsp_agent.store.blobs import BlobStore
from lsp_agent.store.reader import TranscriptReader

DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
# Folders whose content is generated, vendored or version control: never captured.
IGNORED_DIR_NAMES = frozenset({
    ".git", ".hg", ".svn", ".jj", "node_modules", "__pycache__", ".venv", "venv",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages",
    ".lsp-agent-state",
})
VENV_MARKER = "pyvenv.cfg"
MAX_CACHED_VERDICTS = 50_000


# -- what may be captured ----------------------------------------------------------------------


class GitIgnore:
    """``.gitignore`` files from the workspace root down, plus ``.git/info/exclude``, with git's
    precedence (the deepest file's last matching pattern wins; an ignored folder hides all it
    holds). Parsed files are cached until their mtime changes; their mtimes are looked at
    again after ``RECHECK_SECONDS`` (one turn's captures share the stats). Git's global
    excludes file and tracked files that match a pattern (git keeps tracking them) are not
    considered."""

    RECHECK_SECONDS = 2.0

    def __init__(self, root: Path):
        self.root = str(root)
        self._parsed: dict[str, tuple[int, pathspec.GitIgnoreSpec | None]] = {}
        self._checked: dict[str, tuple[float, pathspec.GitIgnoreSpec | None]] = {}
        # Verdicts, valid while no .gitignore changed (``_generation``): files of one folder
        # share the folders' verdicts, a turn touches the files of the last turns again, and
        # a check against a big .gitignore costs a regex per pattern.
        self._verdicts: dict[tuple[str, ...], tuple[int, bool]] = {}
        self._generation = 0

    def _spec(self, file: str) -> pathspec.GitIgnoreSpec | None:
        now = time.monotonic()
        checked = self._checked.get(file)
        if checked is not None and now - checked[0] < self.RECHECK_SECONDS:
            return checked[1]
        spec = self._load(file)
        self._checked[file] = (now, spec)
        return spec

    def _load(self, file: str) -> pathspec.GitIgnoreSpec | None:
        try:
            mtime = os.stat(file).st_mtime_ns
        except OSError:
            if self._parsed.pop(file, None) is not None:
                self._generation += 1
            return None
        cached = self._parsed.get(file)
        if cached and cached[0] == mtime:
            return cached[1]
        self._generation += 1
        try:
            with open(file, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None
        self._parsed[file] = (mtime, spec)
        return spec

    def ignored(self, parts: tuple[str, ...]) -> bool:
        """``parts``: the path relative to the root. Folders are checked before the file."""
        levels: list[tuple[int, pathspec.GitIgnoreSpec]] = []
        exclude = self._spec(os.path.join(self.root, ".git", "info", "exclude"))
        if exclude is not None:
            levels.append((0, exclude))
        folder = self.root
        for depth in range(len(parts)):
            spec = self._spec(os.path.join(folder, ".gitignore"))
            if spec is not None:
                levels.append((depth, spec))
            is_dir = depth + 1 < len(parts)
            key = parts[: depth + 1]
            known = self._verdicts.get(key)
            if known is not None and known[0] == self._generation:
                verdict = known[1]
            else:
                verdict = bool(levels) and self._matches(levels, key, is_dir)
                if len(self._verdicts) >= MAX_CACHED_VERDICTS:
                    self._verdicts.clear()
                self._verdicts[key] = (self._generation, verdict)
            if verdict:
                return True
            folder = os.path.join(folder, parts[depth])
        return False

    @staticmethod
    def _matches(levels: list[tuple[int, pathspec.GitIgnoreSpec]], parts: tuple[str, ...],
                 is_dir: bool) -> bool:
        verdict = None
        for depth, spec in levels:
            rel = "/".join(parts[depth:]) + ("/" if is_dir else "")
            include = spec.check_file(rel).include
            if include is not None:
                verdict = include
        return bool(verdict)


@dataclass
class CaptureRules:
    workspace: Path
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ignored_dirs: frozenset[str] = IGNORED_DIR_NAMES
    honour_gitignore: bool = True
    skip_secrets: bool = True
    _root: Path = field(init=False)
    _root_str: str = field(init=False)
    _root_prefix: str = field(init=False)
    _gitignore: GitIgnore = field(init=False)
    _venv_dirs: dict[str, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._root = Path(os.path.realpath(self.workspace))
        self._root_str = str(self._root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep
        self._gitignore = GitIgnore(self._root)

    def absolute(self, path: str | os.PathLike[str]) -> str:
        """``path`` made absolute against the workspace (``~`` expanded, not resolved)."""
        return os.path.join(self._root_str, os.path.expanduser(os.fspath(path)))

    def place(self, real: str) -> tuple[Path, str, tuple[str, ...] | None]:
        """For a real path: the name recorded for it (workspace-relative with ``/``, absolute
        outside the workspace) and its parts under the workspace (None outside)."""
        if not real.startswith(self._root_prefix):
            return Path(real), real, None
        parts = tuple(p for p in real[len(self._root_prefix):].split(os.sep) if p)
        return Path(real), "/".join(parts), parts or None

    def locate(self, path: str | os.PathLike[str]) -> tuple[Path, str, tuple[str, ...] | None]:
        """``place`` for any path (resolved with ``realpath``)."""
        return self.place(os.path.realpath(self.absolute(path)))

    def skip_reason(self, real: Path, parts: tuple[str, ...] | None) -> str | None:
        """Why this path is not captured (size is checked when reading), or None."""
        if parts is None:
            return "outside the workspace"
        for name in parts[:-1]:
            if name in self.ignored_dirs:
                return f"inside {name}/, which checkpoints skip"
        if self._in_virtualenv(parts):
            return "inside a virtualenv, which checkpoints skip"
        if self.honour_gitignore and self._gitignore.ignored(parts):
            return "ignored by .gitignore"
        if self.skip_secrets and (why := _secret_reason(str(real))):
            return f"{why}; secrets are not copied into checkpoints"
        return None

    def _in_virtualenv(self, parts: tuple[str, ...]) -> bool:
        folder = self._root_str
        for name in parts[:-1]:
            folder = os.path.join(folder, name)
            known = self._venv_dirs.get(folder)
            if known is None:
                known = self._venv_dirs[folder] = os.path.isfile(
                    os.path.join(folder, VENV_MARKER))
            if known:
                return True
        return False


@functools.lru_cache(maxsize=4096)
def _secret_reason(real: str) -> str | None:
    # Cached: the rule reads only the path (it resolves it again, an lstat per component).
    return secret_reason(Path(real))


# -- capturing ---------------------------------------------------------------------------------


_PROC_FD = Path("/proc/self/fd")
_HAVE_O_PATH = hasattr(os, "O_PATH") and _PROC_FD.is_dir()


def _resolve(raw: str) -> tuple[int | None, str]:
    """Where ``raw`` really is, checked before anything is opened for reading: an ``O_PATH``
    descriptor (None when the file is missing) and the real path. ``O_PATH`` resolves the
    path in the kernel in one call (``realpath`` costs an lstat per component) and opens
    nothing: a link to a device never reaches the device's open."""
    if not _HAVE_O_PATH:
        real = os.path.realpath(raw)
        return None, real
    try:
        fd = os.open(raw, os.O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None, os.path.realpath(raw)
    try:
        return fd, os.readlink(_PROC_FD / str(fd))
    except OSError:
        os.close(fd)
        return None, os.path.realpath(raw)


def _open_for_reading(handle: int | None, real: str) -> int:
    """Open the file ``_resolve`` found (the same inode, through its descriptor)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if handle is not None:
        return os.open(_PROC_FD / str(handle), flags)
    return os.open(real, flags | os.O_NOFOLLOW)


def capture(rules: CaptureRules, blobs: BlobStore, scope: str,
            path: str | os.PathLike[str]) -> en.Entry:
    """The ``file_backup`` entry for one file's current content (blocking I/O)."""
    handle, real_path = _resolve(rules.absolute(path))
    try:
        return _capture_resolved(rules, blobs, scope, handle, real_path)
    finally:
        if handle is not None:
            os.close(handle)


def _capture_resolved(rules: CaptureRules, blobs: BlobStore, scope: str, handle: int | None,
                      real_path: str) -> en.Entry:
    real, name, parts = rules.place(real_path)
    reason = rules.skip_reason(real, parts)
    if reason is not None:
        exists = handle is not None or os.path.lexists(real_path)
        return en.file_backup(scope, name, existed=exists, blob=None, size=0, skipped=reason)
    try:
        st = os.fstat(handle) if handle is not None else os.stat(real_path)
    except FileNotFoundError:
        return en.file_backup(scope, name, existed=False, blob=None, size=0)
    except OSError as exc:
        return _unreadable(scope, name, exc)
    if not stat.S_ISREG(st.st_mode):
        return en.file_backup(scope, name, existed=True, blob=None, size=0,
                              skipped="not a regular file")
    if st.st_size > rules.max_file_bytes:
        return _too_big(scope, name, st.st_size, rules.max_file_bytes)
    try:
        fd = _open_for_reading(handle, real_path)
        try:
            data = _read_at_most(fd, rules.max_file_bytes + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return en.file_backup(scope, name, existed=False, blob=None, size=0)
    except OSError as exc:
        return _unreadable(scope, name, exc)
    if len(data) > rules.max_file_bytes:  # grew while we looked
        return _too_big(scope, name, len(data), rules.max_file_bytes)
    try:
        digest, _ = blobs.put(data)
    except OSError as exc:
        return en.file_backup(scope, name, existed=True, blob=None, size=len(data),
                              skipped=f"its snapshot could not be saved ({exc.strerror or exc})")
    return en.file_backup(scope, name, existed=True, blob=digest, size=len(data),
                          file_mode=stat.S_IMODE(st.st_mode))


def _unreadable(scope: str, name: str, exc: OSError) -> en.Entry:
    return en.file_backup(scope, name, existed=True, blob=None, size=0,
                          skipped=f"could not be read ({exc.strerror or exc})")


def _too_big(scope: str, name: str, size: int, cap: int) -> en.Entry:
    return en.file_backup(scope, name, existed=True, blob=None, size=size,
                          skipped=f"{size:,} bytes, over the checkpoint size cap of {cap:,}")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Checkpointer:
    """Records pre-images for one session. ``append`` adds an entry to the transcript (a
    ``TranscriptWriter.append``); capturing runs on a worker thread."""

    def __init__(self, rules: CaptureRules, blobs: BlobStore, append: Callable[[en.Entry], str]):
        self.rules = rules
        self.blobs = blobs
        self._append = append
        self._scope: str | None = None
        self._taken: dict[str, asyncio.Future[en.Entry]] = {}  # real path -> its backup

    @property
    def scope(self) -> str | None:
        return self._scope

    def begin_turn(self, turn_uuid: str) -> None:
        """A new checkpoint: call with the uuid of the turn's ``user`` entry."""
        self._scope = turn_uuid
        self._taken = {}

    def begin_restore(self, to_turn: int) -> str:
        """Files a rewind is about to overwrite get backed up under their own scope."""
        scope = self._append(en.system("restore", f"files restored to turn {to_turn}"))
        self.begin_turn(scope)
        return scope

    async def before_write(self, paths: Iterable[str | os.PathLike[str]]) -> list[en.Entry]:
        """Save the pre-image of each path not yet saved in this scope; wait for captures of
        the same paths already under way. Returns the entries this call appended."""
        scope = self._scope
        if scope is None:
            raise RuntimeError("no turn started: call begin_turn first")
        waiting: list[asyncio.Future[en.Entry]] = []
        mine: list[tuple[str, asyncio.Future[en.Entry]]] = []
        loop = asyncio.get_running_loop()
        for path in paths:
            key = _path_key(self.rules.workspace, path)
            if key in self._taken:
                waiting.append(self._taken[key])
                continue
            future: asyncio.Future[en.Entry] = loop.create_future()
            self._taken[key] = future
            mine.append((key, future))
        appended: list[en.Entry] = []
        if mine:
            try:
                captured = await asyncio.to_thread(
                    lambda: [capture(self.rules, self.blobs, scope, key) for key, _ in mine])
            except BaseException as exc:
                for key, future in mine:
                    self._taken.pop(key, None)
                    future.set_exception(exc)
                    future.exception()  # retrieved here: the waiters get their own error
                raise
            for (_, future), entry in zip(mine, captured, strict=True):
                self._append(entry)  # (its scope is the one it was taken for)
                future.set_result(entry)
                appended.append(entry)
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)
        return appended


def _path_key(workspace: Path, path: str | os.PathLike[str]) -> str:
    # normpath, not realpath (no I/O on the loop): an alias through a symlink is captured
    # twice at worst, and the first backup of a file is the one a rewind uses.
    return os.path.normpath(workspace / Path(path))


# -- rewinding ---------------------------------------------------------------------------------


@dataclass
class FileTarget:
    path: str  # as recorded: workspace-relative
    absolute: Path
    blob: str | None  # None: the file did not exist at the checkpoint (delete it)
    size: int
    file_mode: int | None


@dataclass
class Unrestorable:
    path: str
    reason: str


@dataclass
class RewindPlan:
    turn: int
    turn_uuid: str
    restore: list[FileTarget]
    unrestorable: list[Unrestorable]


def plan_rewind(reader: TranscriptReader, turn: int, workspace: Path,
                blob_exists: Callable[[str], bool]) -> RewindPlan:
    """What each touched file must become to look as it did just before turn ``turn``."""
    start = reader.turn(turn)
    first: dict[str, en.Entry] = {}
    for entry in reader.backups_after(start.uuid):
        first.setdefault(entry.get("path", ""), entry)
    root = Path(os.path.realpath(workspace))
    restore: list[FileTarget] = []
    unrestorable: list[Unrestorable] = []
    for name, entry in sorted(first.items()):
        if entry.get("skipped"):
            unrestorable.append(Unrestorable(name, entry["skipped"]))
        elif not entry.get("existed"):
            restore.append(FileTarget(name, root / name, None, 0, None))
        elif not entry.get("blob") or not blob_exists(entry["blob"]):
            unrestorable.append(Unrestorable(
                name, "its snapshot is gone (deleted by the retention policy?)"))
        else:
            restore.append(FileTarget(name, root / name, entry["blob"], entry.get("size", 0),
                                      entry.get("fileMode")))
    return RewindPlan(turn, start.uuid, restore, unrestorable)


async def read_target(blobs: BlobStore, target: FileTarget) -> bytes | None:
    """The content a file must get back (None: delete it). Raises ``BlobError`` when the
    snapshot is missing or damaged."""
    if target.blob is None:
        return None
    return await asyncio.to_thread(blobs.get, target.blob)
