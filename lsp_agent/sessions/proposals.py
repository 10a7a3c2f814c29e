"""Proposals waiting for the user's review, and carrying out the review.

An edit tool call waits here until the user decides (``agent/review``), unless the session's
mode applies edits at once. Review plans the application against the files' current text
(rebasing onto the user's typing), sends the WorkspaceEdit to the editor, and answers both the
reviewer and the waiting tool call.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from lsp_agent.edits.landing import ApplyReport
from lsp_agent.edits.proposal import (
    ApplicationPlan,
    FilePlan,
    HunkSelection,
    Proposal,
    ReviewDecision,
)
from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.permissions.safe_write import (
    WriteRefused,
    WriteScope,
    existing_mode,
    prepare_text_write,
    real_path,
    resolve_for_write,
)
from lsp_agent.tools.base import FileHistory
from lsp_agent.types import events as ev
from lsp_agent.types.edits import FileEdit
from lsp_agent.types.permissions import Mode
from lsp_agent.workspace.documents import DocumentSource, FileReadError, snapshot_async

log = logging.getLogger(__name__)
AUTO_APPLY_MODES = frozenset({"acceptEdits", "bypassPermissions"})
# A second plan when the user typed between planning and applying, or when the editor said
# it applied an edit that its buffer does not show.
MAX_APPLY_ATTEMPTS = 2


class EditApplier(Protocol):
    async def apply(self, targets: Sequence[EditTarget],
                    scopes: Mapping[Path, WriteScope] | None = None) -> ApplyReport:
        """Make ``targets`` real through the editor (and on disk); what became of each. Disk
        writes are checked against ``scopes`` when they happen and raise WriteRefused."""
        ...


class UnknownProposal(KeyError):
    pass


@dataclass
class ReviewResult:
    proposal_id: str
    status: ev.ResolvedStatus
    applied: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    conflict_details: list[str] = field(default_factory=list)
    outcome: str = ""

    def wire(self) -> dict[str, object]:
        return {
            "proposalId": self.proposal_id,
            "status": self.status,
            "applied": self.applied,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "conflictDetails": self.conflict_details,
        }


@dataclass
class _Waiting:
    proposal: Proposal
    answer: asyncio.Future[str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ProposalHost:
    """The little a proposal book needs of its session."""

    session_id: str
    workspace: Path
    documents: DocumentSource
    emit: Callable[[ev.AgentEvent], Any]
    mode: Callable[[], Mode]  # read at each proposal: the user may switch modes mid-session
    # Told of the files before the editor or the disk gets them, and after (the session's
    # checkpoint keeps what they were and what the agent made of them, for a rewind).
    file_history: FileHistory | None = None


class ProposalBook:
    def __init__(self, host: ProposalHost, applier: EditApplier):
        self._host = host
        self._applier = applier
        self._waiting: dict[str, _Waiting] = {}

    @property
    def pending_ids(self) -> list[str]:
        return list(self._waiting)

    @property
    def reviewing(self) -> bool:
        """A review of one of them is being carried out now."""
        return any(w.lock.locked() for w in self._waiting.values())

    def owns(self, proposal_id: str) -> bool:
        return proposal_id in self._waiting

    def pending(self, proposal_id: str) -> Proposal | None:
        """The proposal waiting for review, whole (a front end shows its files' full texts)."""
        waiting = self._waiting.get(proposal_id)
        return waiting.proposal if waiting is not None else None

    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        host = self._host
        proposal = await asyncio.to_thread(  # diffing large files must not stall the loop
            Proposal.from_edits,
            f"p-{uuid.uuid4().hex[:10]}", host.session_id, tool_use_id, changes, host.workspace,
        )
        if not proposal.files:
            return "No change: the new text is identical to the current text. Nothing to review."
        proposal.approved_paths = await asyncio.to_thread(
            lambda: {f.path: real_path(f.path) for f in proposal.files})
        auto = host.mode() in AUTO_APPLY_MODES
        host.emit(ev.ProposalCreated(proposal_id=proposal.id, tool_use_id=tool_use_id,
                                        files=proposal.to_view(), auto_apply=auto))
        if auto:
            result = await self._carry_out(proposal, "all", [], None)
            return result.outcome
        waiting = _Waiting(proposal, asyncio.get_running_loop().create_future())
        self._waiting[proposal.id] = waiting
        try:
            return await waiting.answer
        except asyncio.CancelledError:
            if not waiting.lock.locked():  # a review under way finishes and reports itself
                self._drop(proposal, "cancelled")
            raise
        finally:
            self._waiting.pop(proposal.id, None)

    async def review(
        self, proposal_id: str, accept: HunkSelection, reject: HunkSelection, feedback: str | None
    ) -> ReviewResult:
        waiting = self._waiting.get(proposal_id)
        if waiting is None:
            raise UnknownProposal(proposal_id)
        async with waiting.lock:  # two reviews of one proposal: the second sees it decided
            try:
                result = await self._carry_out(waiting.proposal, accept, reject, feedback)
            finally:
                if waiting.answer.cancelled():  # the turn was cancelled meanwhile
                    self._drop(waiting.proposal, "cancelled")  # unless the review decided it
        if not waiting.answer.done():
            waiting.answer.set_result(result.outcome)
        return result

    def cancel_pending(self) -> None:
        for waiting in list(self._waiting.values()):
            if not waiting.answer.done():
                waiting.answer.cancel()

    # -- carrying out a decision -------------------------------------------------------------

    async def _carry_out(
        self, proposal: Proposal, accept: HunkSelection, reject: HunkSelection,
        feedback: str | None,
    ) -> ReviewResult:
        decision = proposal.decide(accept, reject)  # ValueError: bad ids, reported to reviewer
        settled: dict[int, FilePlan] = {}  # files whose fate is known: landed or diverged
        reason, answered = "", False
        todo: list[FilePlan] = []
        try:
            for attempt in range(MAX_APPLY_ATTEMPTS + 1):
                current = await self._current_texts(proposal, decision)
                plan = _keeping(await asyncio.to_thread(
                    proposal.plan_application, decision, current), settled)
                todo = [f for f in plan.files if f.writes and f.number not in settled]
                if not todo or attempt == MAX_APPLY_ATTEMPTS:
                    break
                report = await self._apply(proposal, todo)
                if not report.applied:
                    reason = report.reason
                    log.info("proposal %s not applied (%s); planning again", proposal.id, reason)
                    continue
                answered = True
                for f in todo:
                    if f.uri in report.diverged:
                        settled[f.number] = _as_conflict(f, report.diverged[f.uri])
                    elif f.uri in report.unconfirmed:
                        reason = report.unconfirmed[f.uri]
                        log.info("proposal %s: %s unconfirmed; planning again", proposal.id,
                                 f.uri)
                    else:
                        settled[f.number] = f
        except WriteRefused as exc:
            return self._failed(proposal, str(exc), feedback)
        if todo and not answered and not settled:  # the editor refused every attempt
            return self._failed(proposal, f"the editor did not apply it: {reason}", feedback,
                                detail=reason)
        plan = _keeping(plan, {**{f.number: _as_conflict(f, reason) for f in todo}, **settled})
        status = proposal.resolve(plan)
        result = _result(proposal, plan, status, proposal.outcome_text(plan, feedback))
        self._emit_resolved(proposal, status, result, feedback)
        return result

    async def _apply(self, proposal: Proposal, todo: list[FilePlan]) -> ApplyReport:
        """Check every target again, then send the edit; WriteRefused when one must not be
        written (then nothing was sent to the editor, unless the disk changed in between)."""
        targets = {Path(f.path): f.target_text for f in todo if f.target_text is not None}
        deleted = {Path(f.path) for f in todo if f.is_deleted}
        workspace = real_path(self._host.workspace)
        scopes = {path: WriteScope(roots=(workspace,), expected=proposal.approved_paths.get(path))
                  for path in targets}
        try:
            await asyncio.to_thread(self._check_targets, targets, scopes)
        except WriteRefused as exc:
            raise WriteRefused(f"the server refused to write it: {exc}") from None
        history = self._host.file_history
        if history is not None:
            await history.before_write(list(targets))
        try:
            report = await self._applier.apply([_edit_target(f) for f in todo], scopes)
        except WriteRefused as exc:
            raise WriteRefused(f"it was not written to disk: {exc}") from None
        if history is not None and report.applied:
            await history.after_write(list(targets), {p: t for p, t in targets.items()
                                                      if p not in deleted})
        return report

    def _check_targets(self, targets: dict[Path, str], scopes: dict[Path, WriteScope]) -> None:
        """Checked before the editor is involved: its own save would go through a swapped link
        just the same. The encoding matters only when the server writes the disk itself;
        otherwise the editor owns it."""
        writes_to_disk = getattr(self._applier, "writes_to_disk", True)
        for path, text in targets.items():
            if writes_to_disk:
                prepare_text_write(path, text, scopes[path])
            else:
                existing_mode(resolve_for_write(path, scopes[path]))

    def _failed(self, proposal: Proposal, reason: str, feedback: str | None,
                detail: str | None = None) -> ReviewResult:
        """``reason`` completes the model's "NOT applied: ..."; ``detail`` (default: the
        reason) is what the reviewer is shown."""
        proposal.fail()
        outcome = proposal.not_applied_text(reason, feedback)
        self._emit_resolved(proposal, "failed", feedback=feedback)
        return ReviewResult(proposal.id, "failed", outcome=outcome,
                            conflict_details=[detail or reason])

    async def _current_texts(
        self, proposal: Proposal, decision: ReviewDecision
    ) -> dict[Path, tuple[str | None, int | None]]:
        """The current text of each file with accepted hunks (the others are not read)."""
        current: dict[Path, tuple[str | None, int | None]] = {}
        for number, change in enumerate(proposal.files, 1):
            if not decision.accepted_in(number):
                continue
            approved = proposal.approved_paths.get(change.path)
            if approved is not None:  # a link swapped in must not even be read (secrets)
                await asyncio.to_thread(_still_leads_to, change.path, approved)
            try:
                snap = await snapshot_async(self._host.documents, change.path)
                current[change.path] = (snap.text, snap.version)
            except FileNotFoundError:
                current[change.path] = (None, None)
            except FileReadError as exc:
                raise ValueError(f"cannot read {change.path} to apply the edit: {exc}") from exc
        return current

    def _drop(self, proposal: Proposal, status: ev.ResolvedStatus) -> None:
        if proposal.status == "pending":
            proposal.cancel()
            self._emit_resolved(proposal, "cancelled")

    def _emit_resolved(
        self, proposal: Proposal, status: ev.ResolvedStatus, result: ReviewResult | None = None,
        feedback: str | None = None,
    ) -> None:
        self._host.emit(ev.ProposalResolved(
            proposal_id=proposal.id, status=status,
            accepted=result.applied if result else [],
            rejected=result.rejected if result else [],
            conflicts=result.conflicts if result else [],
            feedback=feedback,
        ))


def _edit_target(plan: FilePlan) -> EditTarget:
    assert plan.target_text is not None  # only files that write are sent
    return EditTarget(plan.uri, plan.current_text, plan.target_text, plan.version, plan.is_new,
                      plan.is_deleted)


def _as_conflict(plan: FilePlan, reason: str) -> FilePlan:
    return replace(plan, status="conflict", target_text=None, conflict=reason)


def _keeping(plan: ApplicationPlan, settled: dict[int, FilePlan]) -> ApplicationPlan:
    """``plan`` with the files already settled in an earlier attempt as they were settled."""
    return ApplicationPlan(plan.proposal_id, tuple(settled.get(f.number, f) for f in plan.files))


def _result(proposal: Proposal, plan: ApplicationPlan, status: ev.ResolvedStatus,
            outcome: str) -> ReviewResult:
    details = [f.conflict for f in plan.files if f.conflict]
    return ReviewResult(proposal.id, status, plan.landed_ids(), plan.rejected_ids(),
                        plan.conflict_ids(), details, outcome)


def _still_leads_to(path: Path, approved: Path) -> None:
    try:
        resolve_for_write(path, WriteScope(expected=approved))
    except WriteRefused as exc:
        raise WriteRefused(f"the server refused to apply it: {exc}") from None
