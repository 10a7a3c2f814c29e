"""Dream's staging copy of a memory folder: the agent writes there, the memory changes only
when the run completes.

``Staging.create`` copies the memory's files (``MEMORY.md`` and the topic files, never links)
into a private folder beside the memory folder (``.<slug>.dream-XXXX/memory``); the Dream
agent's Memory tool writes to that copy. When the run ends well, ``changes`` compares the copy
with what the memory held at the start and ``apply`` writes the difference through the real
``AutoMemory`` -- so names, links, masking and the index's limits (200 lines / 25 KB) are
checked as for any memory write -- topic files first, then deletions, the index last. A run
that fails, is cancelled or is killed never gets there: the memory stays as it was and the
copy is removed (a killed run's copy by the next run, which holds the lock).

A memory file that a session wrote while the Dream ran (it differs from the start) keeps that
session's version: the Dream's change to it is dropped, and its index line is kept.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lsp_agent.context.auto_memory import INDEX, AutoMemory, MemoryRefused, index_problem
from lsp_agent.store.layout import atomic_write, ensure_private_dir

log = logging.getLogger(__name__)

STAGING_MARK = ".dream-"


class StagingRefused(Exception):
    """What the agent left in its copy cannot become the memory (the message says why)."""


@dataclass
class Changes:
    written: dict[str, str] = field(default_factory=dict)  # topic file -> its new text
    deleted: list[str] = field(default_factory=list)  # topic files
    index: str | None = None  # the new MEMORY.md; None: unchanged


def read_files(memory: AutoMemory) -> dict[str, str]:
    """The memory's files by name: the index and every topic file with a plain name (links and
    odd names are left alone: never copied, never deleted)."""
    files: dict[str, str] = {}
    index = memory.raw_index()
    if index:
        files[INDEX] = index
    for topic in memory.topics():
        with contextlib.suppress(MemoryRefused):
            files[topic.file] = memory.read(topic.file[:-3])
    return files


@dataclass
class Staging:
    root: Path  # private, beside the memory folder; removed by ``close``
    folder: Path  # the agent's copy of the memory (its cwd and its Memory tool's folder)
    results: Path  # oversized tool results of the agent (readable by it)
    original: dict[str, str]  # the memory's files when the run started

    @classmethod
    def create(cls, memory: AutoMemory) -> Staging:
        """Call with the Dream lock held (stale copies of killed runs are removed here)."""
        parent = ensure_private_dir(memory.folder.parent)
        remove_stale(memory.folder)
        original = read_files(memory)
        root = Path(tempfile.mkdtemp(prefix=f".{memory.folder.name}{STAGING_MARK}", dir=parent))
        folder = ensure_private_dir(root / "memory")
        for file, text in original.items():  # names checked by read_files; a fresh folder
            atomic_write(folder / file, text.encode("utf-8"))
        return cls(root, folder, root / "results", original)

    def changes(self) -> Changes:
        staged = read_files(AutoMemory(self.folder))
        written = {f: t for f, t in staged.items()
                   if f != INDEX and self.original.get(f) != t}
        deleted = sorted(f for f in self.original if f != INDEX and f not in staged)
        index = staged.get(INDEX, "")
        changed = index != self.original.get(INDEX, "")
        if changed and (problem := index_problem(index)):
            raise StagingRefused(f"the new index cannot be saved: {problem}")
        return Changes(written, deleted, index if changed else None)

    def apply(self, memory: AutoMemory, changes: Changes) -> tuple[list[str], list[str]]:
        """Write ``changes`` into the real memory; returns the files written and deleted."""
        now = read_files(memory)
        names = (set(now) | set(self.original)) - {INDEX}
        theirs = {f for f in names if now.get(f) != self.original.get(f)}  # written meanwhile
        written, deleted = [], []
        for file, text in sorted(changes.written.items()):
            if file in theirs:
                continue
            try:
                memory.write_file(file[:-3], text)
                written.append(file)
            except MemoryRefused as exc:
                log.warning("Dream: %s was not written: %s", file, exc)
        for file in changes.deleted:
            with contextlib.suppress(MemoryRefused):
                if file not in theirs and memory.delete(file[:-3]):
                    deleted.append(file)
        if changes.index is not None:
            self._write_index(memory, changes.index, now.get(INDEX, ""), theirs)
        return written, deleted

    @staticmethod
    def _write_index(memory: AutoMemory, index: str, current: str, theirs: set[str]) -> None:
        kept = [line for line in current.splitlines()
                if any(f"]({f})" in line for f in theirs) and line not in index]
        merged = index.rstrip("\n") + "".join(f"\n{line}" for line in kept) + "\n"
        try:
            memory.write_index(merged if index.strip() or kept else "")
        except MemoryRefused:  # the sessions' lines pushed it over: the Dream's own fits
            memory.write_index(index)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def remove_stale(folder: Path) -> None:
    """Copies left by killed runs of this memory folder."""
    pattern = str(folder.parent / f".{glob.escape(folder.name)}{STAGING_MARK}*")
    for path in glob.glob(pattern):
        stale = Path(path)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
