"""A change a tool wants to make to one file, before it becomes a proposal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class FileEdit:
    """A whole-file change a tool wants to make: the text it saw and the text it wants."""

    path: Path
    old_text: str | None  # None: the file does not exist yet
    new_text: str
    version: int | None  # editor version of ``old_text``, None when read from disk
    delete: bool = False  # the file is to be deleted (``new_text`` is "")
