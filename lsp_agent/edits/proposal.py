"""Review of one proposal: which hunks the user accepted, what lands where, what the model hears.

Pure logic, no I/O: the server feeds in the user's decision and the files' current texts and
sends out the resulting WorkspaceEdit and outcome text.

Hunk ids are qualified per file so they are unique across a proposal: ``f<n>.h<m>`` is hunk
``h<m>`` of the proposal's ``n``-th file (both 1-based, in proposal order), e.g. ``f1.h2``.
A review request passes a list of these ids, or ``"all"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lsprotocol.types import WorkspaceEdit

from lsp_agent.edits.diff import FileChange, make_file_change, target_text
from lsp_agent.edits.merge import Conflict, rebase
from lsp_agent.edits.workspace_edit import EditTarget, build_workspace_edit
from lsp_agent.types.edits import FileEdit
from lsp_agent.workspace.encoding import printable

if TYPE_CHECKING:  # the event models load with the first view (to_view)
    from lsp_agent.types.events import FileChangeView, ResolvedStatus

    ProposalStatus = Literal["pending", ResolvedStatus]

FileStatus = Literal["applied", "rebased", "conflict", "rejected", "unchanged"]
HunkSelection = Sequence[str] | Literal["all"]

MAX_QUOTED_CHARS = 8_000  # per file, for diffs and texts quoted back to the model


def qualify(file_number: int, hunk_id: str) -> str:
    """The proposal-wide id of hunk ``hunk_id`` in file ``file_number`` (1-based)."""
    return f"f{file_number}.{hunk_id}"


@dataclass(frozen=True)
class ReviewDecision:
    """The user's verdict as qualified hunk ids; every hunk is in exactly one of the two sets."""

    accepted: frozenset[str]
    rejected: frozenset[str]

    def accepted_in(self, file_number: int) -> set[str]:
        """Local ids (``h2``) accepted in file ``file_number``."""
        prefix = f"f{file_number}."
        return {q.removeprefix(prefix) for q in self.accepted if q.startswith(prefix)}


@dataclass(frozen=True)
class FilePlan:
    """What happens to one file of the proposal."""

    number: int  # 1-based position in the proposal
    path: Path
    uri: str
    display: str
    current_text: str | None  # the file as it is now (None: does not exist)
    target_text: str | None  # what to write; None when nothing is written
    version: int | None  # editor version to pin the edit to
    is_new: bool
    status: FileStatus
    accepted: tuple[str, ...]  # qualified ids
    rejected: tuple[str, ...]
    conflict: str | None = None  # why nothing was applied, for the user and the model
    conflicts: tuple[Conflict, ...] = ()
    is_deleted: bool = False  # writing it deletes the file

    @property
    def writes(self) -> bool:
        return self.status in ("applied", "rebased")


@dataclass(frozen=True)
class ApplicationPlan:
    proposal_id: str
    files: tuple[FilePlan, ...]

    def edit_targets(self) -> list[EditTarget]:
        return [
            EditTarget(f.uri, f.current_text, f.target_text, f.version, f.is_new, f.is_deleted)
            for f in self.files
            if f.writes and f.target_text is not None
        ]

    def workspace_edit(self) -> WorkspaceEdit:
        return build_workspace_edit(self.edit_targets())

    @property
    def has_writes(self) -> bool:
        return any(f.writes for f in self.files)

    def landed_ids(self) -> list[str]:
        """Accepted hunks that are in the files afterwards."""
        return [q for f in self.files if f.status != "conflict" for q in f.accepted]

    def rejected_ids(self) -> list[str]:
        return [q for f in self.files for q in f.rejected]

    def conflict_ids(self) -> list[str]:
        """Accepted hunks that were not applied because of a conflict."""
        return [q for f in self.files if f.status == "conflict" for q in f.accepted]


@dataclass
class Proposal:
    """Whole-file changes from one tool call, under review hunk by hunk."""

    id: str
    session_id: str
    tool_use_id: str
    files: list[FileChange]
    status: ProposalStatus = "pending"
    # The real path (symlinks resolved) of each file when it was proposed: the path the
    # permission check approved. A write that would land elsewhere is refused.
    approved_paths: dict[Path, Path] = field(default_factory=dict)

    @classmethod
    def from_edits(
        cls,
        proposal_id: str,
        session_id: str,
        tool_use_id: str,
        edits: Sequence[FileEdit],
        root: Path,
        context: int = 3,
    ) -> Proposal:
        """Build from tool edits; edits that change nothing are dropped."""
        files = [
            make_file_change(e.path, e.old_text, e.new_text, e.version, root, context, e.delete)
            for e in edits
        ]
        return cls(proposal_id, session_id, tool_use_id, [f for f in files if f.hunks])

    # ---------------------------------------------------------------- ids and decisions

    def hunk_ids(self) -> list[str]:
        """Every hunk's qualified id (``f1.h1``, ``f1.h2``, ``f2.h1``...), in file order."""
        return [qualify(n, h.id) for n, f in enumerate(self.files, 1) for h in f.hunks]

    def decide(self, accept: HunkSelection, reject: HunkSelection) -> ReviewDecision:
        """Validate the user's choice; hunks in neither list count as rejected."""
        if self.status != "pending":
            raise ValueError(f"proposal {self.id} is already {self.status}")
        valid = self.hunk_ids()
        accepted = self._expand(accept, valid, "accept")
        rejected = self._expand(reject, valid, "reject")
        both = accepted & rejected
        if both:
            raise ValueError(f"hunks both accepted and rejected: {', '.join(sorted(both))}")
        return ReviewDecision(
            accepted=frozenset(accepted),
            rejected=frozenset(set(valid) - accepted),
        )

    @staticmethod
    def _expand(selection: HunkSelection, valid: list[str], what: str) -> set[str]:
        if selection == "all":
            return set(valid)
        if isinstance(selection, str):
            raise ValueError(f"{what} must be a list of hunk ids or 'all', got {selection!r}")
        chosen = set(selection)
        unknown = chosen - set(valid)
        if unknown:
            raise ValueError(
                f"unknown hunk ids to {what}: {', '.join(sorted(unknown))}; "
                f"valid ids: {', '.join(valid) or 'none'}"
            )
        return chosen

    # ---------------------------------------------------------------- planning

    def plan_application(
        self,
        decision: ReviewDecision,
        current_texts: dict[Path, tuple[str | None, int | None]],
    ) -> ApplicationPlan:
        """Per file: the accepted target, rebased onto the user's current text if it moved.

        ``current_texts`` maps each file's path to (current text or None if absent, editor
        version or None if not open); it is only needed for files with accepted hunks.
        """
        plans = tuple(
            self._plan_file(n, change, decision, current_texts)
            for n, change in enumerate(self.files, 1)
        )
        return ApplicationPlan(self.id, plans)

    def _plan_file(
        self,
        number: int,
        change: FileChange,
        decision: ReviewDecision,
        current_texts: dict[Path, tuple[str | None, int | None]],
    ) -> FilePlan:
        local = decision.accepted_in(number)
        accepted = tuple(qualify(number, h.id) for h in change.hunks if h.id in local)
        rejected = tuple(qualify(number, h.id) for h in change.hunks if h.id not in local)
        base = _BaseFilePlan(number, change, accepted, rejected)
        if not accepted:
            return base.make(None, None, None, "rejected")
        if change.path not in current_texts:
            raise ValueError(f"no current text given for {change.path}")
        current, version = current_texts[change.path]
        target = target_text(change, local)
        assert target is not None  # accepted hunks always give a text
        return _plan_against_current(base, target, current, version)

    # ---------------------------------------------------------------- resolution

    def resolution_status(self, plan: ApplicationPlan) -> ResolvedStatus:
        landed, conflicted = plan.landed_ids(), plan.conflict_ids()
        if landed:
            everything = not conflicted and not plan.rejected_ids()
            return "accepted" if everything else "partially_accepted"
        return "conflict" if conflicted else "rejected"

    def resolve(self, plan: ApplicationPlan) -> ResolvedStatus:
        """Record that ``plan`` was carried out; returns the new status."""
        self._require_pending()
        status = self.status = self.resolution_status(plan)
        return status

    def cancel(self) -> None:
        self._require_pending()
        self.status = "cancelled"

    def fail(self) -> None:
        self._require_pending()
        self.status = "failed"

    def _require_pending(self) -> None:
        if self.status != "pending":
            raise ValueError(f"proposal {self.id} is already {self.status}")

    # ---------------------------------------------------------------- reporting

    def outcome_text(self, plan: ApplicationPlan, feedback: str | None = None) -> str:
        """The tool result the model receives once ``plan`` has been applied by the editor."""
        changes = {n: f for n, f in enumerate(self.files, 1)}
        lines = [_headline(plan)]
        for file_plan in plan.files:
            lines.extend(_file_outcome(file_plan, changes[file_plan.number]))
        if feedback:
            lines.append(f"User feedback (verbatim):\n{feedback}")
        return "\n".join(lines).rstrip("\n") + "\n"

    def not_applied_text(self, reason: str, feedback: str | None = None) -> str:
        """The tool result when the proposal was cancelled or the editor refused it."""
        text = f"Your edit was NOT applied ({reason}). No file was changed."
        if feedback:
            text += f"\nUser feedback (verbatim):\n{feedback}"
        return text + "\n"

    def to_view(self) -> list[FileChangeView]:
        from lsp_agent.types.events import FileChangeView, HunkView

        return [
            FileChangeView(
                uri=f.uri,
                path=f.display or str(f.path),
                is_new=f.is_new,
                is_deleted=f.deleted,
                version=f.version,
                diff=printable(f.diff),  # kept invalid bytes cannot travel as JSON text
                hunks=[
                    HunkView(id=qualify(n, h.id), header=h.header, diff=printable(h.diff))
                    for h in f.hunks
                ],
            )
            for n, f in enumerate(self.files, 1)
        ]


# -------------------------------------------------------------------- planning helpers


@dataclass(frozen=True)
class _BaseFilePlan:
    number: int
    change: FileChange
    accepted: tuple[str, ...]
    rejected: tuple[str, ...]

    def make(
        self,
        current: str | None,
        target: str | None,
        version: int | None,
        status: FileStatus,
        conflict: str | None = None,
        conflicts: tuple[Conflict, ...] = (),
    ) -> FilePlan:
        c = self.change
        return FilePlan(
            number=self.number,
            path=c.path,
            uri=c.uri,
            display=c.display or str(c.path),
            current_text=current,
            target_text=target,
            version=version,
            is_new=c.is_new,
            status=status,
            accepted=self.accepted,
            rejected=self.rejected,
            conflict=conflict,
            conflicts=conflicts,
            is_deleted=c.deleted,
        )


def _plan_against_current(
    base: _BaseFilePlan, target: str, current: str | None, version: int | None
) -> FilePlan:
    change = base.change
    if change.is_new:
        if current is None:
            return base.make(None, target, None, "applied")
        if current == target:
            return base.make(current, None, version, "unchanged")
        why = "a file was created at this path after the proposal; it was not overwritten"
        return base.make(current, None, version, "conflict", f"{why}.\n{_quote_file(current)}")
    if current is None:
        if change.deleted:
            return base.make(None, None, None, "unchanged")
        why = "the file was deleted after it was read; nothing was applied"
        return base.make(None, None, None, "conflict", why)
    if change.deleted:
        if current == change.old_text:
            return base.make(current, "", version, "applied")
        why = "the file was changed after it was read; it was not deleted"
        return base.make(current, None, version, "conflict", why)
    if current == change.old_text:
        return base.make(current, target, version, "applied")
    assert change.old_text is not None
    merged = rebase(change.old_text, target, current)
    if not merged.clean:
        return base.make(
            current, None, version, "conflict", merged.describe(), tuple(merged.conflicts)
        )
    if merged.text == current:
        return base.make(current, None, version, "unchanged")
    return base.make(current, merged.text, version, "rebased")


# -------------------------------------------------------------------- outcome helpers


def _headline(plan: ApplicationPlan) -> str:
    parts = []
    for label, ids in (
        ("applied", plan.landed_ids()),
        ("rejected", plan.rejected_ids()),
        ("conflicted", plan.conflict_ids()),
    ):
        if ids:
            parts.append(f"{len(ids)} {label}")
    return f"Review of your edit ({', '.join(parts) or 'no hunks'}):"


def _file_outcome(plan: FilePlan, change: FileChange) -> list[str]:
    name = plan.display
    out: list[str] = []
    accepted = ", ".join(plan.accepted)
    if plan.status == "applied" and plan.is_new:
        out.append(f"- {name}: created ({accepted} accepted).")
    elif plan.status == "applied" and plan.is_deleted:
        out.append(f"- {name}: deleted ({accepted} accepted).")
    elif plan.status == "applied":
        out.append(f"- {name}: {accepted} accepted and applied; the file now contains them.")
    elif plan.status == "rebased":
        out.append(
            f"- {name}: {accepted} accepted and applied on top of the user's newer edits to "
            "this file; line numbers may have moved, re-read it before editing it again."
        )
    elif plan.status == "unchanged":
        out.append(f"- {name}: {accepted} accepted; the file already had this content.")
    elif plan.status == "conflict":
        out.append(
            f"- {name}: CONFLICT, nothing in this file was applied ({accepted} accepted but "
            "not applied). Re-read the file and redo the change if it is still needed."
        )
        out.append((plan.conflict or "").rstrip("\n"))
    if plan.rejected:
        label = ("the file was NOT created" if plan.is_new else
                 "the file was NOT deleted" if plan.is_deleted else "these changes did NOT land")
        rejected = ", ".join(plan.rejected)
        out.append(f"- {name}: {rejected} rejected by the user; {label}:")
        out.append(_rejected_diff(plan, change).rstrip("\n"))
    return out


def _rejected_diff(plan: FilePlan, change: FileChange) -> str:
    rejected = {q.split(".", 1)[1] for q in plan.rejected}
    diff = "".join(h.diff for h in change.hunks if h.id in rejected)
    return _clip(diff)


def _quote_file(text: str) -> str:
    return f"Its current content:\n{_clip(text)}"


def _clip(text: str) -> str:
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return text[:MAX_QUOTED_CHARS] + f"\n... ({len(text) - MAX_QUOTED_CHARS} more characters)\n"
