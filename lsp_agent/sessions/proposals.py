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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lsp_agent.agent import events as ev
from lsp_agent.edits.landing import ApplyReport
from lsp_agent.edits.proposal import ApplicationPlan, FilePlan, HunkSelection, Proposal
from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.tools.base import FileEdit
from lsp_agent.workspace.documents import FileReadError

if TYPE_CHECKING:
    from lsp_agent.sessions.session import Session

log = logging.getLogger(__name__)
AUTO_APPLY_MODES = frozenset({"acceptEdits", "bypassPermissions"})
# A second plan when the user typed between planning and applying, or when the editor said
# it applied an edit that its buffer does not show.
MAX_APPLY_ATTEMPTS = 2


class EditApplier(Protocol):
    async def apply(self, targets: Sequence[EditTarget]) -> ApplyReport:
        """Make ``targets`` real through the editor (and on disk); what became of each."""
        ...


class UnknownProposal(KeyError):
    pass


@dataclass
class ReviewResult:
    proposal_id: str
    status: str
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


class ProposalBook:
    def __init__(self, session: Session, applier: EditApplier):
        self._session = session
        self._applier = applier
        self._waiting: dict[str, _Waiting] = {}

    @property
    def pending_ids(self) -> list[str]:
        return list(self._waiting)

    def owns(self, proposal_id: str) -> bool:
        return proposal_id in self._waiting

    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        session = self._session
        proposal = Proposal.from_edits(
            f"p-{uuid.uuid4().hex[:10]}", session.id, tool_use_id, changes, session.workspace
        )
        if not proposal.files:
            return "No change: the new text is identical to the current text. Nothing to review."
        auto = session.mode in AUTO_APPLY_MODES
        session.emit(ev.ProposalCreated(proposal_id=proposal.id, tool_use_id=tool_use_id,
                                        files=proposal.to_view(), auto_apply=auto))
        if auto:
            result = await self._carry_out(proposal, "all", [], None)
            return result.outcome
        waiting = _Waiting(proposal, asyncio.get_running_loop().create_future())
        self._waiting[proposal.id] = waiting
        try:
            return await waiting.answer
        except asyncio.CancelledError:
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
            result = await self._carry_out(waiting.proposal, accept, reject, feedback)
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
        for attempt in range(MAX_APPLY_ATTEMPTS + 1):
            plan = _keeping(proposal.plan_application(decision, self._current_texts(proposal)),
                            settled)
            todo = [f for f in plan.files if f.writes and f.number not in settled]
            if not todo or attempt == MAX_APPLY_ATTEMPTS:
                break
            report = await self._applier.apply([_edit_target(f) for f in todo])
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
                    log.info("proposal %s: %s unconfirmed; planning again", proposal.id, f.uri)
                else:
                    settled[f.number] = f
        if todo and not answered and not settled:  # the editor refused every attempt
            proposal.fail()
            outcome = proposal.not_applied_text(f"the editor did not apply it: {reason}", feedback)
            self._emit_resolved(proposal, "failed", feedback=feedback)
            return ReviewResult(proposal.id, "failed", outcome=outcome,
                                conflict_details=[reason])
        plan = _keeping(plan, {**{f.number: _as_conflict(f, reason) for f in todo}, **settled})
        status = proposal.resolve(plan)
        result = _result(proposal, plan, status, proposal.outcome_text(plan, feedback))
        self._emit_resolved(proposal, status, result, feedback)
        return result

    def _current_texts(self, proposal: Proposal) -> dict[Path, tuple[str | None, int | None]]:
        current: dict[Path, tuple[str | None, int | None]] = {}
        for change in proposal.files:
            try:
                snap = self._session.documents.snapshot(change.path)
                current[change.path] = (snap.text, snap.version)
            except FileNotFoundError:
                current[change.path] = (None, None)
            except FileReadError as exc:
                raise ValueError(f"cannot read {change.path} to apply the edit: {exc}") from exc
        return current

    def _drop(self, proposal: Proposal, status: str) -> None:
        if proposal.status == "pending":
            proposal.cancel()
            self._emit_resolved(proposal, "cancelled")

    def _emit_resolved(
        self, proposal: Proposal, status: str, result: ReviewResult | None = None,
        feedback: str | None = None,
    ) -> None:
        self._session.emit(ev.ProposalResolved(
            proposal_id=proposal.id, status=status,
            accepted=result.applied if result else [],
            rejected=result.rejected if result else [],
            conflicts=result.conflicts if result else [],
            feedback=feedback,
        ))


def _edit_target(plan: FilePlan) -> EditTarget:
    assert plan.target_text is not None  # only files that write are sent
    return EditTarget(plan.uri, plan.current_text, plan.target_text, plan.version, plan.is_new)


def _as_conflict(plan: FilePlan, reason: str) -> FilePlan:
    return replace(plan, status="conflict", target_text=None, conflict=reason)


def _keeping(plan: ApplicationPlan, settled: dict[int, FilePlan]) -> ApplicationPlan:
    """``plan`` with the files already settled in an earlier attempt as they were settled."""
    return ApplicationPlan(plan.proposal_id, tuple(settled.get(f.number, f) for f in plan.files))


def _result(proposal: Proposal, plan: ApplicationPlan, status: str, outcome: str) -> ReviewResult:
    details = [f.conflict for f in plan.files if f.conflict]
    return ReviewResult(proposal.id, status, plan.landed_ids(), plan.rejected_ids(),
                        plan.conflict_ids(), details, outcome)
