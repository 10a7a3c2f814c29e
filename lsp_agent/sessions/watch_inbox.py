"""The watcher's inbox (docs/autonomy.md, "The watcher"): the items the user finds when a
background session prepared a fix, a granted change landed, or the budget ran out, and the
status of each item's proposals as the user reviews them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pygls.uris import from_fs_path

from lsp_agent.types.watch import InboxItem, InboxKind, InboxProposal, InboxProposalStatus

# A resolved proposal's status as the inbox shows it.
INBOX_STATUS: dict[str, InboxProposalStatus] = {
    "accepted": "accepted", "partially_accepted": "accepted", "rejected": "rejected",
    "conflict": "stale", "failed": "stale", "cancelled": "withdrawn"}


class UnknownInboxItem(KeyError):
    pass


class Inbox:
    """The items in the order they came, and their proposals' statuses. ``send`` tells the
    client of an item (new or changed), in its wire shape."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self.items: list[InboxItem] = []
        self._send = send
        self._statuses: dict[str, InboxProposalStatus] = {}  # proposal id -> status

    def new_item(self, kind: InboxKind, workspace: Path, title: str, detail: str,
                 **extra: Any) -> InboxItem:
        return InboxItem(id=uuid.uuid4().hex[:12], kind=kind, title=title, detail=detail,
                         created_at=time.time(), workspace_uri=from_fs_path(str(workspace)),
                         **extra)

    def knows(self, proposal_id: str) -> bool:
        return proposal_id in self._statuses

    def set_status(self, proposal_id: str, status: InboxProposalStatus) -> None:
        self._statuses[proposal_id] = status

    def resolved(self, proposal_id: str, status: str) -> None:
        """A proposal was reviewed, failed or withdrawn (its ProposalResolved status)."""
        self._statuses[proposal_id] = INBOX_STATUS.get(status, "stale")

    def wire(self, item: InboxItem) -> dict[str, Any]:
        item.proposals = [InboxProposal(id=i, status=self._statuses.get(i, "stale"))
                          for i in item.proposal_ids]
        return item.wire()

    def listed(self) -> list[dict[str, Any]]:
        return [self.wire(item) for item in self.items]

    def post(self, item: InboxItem) -> None:
        """Add (or update) an item and tell the client."""
        if item not in self.items:
            self.items.append(item)
        self._send(self.wire(item))

    def remove(self, item_id: str) -> InboxItem:
        item = next((i for i in self.items if i.id == item_id), None)
        if item is None:
            raise UnknownInboxItem(f"unknown inbox item: {item_id}")
        self.items.remove(item)
        return item
