"""What the agent reads: the editor's open buffer when there is one, the disk otherwise.

The version of an open document travels with its text so that a proposal built on that text
can be pinned to it (``TextDocumentEdit``) and rebased if the user types in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_READ_BYTES = 2_000_000


class FileReadError(Exception):
    """A file that exists but cannot be given to the agent as text (binary, huge, a folder)."""


@dataclass(frozen=True)
class DocumentSnapshot:
    path: Path
    text: str
    version: int | None  # None: read from disk, not open in the editor

    @property
    def is_open(self) -> bool:
        return self.version is not None


class DocumentSource(Protocol):
    def snapshot(self, path: Path) -> DocumentSnapshot:
        """Current text of ``path``; raises FileNotFoundError or FileReadError."""
        ...


def read_text_file(path: Path, max_bytes: int = MAX_READ_BYTES) -> str:
    """Read a text file from disk, refusing binaries and oversized files with a clear reason."""
    if path.is_dir():
        raise FileReadError(f"{path} is a directory, not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise FileReadError(
            f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit for reading whole; "
            "read a line range or search it with Grep"
        )
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise FileReadError(f"{path} is a binary file ({size:,} bytes); it cannot be read as text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class DiskDocuments:
    """A DocumentSource with no editor: everything comes from disk."""

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return DocumentSnapshot(path=path, text=read_text_file(path), version=None)
