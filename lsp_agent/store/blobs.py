"""Content-addressed blobs: file contents saved once, whoever saves them.

A blob is named by the sha256 of the content (``blobs/ab/cdef...``) and stored zlib-compressed
when that makes it smaller (a one-byte header says which). The same content saved by two
checkpoints, two sessions or two servers is one file: writers go through a temp file and an
atomic rename, so concurrent writers of the same blob both leave a whole one. Saving content
that exists already only refreshes the blob's mtime, which protects it from a garbage
collection running at that moment in another process (see ``collect_garbage``).

Blobs are not fsynced one by one (milliseconds each): a power loss can damage the blobs of the
last turn. Reading checks the hash, so a damaged blob is reported, never restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.store.layout import atomic_write, ensure_private_dir

RAW, ZLIB = b"R", b"Z"
COMPRESS_LEVEL = 1  # git's default for loose objects: most of the gain for a third of the CPU
HASH_HEX = 64
GC_GRACE_SECONDS = 3600.0  # blobs younger than this may belong to a checkpoint being written


class BlobError(RuntimeError):
    """A blob is missing or its content does not match its name."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_blob_name(name: str) -> bool:
    return len(name) == HASH_HEX and all(c in "0123456789abcdef" for c in name)


class BlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._folders: set[str] = set()  # fan-out folders known to exist

    def path(self, digest: str) -> Path:
        if not is_blob_name(digest):
            raise BlobError(f"not a blob name: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except BlobError:
            return False

    def put(self, data: bytes, digest: str | None = None) -> tuple[str, int]:
        """Save ``data``; its hash and the bytes it added on disk (0 when deduplicated)."""
        digest = digest or content_hash(data)
        path = self.path(digest)
        try:
            os.utime(path)  # already there: keep it young for a concurrent collection
            return digest, 0
        except FileNotFoundError:
            pass
        packed = zlib.compress(data, COMPRESS_LEVEL)
        body = ZLIB + packed if len(packed) < len(data) else RAW + data
        if digest[:2] not in self._folders:
            ensure_private_dir(path.parent)
            self._folders.add(digest[:2])
        try:
            atomic_write(path, body)
        except FileNotFoundError:  # the folder went away (a collection emptied it)
            ensure_private_dir(path.parent)
            atomic_write(path, body)
        return digest, len(body)

    def get(self, digest: str) -> bytes:
        path = self.path(digest)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"snapshot {digest[:12]} is missing from {self.root}") from None
        kind, payload = body[:1], body[1:]
        try:
            data = zlib.decompress(payload) if kind == ZLIB else payload
        except zlib.error:
            data = None
        if data is None or kind not in (RAW, ZLIB) or content_hash(data) != digest:
            raise BlobError(f"snapshot {digest[:12]} is damaged")
        return data

    def iter_blobs(self) -> Iterable[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for fan in os.scandir(self.root):
            if not fan.is_dir(follow_symlinks=False) or len(fan.name) != 2:
                continue
            for item in os.scandir(fan.path):
                name = fan.name + item.name
                if item.is_file(follow_symlinks=False):
                    yield name, Path(item.path)

    def total_bytes(self) -> int:
        return sum(_size(p) for _, p in self.iter_blobs())


@dataclass
class GcReport:
    kept: int = 0
    deleted: int = 0
    freed_bytes: int = 0


def collect_garbage(store: BlobStore, referenced: set[str], *,
                    grace_seconds: float = GC_GRACE_SECONDS, now: float | None = None) -> GcReport:
    """Delete blobs no transcript references, and stale temp files; anything younger than
    ``grace_seconds`` stays (a checkpoint may be writing it before its entry is appended)."""
    now = time.time() if now is None else now
    report = GcReport()
    for name, path in list(store.iter_blobs()):
        if name in referenced:
            report.kept += 1
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime < grace_seconds:
            report.kept += 1
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            report.deleted += 1
            report.freed_bytes += st.st_size
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
