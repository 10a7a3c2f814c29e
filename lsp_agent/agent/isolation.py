"""A subagent isolated in a git worktree: its tools, rules and sandbox rooted there.

The child's workspace is its worktree (``workspace/worktrees.py``), so Read, Edit, Write,
Grep, Glob and Bash resolve paths and run there; the permission gate judges paths against it
(the settings' rules re-rooted to it, deny rules kept for the main workspace too) and refuses,
without asking, any write outside it (``PermissionGate.confined``); the sandbox makes it the
only writable folder of shell commands.

Edits are not proposals to the user's buffers: the worktree is another folder, which the
editor does not show. An edit the session's mode lets the agent propose (default, acceptEdits,
auto, bypassPermissions) is written at once in the worktree, its final path checked at write
time against the worktree (a link to the main workspace or elsewhere is refused); plan mode
and dontAsk refuse edits as they do in the session; protected files still ask. The user
reviews all of the worktree's changes as one proposal when the agent ends
(``agent/worktree_return.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.rules import Rule
from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, write_text_checked
from lsp_agent.permissions.sandbox import Sandbox
from lsp_agent.tools.base import ToolContext
from lsp_agent.types.edits import FileEdit


class WorktreeWriter:
    """The proposal sink of an isolated child: writes inside its worktree, nowhere else."""

    def __init__(self, root: Path, shown: str, where: str = "the worktree",
                 after: str = " The user reviews the branch when you are done."):
        self.root = root
        self.shown = shown  # how results name the worktree (its branch)
        self.where, self.after = where, after
        self.written: list[Path] = []

    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        scope = WriteScope.inside(self.root)
        done: list[str] = []
        for change in changes:
            try:
                await asyncio.to_thread(write_text_checked, change.path, change.new_text, scope)
            except WriteRefused as exc:
                kept = f" (already written: {', '.join(done)})" if done else ""
                return f"Not written: {exc}{kept}"
            except OSError as exc:
                return f"Not written: {change.path}: {exc.strerror or exc}"
            self.written.append(change.path)
            done.append(self._display(change.path))
        return f"Written in {self.where} ({self.shown}): {', '.join(done)}.{self.after}"

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def isolated_gate(gate: PermissionGate, root: Path) -> PermissionGate:
    """``gate`` for a child working in ``root``: same mode, remembered answers and tables;
    rules re-rooted; writes confined to ``root``."""
    settings = gate.settings
    old = gate.workspace

    def rerooted(rules: list[Rule], keep_original: bool) -> list[Rule]:
        moved = [dataclasses.replace(r, root=root) if r.root in (None, old) else r
                 for r in rules]
        # A deny or ask rule of the main workspace keeps speaking of it as well.
        return moved + [r for r in rules if r.root in (None, old)] if keep_original else moved

    settings = dataclasses.replace(settings, allow=rerooted(settings.allow, False),
                                   ask=rerooted(settings.ask, True),
                                   deny=rerooted(settings.deny, True))
    return dataclasses.replace(gate, workspace=root, settings=settings, confined=True)


def isolated_context(ctx: ToolContext, root: Path, writer: WorktreeWriter) -> ToolContext:
    """A tool context rooted in the worktree. No code intelligence (it serves the main
    workspace) and no checkpoints (the worktree's history is its branch)."""
    sandbox = ctx.sandbox
    if isinstance(sandbox, Sandbox):
        sandbox = dataclasses.replace(sandbox, workspace=root)
    return dataclasses.replace(ctx, workspace=root, proposals=writer, sandbox=sandbox,
                               code_intel=None, file_history=None)
