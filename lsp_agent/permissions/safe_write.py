"""Every disk write of the server goes through here, and its final path is checked when it
happens, not only when the change was proposed.

Between a proposal and the user's approval the file may have been replaced: by a symbolic
link to a file outside the workspace, to a protected file, by a read-only file, by a FIFO. So
just before writing, the path is resolved again and the write is refused (``WriteRefused``,
whose message is meant for the user and the model) when:

* it now leads somewhere else than the real path the change was proposed for;
* it leads outside the allowed roots, or to a protected file (``permissions.paths``), unless
  that exact real path is the one that was approved;
* the file is not a regular file, or is read-only (permission bits, or not writable for us):
  replacing it would override a protection the user set, so the server does not do it;
* the text cannot be stored in the file's encoding (see ``encoding.py``).

The write itself is atomic and does not follow links: the parent folder is opened (no symlink
as its last part, and on Linux its real path is checked again through ``/proc``), the new bytes
go to a temporary file created with ``O_EXCL | O_NOFOLLOW`` inside it, the file's permission
bits are copied, and ``rename`` replaces the directory entry (a symlink swapped in at the last
moment is replaced itself, never followed).
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.paths import protected_reason
from lsp_agent.workspace.documents import FileReadError, read_file_bytes
from lsp_agent.workspace.encoding import (
    REPLACEMENT_CHAR,
    UTF8,
    TextEncoding,
    UndecodableBytes,
    UnencodableText,
    count_escaped_bytes,
    decode_bytes,
)

# Written files may be far larger than what the agent reads whole.
MAX_REWRITE_BYTES = 64_000_000
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
    getattr(os, "O_CLOEXEC", 0)


class WriteRefused(PermissionError):
    """A write the server will not do; the message says why, for the user and the model.

    A PermissionError, so code that already reports failed writes (OSError) reports these too.
    """


@dataclass(frozen=True)
class WriteScope:
    """Where one write may land."""

    roots: tuple[Path, ...] = ()  # real paths; empty: no root check (the caller has none)
    expected: Path | None = None  # the real path approved when the change was proposed
    protected_ok: bool = False  # for the server's own settings files, which are protected

    @classmethod
    def inside(cls, *roots: Path, expected: Path | None = None) -> WriteScope:
        return cls(roots=tuple(real_path(r) for r in roots), expected=expected)


def real_path(path: Path) -> Path:
    return Path(os.path.realpath(path))


# ---------------------------------------------------------------------------- checks


def resolve_for_write(path: Path, scope: WriteScope) -> Path:
    """The real path a write to ``path`` would change now; WriteRefused when not allowed."""
    real = real_path(path)
    if scope.expected is not None:
        if real != scope.expected:
            raise WriteRefused(
                f"{path} now leads to {real}, not to {scope.expected} as when the change was "
                "proposed (a symbolic link was added or changed since); nothing was written to it"
            )
        return real  # the permission check saw this very path when the change was proposed
    if scope.roots and not any(real == r or real.is_relative_to(r) for r in scope.roots):
        where = ", ".join(str(r) for r in scope.roots)
        raise WriteRefused(f"{path} leads to {real}, outside {where}; it was not written")
    if not scope.protected_ok and (why := protected_reason(real)):
        raise WriteRefused(f"{why}; the server does not write it without asking")
    return real


def existing_mode(name: str | Path, dir_fd: int | None = None) -> int | None:
    """Permission bits of the regular file to replace; None when there is none.

    WriteRefused for a symbolic link (swapped in after the path was resolved), anything that
    is not a regular file, and a file that is read-only or not writable for us.
    """
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    shown = name if dir_fd is None else Path(name).name
    if stat.S_ISLNK(info.st_mode):
        raise WriteRefused(f"{shown} became a symbolic link just before the write; not written")
    if not stat.S_ISREG(info.st_mode):
        raise WriteRefused(f"{shown} is not a regular file; it was not replaced")
    mode = stat.S_IMODE(info.st_mode)
    # rename() would replace the file whatever its mode: the bits must be checked by hand.
    if not mode & 0o222:
        raise WriteRefused(
            f"{shown} is read-only (mode {mode:04o}); the server does not replace a read-only "
            "file. Make it writable first if it should change"
        )
    if not os.access(name, os.W_OK, dir_fd=dir_fd, effective_ids=_effective_ids()):
        raise WriteRefused(f"{shown} is not writable for the server's user (mode {mode:04o}, "
                           f"owner uid {info.st_uid}); it was not replaced")
    return mode


def _effective_ids() -> bool:
    return os.access in os.supports_effective_ids


# ---------------------------------------------------------------------------- text writes


@dataclass(frozen=True)
class PreparedWrite:
    path: Path
    real: Path
    data: bytes | None  # None: the file already holds exactly these bytes
    scope: WriteScope


def prepare_text_write(path: Path, text: str, scope: WriteScope) -> PreparedWrite:
    """Every check a text write needs, without writing: path, file type, mode, encoding."""
    real = resolve_for_write(path, scope)
    existing_mode(real)
    try:
        current = read_file_bytes(real, MAX_REWRITE_BYTES)
    except FileNotFoundError:
        current = None
    except (FileReadError, OSError) as exc:
        raise WriteRefused(f"{path} cannot be replaced: {exc}") from None
    data = encode_like(path, text, current)
    return PreparedWrite(path, real, None if data == current else data, scope)


def encode_like(path: Path, text: str, current: bytes | None) -> bytes:
    """``text`` in the encoding of ``current`` (the file's bytes now; None: a new file).

    Unchanged lines give back their exact bytes because the encoding round-trips. A character
    the encoding cannot hold, or U+FFFD standing in for bytes that were not valid UTF-8 (an
    editor's view of the file), is refused instead of corrupting the file.
    """
    encoding, current_text = UTF8, ""
    if current is not None:
        try:
            current_text, encoding = decode_bytes(current)
        except UndecodableBytes as exc:
            raise WriteRefused(f"{path} is not a text file ({exc}); it was not replaced") from None
    _refuse_lost_bytes(path, text, current_text, encoding)
    try:
        return encoding.encode(text)
    except UnencodableText as exc:
        raise WriteRefused(f"{path} is stored as {encoding.label}: {exc}; it was not "
                           "written (use characters that encoding has)") from None


def _refuse_lost_bytes(path: Path, text: str, current: str, encoding: TextEncoding) -> None:
    if encoding.errors != "surrogateescape":
        return
    kept = count_escaped_bytes(current)
    if text.count(REPLACEMENT_CHAR) > current.count(REPLACEMENT_CHAR) and \
            count_escaped_bytes(text) < kept:
        raise WriteRefused(
            f"{path} holds {kept} byte(s) that are not valid UTF-8, and the text to write shows "
            "them as U+FFFD: writing it would replace them. It was not written"
        )


def write_text_checked(path: Path, text: str, scope: WriteScope) -> bool:
    """Write ``text`` in the file's own encoding; False when it already held exactly that."""
    prepared = prepare_text_write(path, text, scope)
    if prepared.data is None:
        return False
    write_bytes_checked(path, prepared.data, scope)
    return True


def write_texts_checked(targets: Mapping[Path, str], scopes: Mapping[Path, WriteScope]) -> None:
    """Several files, all checked before the first is written (a refusal writes nothing)."""
    prepared = [prepare_text_write(p, t, scopes.get(p, WriteScope())) for p, t in targets.items()]
    written: list[Path] = []
    for item in prepared:
        if item.data is None:
            continue
        try:
            write_bytes_checked(item.path, item.data, item.scope)
        except WriteRefused as exc:
            if written:
                raise WriteRefused(f"{exc} (already written: "
                                   f"{', '.join(str(p) for p in written)})") from None
            raise
        written.append(item.path)


# ---------------------------------------------------------------------------- the write


def write_bytes_checked(path: Path, data: bytes, scope: WriteScope) -> None:
    """Replace (or create) ``path`` with ``data`` atomically, after the checks above."""
    real = resolve_for_write(path, scope)
    real.parent.mkdir(parents=True, exist_ok=True)
    with _open_dir(real.parent) as dir_fd:
        mode = existing_mode(real.name, dir_fd)
        tmp = f".{real.name}.{uuid.uuid4().hex[:8]}.lsp-agent.tmp"
        fd = os.open(tmp, _NEW_FILE_FLAGS, 0o666 if mode is None else 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if mode is not None:  # an executable script stays executable
                    os.fchmod(f.fileno(), mode)
            os.replace(tmp, real.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


@contextlib.contextmanager
def _open_dir(folder: Path) -> Iterator[int]:
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        raise WriteRefused(f"{folder} cannot be opened as a folder ({exc.strerror}); "
                           "a symbolic link may have been swapped in") from None
    try:
        _check_folder(fd, folder)
        yield fd
    finally:
        os.close(fd)


def _check_folder(fd: int, folder: Path) -> None:
    """The opened folder is ``folder`` itself: no parent of it was swapped for a link."""
    proc = Path(f"/proc/self/fd/{fd}")
    try:
        opened = Path(os.readlink(proc))
    except OSError:  # no /proc (macOS): compare identities instead
        a, b = os.fstat(fd), os.stat(folder)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            raise WriteRefused(f"{folder} changed while it was being written to") from None
        return
    if opened != folder:
        raise WriteRefused(f"{folder} now leads to {opened}; nothing was written")


def delete_checked(path: Path, scope: WriteScope) -> bool:
    """Delete the file ``path`` after the checks above (its folder opened without following
    a swapped link); False when it was already gone."""
    real = resolve_for_write(path, scope)
    if not real.parent.is_dir():
        return False
    with _open_dir(real.parent) as dir_fd:
        try:
            os.unlink(real.name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
    return True


def check_paths(paths: Sequence[Path], scope: WriteScope) -> None:
    """Path checks for a change that is not a text write (a rename or a delete)."""
    for path in paths:
        resolve_for_write(path, scope)
