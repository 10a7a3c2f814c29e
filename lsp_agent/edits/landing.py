"""Did an applied edit land? Judging the editor's buffer after it answered ``applied: true``.

Editors differ in what ``applied: true`` means. VS Code sends the ``didChange`` of the edit
before answering; Neovim answers first and sends it about 150 ms later, answers ``true`` for
an edit it skipped as stale, and applies an edit pinned to version 0 without checking it, to
whatever lines are there now. So the server trusts the answer, then looks at the buffer.

Pure logic: ``base`` is the text the edit was computed on, ``target`` the text it should give,
``observed`` what the editor's buffer holds now (as its ``didChange`` notifications told us).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from lsp_agent.edits.diff import line_opcodes
from lsp_agent.edits.merge import rebase
from lsp_agent.workspace.positions import split_lines


class Verdict(Enum):
    LANDED = "landed"  # the buffer holds the edit (perhaps with the user's typing around it)
    NOT_YET = "not_yet"  # no trace of it: skipped, or its didChange has not come (yet)
    DIVERGED = "diverged"  # the buffer changed, but not into the intended text: misapplied


def has_landed(base: str, target: str, observed: str) -> bool:
    """The buffer holds the edit: it is the target, or the target's change merged into the
    buffer changes nothing (the user's typing around the edit may be there too)."""
    if observed == target:
        return True
    merged = rebase(base, target, observed)
    return merged.clean and merged.text == observed


def carries_traces(base: str, target: str, observed: str) -> bool:
    """Lines the edit adds also appear as added in the buffer, yet the edit did not land:
    the editor put (some of) it somewhere else."""
    added = _added_lines(base, target)
    return bool(added & _added_lines(base, observed))


def judge(base: str, target: str, observed: str, changed_after_answer: bool) -> Verdict:
    """What the buffer says about an edit the editor claims to have applied.

    A buffer that changed after the answer but not into the target was changed *by* the edit,
    wrongly (or the user typed over it at once; both need a human). A buffer that did not
    change after the answer either never got the edit (Neovim skipping a stale one; the user's
    typing from before the answer may be there) or got it wrong before answering, which shows
    as the edit's lines in the wrong place.
    """
    if has_landed(base, target, observed):
        return Verdict.LANDED
    if observed == base:
        return Verdict.NOT_YET
    if changed_after_answer or carries_traces(base, target, observed):
        return Verdict.DIVERGED
    return Verdict.NOT_YET


def _added_lines(old: str, new: str) -> set[str]:
    old_lines, new_lines = split_lines(old), split_lines(new)
    added: set[str] = set()
    for tag, _i1, _i2, j1, j2 in line_opcodes(old_lines, new_lines):
        if tag in ("insert", "replace"):
            added.update(line.strip() for line in new_lines[j1:j2] if line.strip())
    return added


@dataclass
class ApplyReport:
    """What became of one ``workspace/applyEdit`` (or of writing the files without one).

    ``applied`` false: the editor refused (or did not answer); nothing is known to have landed.
    Otherwise every file landed except those in ``unconfirmed`` (no trace of the edit in the
    buffer: plan again against the buffer) and ``diverged`` (the buffer holds something else:
    a conflict for the user and the model), each keyed by URI with the reason.
    """

    applied: bool
    reason: str = ""
    unconfirmed: dict[str, str] = field(default_factory=dict)
    diverged: dict[str, str] = field(default_factory=dict)

    @classmethod
    def refused(cls, reason: str) -> ApplyReport:
        return cls(False, reason)
