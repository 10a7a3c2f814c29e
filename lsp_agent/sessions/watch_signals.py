"""The watcher's deterministic signals, cheapest first and without a subprocess: did a file it
knows change since the last run (its mtime and size), did git HEAD move (read from the files
git keeps, worktrees included), did a document's diagnostics get worse.

Nothing here runs a command or calls a model: an idle tick costs a few ``stat`` calls and two
small reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Stamp = tuple[int, int] | None  # (mtime_ns, size); None: the file does not exist
MAX_REF_HOPS = 5  # symbolic refs pointing at symbolic refs: bounded
ERROR, WARNING = 1, 2  # LSP DiagnosticSeverity


def stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


# -- git HEAD -------------------------------------------------------------------------------


def git_dirs(workspace: Path) -> tuple[Path, Path] | None:
    """(the git dir holding HEAD, the common dir holding refs) of the repository around
    ``workspace``. A worktree's ``.git`` is a file ``gitdir: <path>``, and its git dir names
    the main repository's in ``commondir``."""
    for folder in [workspace, *workspace.parents]:
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git, dot_git
        if dot_git.is_file():
            try:
                line = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                return None
            if not line.startswith("gitdir:"):
                return None
            git_dir = (folder / line[len("gitdir:"):].strip()).resolve()
            return git_dir, _common_dir(git_dir)
    return None


def _common_dir(git_dir: Path) -> Path:
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / common).resolve()


def read_head(workspace: Path) -> str | None:
    """What HEAD points at: the commit id (a detached HEAD, or the ref's commit), with the
    branch name; None outside a repository. Changes whenever a commit, checkout, reset or pull
    moves HEAD."""
    dirs = git_dirs(workspace)
    if dirs is None:
        return None
    git_dir, common = dirs
    content = _read(git_dir / "HEAD")
    if content is None:
        return None
    seen: list[str] = []
    for _ in range(MAX_REF_HOPS):
        if not content.startswith("ref:"):
            return " ".join([content, *seen[:1]])  # the commit, then the branch followed
        ref = content[len("ref:"):].strip()
        seen.append(ref)
        content = _ref_value(git_dir, common, ref) or ""
        if not content:
            return f"{ref} (unborn)"
    return None


def _ref_value(git_dir: Path, common: Path, ref: str) -> str | None:
    if ".." in Path(ref).parts:  # a HEAD file naming a path out of the repository
        return None
    for base in (git_dir, common):  # per-worktree refs first, then the shared ones
        value = _read(base / ref)
        if value:
            return value
    packed = _read(common / "packed-refs", whole=True) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and not line.startswith(("#", "^")):
            return sha
    return None


def _read(path: Path, whole: bool = False) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(10_000_000 if whole else 4096)
    except OSError:
        return None
    return text if whole else text.strip()


# -- files it knows -------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The files the watcher knows of in a workspace (saved, typed in, reported on) and HEAD,
    as they were at the last run (or when first seen)."""

    stamps: dict[Path, Stamp] = field(default_factory=dict)
    head: str | None = None

    def track(self, path: Path) -> None:
        if path not in self.stamps:
            self.stamps[path] = stamp(path)

    def changes(self, workspace: Path) -> list[str]:
        """What differs now from the snapshot, in words (empty: nothing)."""
        found = []
        head = read_head(workspace)
        if head != self.head:
            found.append(f"git HEAD moved to {(head or 'nothing')[:60]}")
        found += [f"{path.name} changed" for path, was in self.stamps.items()
                  if stamp(path) != was]
        return found

    def refresh(self, workspace: Path) -> None:
        self.head = read_head(workspace)
        self.stamps = {path: stamp(path) for path in self.stamps}


# -- diagnostics ----------------------------------------------------------------------------


def diagnostic_key(diagnostic: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two diagnostics the same problem: not its range (typing above it moves it)."""
    code = diagnostic.get("code")
    return (diagnostic.get("severity") or ERROR, diagnostic.get("source"),
            str(code) if code is not None else None, diagnostic.get("message", ""))


def is_error(diagnostic: dict[str, Any]) -> bool:
    return (diagnostic.get("severity") or ERROR) == ERROR  # omitted: the client's call; error


@dataclass(frozen=True)
class DiagnosticChange:
    new_errors: list[dict[str, Any]]  # errors that were not in the previous set
    worse: bool  # more errors, or as many errors and more warnings

    @property
    def is_trigger(self) -> bool:
        return bool(self.new_errors) or self.worse


class DiagnosticSets:
    """The current diagnostics per document, and what each update made of them."""

    def __init__(self) -> None:
        self._by_uri: dict[str, list[dict[str, Any]]] = {}

    def current(self, uri: str) -> list[dict[str, Any]]:
        return list(self._by_uri.get(uri, []))

    def update(self, uri: str, diagnostics: Iterable[dict[str, Any]],
               full: bool = True) -> DiagnosticChange:
        """``full``: the document's whole set (``agent/diagnosticsChanged``); otherwise some of
        them (a code action's range), added to what is known. The first set heard of a
        document is its baseline, not news: opening a project with old errors triggers
        nothing."""
        incoming = list(diagnostics)
        if uri not in self._by_uri:
            self._by_uri[uri] = incoming
            return DiagnosticChange([], False)
        before = self._by_uri[uri]
        after = incoming if full else before + [d for d in incoming if d not in before]
        self._by_uri[uri] = after
        had = Counter(diagnostic_key(d) for d in before)
        new_errors = []
        for d in after:
            key = diagnostic_key(d)
            if had[key] > 0:
                had[key] -= 1
            elif is_error(d):
                new_errors.append(d)
        return DiagnosticChange(new_errors, _worse(before, after))

    def forget(self, uri: str) -> None:
        self._by_uri.pop(uri, None)


def _worse(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> bool:
    def counts(ds: list[dict[str, Any]]) -> tuple[int, int]:
        severities = [d.get("severity") or ERROR for d in ds]
        return severities.count(ERROR), severities.count(WARNING)

    (errors_before, warnings_before), (errors_after, warnings_after) = counts(before), counts(after)
    return errors_after > errors_before or (
        errors_after == errors_before and warnings_after > warnings_before)


def same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same diagnostic at the same place (as the client sent both: one encoding)."""
    return a.get("message") == b.get("message") and a.get("range") == b.get("range")


__all__ = ["DiagnosticChange", "DiagnosticSets", "Snapshot", "diagnostic_key", "git_dirs",
           "is_error", "read_head", "same_place", "stamp"]
