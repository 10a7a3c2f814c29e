"""The watcher's wire types (docs/protocol.md "The watcher"): inbox items and the events the
companion hears. Plain data, shared by the watcher (sessions/watcher.py) and the LSP handlers
that send them (server/watch_api.py); server/protocol.py re-exports them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lsp_agent.types.events import Wire

InboxKind = Literal["test_failure", "diagnostic", "auto_applied", "budget"]
InboxProposalStatus = Literal["pending", "accepted", "rejected", "stale", "withdrawn"]
WatchEventKind = Literal["testsFailed", "testsPassed", "fixPrepared", "autoApplied",
                         "budgetReached", "fixDeclined"]


class InboxProposal(Wire):
    id: str
    status: InboxProposalStatus


class TriageView(Wire):
    """The model triage's decision on a test failure (``watch.triage``)."""

    fix: bool  # worth a fix session
    reason: str
    error: str | None = None  # the triage failed; the fix was prepared anyway


class InboxItem(Wire):
    id: str
    kind: InboxKind
    title: str
    detail: str
    session_id: str | None = None  # none for auto_applied and budget items
    proposal_ids: list[str] = Field(default_factory=list)
    proposals: list[InboxProposal] = Field(default_factory=list)
    created_at: float
    workspace_uri: str | None = None
    uri: str | None = None  # the document it is about (diagnostic, auto_applied)
    triage: TriageView | None = None  # test_failure with watch.triage: what the triage decided


class WatchEvent(Wire):
    kind: WatchEventKind
    workspace_uri: str
    detail: str
    at: float  # seconds since the epoch
