"""Rebase the agent's accepted change onto text the user has edited since the agent read it.

A line-based 3-way merge (``merge3``): base is the text the agent saw, ours the agent's
accepted result, theirs the user's current text. Regions changed on one side only take that
side; regions changed identically on both are fine; anything else is a conflict, and then no
merged text is produced at all, so the user's typing is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import merge3

from lsp_agent.edits.diff import split_lines

MAX_DESCRIBED_LINES = 20


@dataclass(frozen=True)
class Conflict:
    """A region both sides changed differently; line numbers refer to the user's current text."""

    start_line: int  # 1-based first line of the region in the current text
    base_lines: tuple[str, ...]  # what the agent saw
    agent_lines: tuple[str, ...]  # what the agent wants there
    user_lines: tuple[str, ...]  # what the user has there now

    @property
    def end_line(self) -> int:
        """Last line of the region (inclusive); ``start_line - 1`` when the user's side is empty."""
        return self.start_line + len(self.user_lines) - 1

    def location(self) -> str:
        if not self.user_lines:
            return f"before line {self.start_line}"
        if self.end_line == self.start_line:
            return f"line {self.start_line}"
        return f"lines {self.start_line}-{self.end_line}"

    def describe(self) -> str:
        return (
            f"Conflict at {self.location()} of the current text: "
            "the user changed this region after it was read.\n"
            f"User's current text:\n{_quote(self.user_lines)}"
            f"Agent's version:\n{_quote(self.agent_lines)}"
        )


def _quote(lines: tuple[str, ...]) -> str:
    if not lines:
        return "    (nothing)\n"
    shown = ["    " + line.rstrip("\r\n") + "\n" for line in lines[:MAX_DESCRIBED_LINES]]
    if len(lines) > MAX_DESCRIBED_LINES:
        shown.append(f"    ... ({len(lines) - MAX_DESCRIBED_LINES} more lines)\n")
    return "".join(shown)


@dataclass
class MergeResult:
    text: str | None  # the merged text; None when there are conflicts
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts

    def describe(self) -> str:
        return "\n".join(c.describe() for c in self.conflicts)


def rebase(base: str, ours: str, theirs: str) -> MergeResult:
    """Merge the agent's change (base -> ours) into the user's text (base -> theirs)."""
    if theirs == base or ours == theirs:
        return MergeResult(text=ours)
    if ours == base:
        return MergeResult(text=theirs)
    base_lines, our_lines, their_lines = split_lines(base), split_lines(ours), split_lines(theirs)
    merger = merge3.Merge3(base_lines, our_lines, their_lines)
    sides = {"unchanged": base_lines, "same": our_lines, "a": our_lines, "b": their_lines}
    merged: list[str] = []
    conflicts: list[Conflict] = []
    for region in merger.merge_regions():
        kind = region[0]
        if kind == "conflict":
            _, z1, z2, a1, a2, b1, b2 = cast(tuple[str, int, int, int, int, int, int], region)
            conflicts.append(
                Conflict(
                    start_line=b1 + 1,
                    base_lines=tuple(base_lines[z1:z2]),
                    agent_lines=tuple(our_lines[a1:a2]),
                    user_lines=tuple(their_lines[b1:b2]),
                )
            )
            continue
        merged.extend(sides[kind][region[1] : region[2]])
    if conflicts:
        return MergeResult(text=None, conflicts=conflicts)
    return MergeResult(text="".join(merged))
