"""An isolated subagent's git worktree: the workspace's state in, the agent's changes back.

**In** (``seed``): a worktree is a checkout of HEAD; the workspace's uncommitted state is
copied over it (tracked modifications, deletions, untracked files git does not ignore), as
bytes, never through a link that leads out of the repository; untracked files that look like
secrets (the secret-file rules) stay out, so do untracked files over ``MAX_SEEDED_BYTES``.
That state is committed on the agent's branch as its **base**, so what the agent changed is
exactly base..branch.

**Back** (``collect``): when the agent ends, its changes (committed by ``Worktrees.finish``)
are read file by file against that base and rebased onto the workspace as it is *now* (the
editor's unsaved buffers included): a 3-way merge per file with base = what the agent started
from, ours = the workspace now, theirs = the agent's version. What merges cleanly becomes
``FileEdit``s for one proposal in the session's review flow; what does not is reported and
left out of the proposal (no conflict markers are proposed: accepting a hunk full of markers
would put them in the user's code). Binary files, files too large to review, files outside
the session's workspace, and secret or protected files (an auto-applying mode would write them
unasked; a secret's text would reach the model in the review's outcome) are reported, not
proposed. When something is left out, the worktree is kept: its branch holds that work.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lsp_agent.edits.merge import rebase
from lsp_agent.permissions import paths
from lsp_agent.permissions.secrets import FileRules
from lsp_agent.types.edits import FileEdit
from lsp_agent.workspace.documents import DocumentSource, FileReadError, snapshot_async
from lsp_agent.workspace.encoding import UndecodableBytes, decode_bytes
from lsp_agent.workspace.worktrees import (
    AgentWorktree,
    Changed,
    Finished,
    Uncommitted,
    WorktreeError,
    Worktrees,
)

MAX_SEEDED_BYTES = 50_000_000  # an untracked file larger than this is not copied
MAX_RETURNED_BYTES = 8_000_000  # a changed file larger than this is reported, not proposed


@dataclass
class Seeded:
    copied: list[str] = field(default_factory=list)  # repository-relative names
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name (why)"


async def seed(worktrees: Worktrees, record: AgentWorktree, rules: FileRules) -> Seeded:
    """Copy the workspace's uncommitted state into the new worktree and commit it as the
    agent's base (nothing committed when the workspace has no uncommitted change)."""
    entries = await worktrees.uncommitted(record)
    done = await asyncio.to_thread(_copy_state, Path(record.repo), Path(record.path), entries,
                                   rules)
    if done.copied or done.deleted:
        await worktrees.commit_base(record, "lsp-agent: the workspace's uncommitted state "
                                    f"when {record.agent_id} started")
    return done


def _copy_state(repo: Path, tree: Path, entries: list[Uncommitted], rules: FileRules) -> Seeded:
    done = Seeded()
    real_repo, real_tree = paths.real(repo), paths.real(tree)
    for entry in entries:
        source, target = repo / entry.name, tree / entry.name
        if not paths.is_inside(target.parent, [real_tree]):
            done.skipped.append(f"{entry.name} (its folder in the worktree is a link)")
            continue
        why = _copy_one(source, target, entry, real_repo, rules)
        if why == "deleted":
            done.deleted.append(entry.name)
        elif why:
            done.skipped.append(f"{entry.name} ({why})")
        else:
            done.copied.append(entry.name)
    return done


def _copy_one(source: Path, target: Path, entry: Uncommitted, repo: Path,
              rules: FileRules) -> str | None:
    """Copy one file; None when copied, "deleted" when it is gone from the workspace (and so
    from the worktree), else why it was left out."""
    if not paths.is_inside(source.parent, [repo]):
        return "its folder leads out of the repository"
    if not entry.tracked and paths.secret_reason(source, rules):
        return "an untracked file that looks like a secret"
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        if os.path.lexists(target):
            os.unlink(target)
        return "deleted"
    if stat.S_ISLNK(info.st_mode):
        if not paths.is_inside(source, [repo]):
            return "a link that leads out of the repository"
        link = os.readlink(source)
        _replace(target, lambda tmp: os.symlink(link, tmp))
        return None
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not entry.tracked and info.st_size > MAX_SEEDED_BYTES:
        return f"larger than {MAX_SEEDED_BYTES // 1_000_000} MB"
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read()

    def write(tmp: str) -> None:
        with open(tmp, "xb") as out:
            out.write(data)
        os.chmod(tmp, stat.S_IMODE(info.st_mode))

    _replace(target, write)
    return None


def _replace(target: Path, make: Callable[[str], None]) -> None:
    """Make ``target`` anew through a temporary name beside it (a link or file that was
    there is replaced, never written through)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(target.with_name(f".{target.name}.lsp-agent-seed.tmp"))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    make(tmp)
    os.replace(tmp, target)


# -- back ---------------------------------------------------------------------------------------


@dataclass
class Returned:
    """The agent's changes, rebased onto the workspace."""

    edits: list[FileEdit] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # the proposed files: "a.py", "b.py (new)"
    conflicts: list[str] = field(default_factory=list)  # "name: why"
    not_text: list[str] = field(default_factory=list)  # binary or too large: "name (why)"
    outside: list[str] = field(default_factory=list)  # outside the session's workspace
    # Secret or protected files: never applied unasked in an auto-applying mode, and a secret's
    # text must not reach the model through the review's outcome: left on the branch.
    guarded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # the workspace already holds them

    @property
    def left_out(self) -> bool:
        """Something the agent changed is not in the proposal (the worktree keeps it)."""
        return bool(self.conflicts or self.not_text or self.outside or self.guarded)


async def collect(worktrees: Worktrees, record: AgentWorktree, workspace: Path,
                  documents: DocumentSource, rules: FileRules) -> Returned:
    """The agent's changes against its base, merged into the workspace as it is now."""
    back = Returned()
    for change in await worktrees.changes(record):
        name = _in_workspace(change.name, record.workspace_rel)
        if name is None:
            back.outside.append(change.name)
            continue
        path = workspace / name
        if why := await asyncio.to_thread(_guarded, path, rules):
            back.guarded.append(f"{name} ({why})")
            continue
        if change.binary or change.kind not in "AMD":
            back.not_text.append(f"{name} ({'binary' if change.binary else 'not a plain file'})")
            continue
        await _bring(worktrees, record, change, path, name, documents, back)
    return back


def _guarded(path: Path, rules: FileRules) -> str | None:
    return paths.secret_reason(path, rules) or paths.protected_reason(paths.real(path), rules)


def _in_workspace(name: str, workspace_rel: str) -> str | None:
    if not workspace_rel:
        return name
    inside = PurePosixPath(name)
    if not inside.is_relative_to(workspace_rel):
        return None
    return inside.relative_to(workspace_rel).as_posix()


async def _bring(worktrees: Worktrees, record: AgentWorktree, change: Changed, path: Path,
                 name: str, documents: DocumentSource, back: Returned) -> None:
    base = theirs = None
    if change.kind != "A":
        base = await _text(worktrees, record, record.base, change.name)
    if change.kind != "D":
        theirs = await _text(worktrees, record, record.commit or "HEAD", change.name)
    if (change.kind != "A" and base is None) or (change.kind != "D" and theirs is None):
        back.not_text.append(f"{name} (not text, or larger than "
                             f"{MAX_RETURNED_BYTES // 1_000_000} MB)")
        return
    try:
        snap = await snapshot_async(documents, path)
        ours, version = snap.text, snap.version
    except FileNotFoundError:
        ours, version = None, None
    except (FileReadError, OSError) as exc:
        back.conflicts.append(f"{name}: the workspace's file cannot be read ({exc})")
        return
    verdict = merge_one(base, ours, theirs)
    if isinstance(verdict, str):
        back.conflicts.append(f"{name}: {verdict}")
    elif verdict is None:
        back.unchanged.append(name)
    else:
        new_text, delete = verdict
        back.edits.append(FileEdit(path, ours, new_text, version, delete=delete))
        back.shown.append(name + (" (new)" if ours is None else " (deleted)" if delete else ""))


async def _text(worktrees: Worktrees, record: AgentWorktree, rev: str, name: str) -> str | None:
    data = await worktrees.blob(record, rev, name, MAX_RETURNED_BYTES)
    if data is None or b"\0" in data:
        return None
    try:
        return decode_bytes(data)[0]
    except UndecodableBytes:
        return None


def merge_one(base: str | None, ours: str | None,
              theirs: str | None) -> tuple[str, bool] | str | None:
    """One file: base = what the agent started from (None: it created the file), ours = the
    workspace now (None: absent), theirs = the agent's version (None: it deleted the file).
    Returns (new text, delete) to propose, None when there is nothing to propose, or why it
    conflicts."""
    if theirs is None:  # the agent deleted it
        if ours is None:
            return None
        if ours == base:
            return "", True
        return "the agent deleted it, and the workspace's copy changed since it started"
    if base is None:  # the agent created it
        if ours is None:
            return theirs, False
        if ours == theirs:
            return None
        return "the agent created it, and the workspace got a different file of that name since"
    if ours is None:
        return "the agent changed it, and it was deleted from the workspace since"
    merged = rebase(base, theirs, ours)
    if merged.text is None:
        return ("the agent and the workspace changed the same lines since it started:\n"
                + merged.describe())
    if merged.text == ours:
        return None
    return merged.text, False


# -- the end of an isolated agent ---------------------------------------------------------------

# Proposes the edits in the session's review flow, labelled with the agent: the outcome text
# (after the user's review, or at once in an auto-applying mode) and the proposal ids.
Propose = Callable[[list[FileEdit]], Awaitable[tuple[str, list[str]]]]
MAX_NAMED = 20


async def bring_back(worktrees: Worktrees, record: AgentWorktree, end: Finished | str | None,
                     workspace: Path, documents: DocumentSource, rules: FileRules, keep: bool,
                     propose: Propose) -> str:
    """The agent ended (its changes committed on its branch by ``Worktrees.finish``): propose
    them, then remove the worktree unless asked to keep it or something was left out of the
    proposal. Returns what the parent's tool result says of it. A cancel while the user
    reviews leaves the worktree kept, its changes on its branch."""
    where = f"{record.path} (branch {record.branch})"
    if isinstance(end, str) or end is None:
        return (f"\n\nIts git worktree {where} could not be finished: {end or 'it did not end'}"
                ". It is left as it is; remove it with agent/removeWorktree.")
    if not end.kept:
        return "\n\nIt changed no file: its git worktree was removed."
    try:
        back = await collect(worktrees, record, workspace, documents, rules)
    except WorktreeError as exc:
        return (f"\n\nIts changes could not be read back ({exc}). They are committed on "
                f"branch {record.branch} in the git worktree {record.path}, which is kept.")
    lines = [""]
    if back.edits:
        outcome, ids = await propose(back.edits)
        lines.append(f"Its changes came back as proposal {', '.join(ids) or '(none)'} "
                     f"({len(back.shown)} files: {_names(back.shown)}), rebased onto the "
                     "workspace as it is now. The user's review:")
        lines.append(outcome.rstrip("\n"))
    elif not back.left_out:
        lines.append("Its changes are already in the workspace: nothing to propose.")
    if back.conflicts:
        lines.append("NOT proposed, they conflict with changes made in the workspace since it "
                     "started (the agent's version is on its branch):")
        lines += [f"- {c}" for c in back.conflicts]
    for title, names in (("NOT proposed, not text or too large", back.not_text),
                         ("NOT proposed, secret or protected (review them on the branch)",
                          back.guarded),
                         ("NOT proposed, outside the workspace", back.outside)):
        if names:
            lines.append(f"{title}: {_names(names)}")
    keep_it = keep or back.left_out
    if not keep_it:
        try:
            await worktrees.drop(record)
        except WorktreeError as exc:
            keep_it = True
            lines.append(f"Its worktree could not be removed: {exc}")
    if keep_it:
        why = "as asked" if keep else "for what was not proposed"
        lines.append(f"Its git worktree is kept ({why}): {where}, commit "
                     f"{(end.commit or '')[:12]}; see `git diff {record.base[:12]} "
                     f"{record.branch}`. Remove it with agent/removeWorktree when done.")
    else:
        lines.append("Its git worktree and branch were removed.")
    return "\n".join(lines)


def _names(names: list[str]) -> str:
    more = f" ... ({len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more
