"""What the agent reads: the editor's open buffer when there is one, the disk otherwise.

The version of an open document travels with its text so that a proposal built on that text
can be pinned to it (``TextDocumentEdit``) and rebased if the user types in between. A file
read from disk carries its encoding (see ``encoding.py``) so that writing it back changes no
byte the agent did not change.

Reading never blocks on something that is not a regular file: the type is checked before the
file is opened and again on the opened descriptor, which is opened non-blocking, so a FIFO
swapped in between cannot hang the reader.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lsp_agent.workspace.encoding import TextEncoding, UndecodableBytes, decode_bytes

MAX_READ_BYTES = 2_000_000
# Files up to this size are read on the event loop. A hop to a worker thread costs 0.3-1 ms on
# a small machine, reading a small regular file tens of microseconds: for the files an agent
# reads most, the hop was most of the Read tool's time (bench/bench_engine.py, overhead).
INLINE_READ_BYTES = 256 * 1024

# What a path can be besides a regular file, and how to say it (checked in this order).
_NOT_REGULAR: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class FileReadError(Exception):
    """A file that exists but cannot be given to the agent as text (binary, huge, a folder)."""


class FileTooLarge(FileReadError):
    """A text file over the whole-file limit; a line range of it can still be streamed."""


class NotRegularFile(FileReadError):
    """A directory, FIFO, socket or device: reading it could block or never end."""


@dataclass(frozen=True)
class DocumentSnapshot:
    path: Path
    text: str
    version: int | None  # None: read from disk, not open in the editor
    encoding: TextEncoding | None = None  # how the disk stores it; None: an editor buffer

    @property
    def is_open(self) -> bool:
        return self.version is not None


class DocumentSource(Protocol):
    def snapshot(self, path: Path) -> DocumentSnapshot:
        """Current text of ``path``; raises FileNotFoundError or FileReadError."""
        ...


def kind_of(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", ...); None for a regular file."""
    return next((name for test, name in _NOT_REGULAR if test(mode)), None)


def not_regular_message(path: Path, kind: str) -> str:
    if kind == "a directory":
        return f"{path} is a directory, not a file"
    return f"{path} is {kind}, not a regular file; it cannot be read as text"


def read_file_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """A regular file's bytes; FileReadError for anything else or anything too large.

    ``max_bytes`` defaults to MAX_READ_BYTES as it is when called."""
    max_bytes = MAX_READ_BYTES if max_bytes is None else max_bytes
    kind = kind_of(path.stat().st_mode)  # FileNotFoundError passes through
    if kind is not None:
        raise NotRegularFile(not_regular_message(path, kind))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO without writer) swapped in
            raise NotRegularFile(not_regular_message(path, "a socket")) from None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        kind = kind_of(info.st_mode)
        if kind is not None:  # replaced between the check and the open
            raise NotRegularFile(not_regular_message(path, kind))
        if info.st_size > max_bytes:
            raise FileTooLarge(
                f"{path} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for "
                "reading whole; read a line range or search it with Grep"
            )
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise FileTooLarge(f"{path} is over the {max_bytes:,}-byte limit for reading whole")
    return data


def read_text_document(path: Path, max_bytes: int | None = None) -> tuple[str, TextEncoding]:
    """A text file's text and encoding, refusing binaries, oversized and special files."""
    data = read_file_bytes(path, max_bytes)
    try:
        return decode_bytes(data)
    except UndecodableBytes as exc:
        raise FileReadError(f"{path} cannot be read as text: {exc} ({len(data):,} bytes)") from None


def read_text_file(path: Path, max_bytes: int | None = None) -> str:
    """Read a text file from disk, refusing binaries and oversized files with a clear reason."""
    return read_text_document(path, max_bytes)[0]


def disk_snapshot(path: Path) -> DocumentSnapshot:
    text, encoding = read_text_document(path)
    return DocumentSnapshot(path=path, text=text, version=None, encoding=encoding)


class DiskDocuments:
    """A DocumentSource with no editor: everything comes from disk."""

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return disk_snapshot(path)


async def snapshot_async(source: DocumentSource, path: Path) -> DocumentSnapshot:
    """``source.snapshot(path)`` without blocking the event loop.

    A source that can tell open buffers apart (``open_snapshot``) answers those on the loop,
    where text and version are read together; only disk reads go to a worker thread.
    """
    if type(source) is DiskDocuments:  # not a subclass: those may answer from elsewhere
        return await disk_snapshot_async(path)
    read_snapshot = getattr(source, "read_snapshot", None)
    if read_snapshot is not None:  # a source that asks someone else (an ACP client's buffers)
        snapshot: DocumentSnapshot = await read_snapshot(path)
        return snapshot
    open_snapshot = getattr(source, "open_snapshot", None)
    if open_snapshot is None:
        return await asyncio.to_thread(source.snapshot, path)
    buffered = open_snapshot(path)
    if buffered is not None:
        return buffered
    return await disk_snapshot_async(path)


async def disk_snapshot_async(path: Path) -> DocumentSnapshot:
    """``disk_snapshot`` on the loop for a small regular file, in a worker for anything else
    (large, special, on a slow disk, missing: the worker raises the reason)."""
    if is_small_regular_file(path):
        # A FIFO swapped in after the stat cannot block: read_file_bytes opens non-blocking
        # and checks the type again on the descriptor.
        return disk_snapshot(path)
    return await asyncio.to_thread(disk_snapshot, path)


def is_small_regular_file(path: Path, limit: int = INLINE_READ_BYTES) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size <= limit
