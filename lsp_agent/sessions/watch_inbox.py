"""The watcher's inbox (docs/autonomy.md, "The watcher"): the items the user finds when a
background session prepared a fix, a granted change landed, or the budget ran out, and the
status of each item's proposals as the user reviews them.

It is kept per workspace in the state dir (watch_inbox_store.py) and read back when a server
starts on the workspace: a pending proposal whose files are still as it was prepared against
can be accepted after the restart (watch_restored.py); one whose files changed comes back
``stale``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.sessions.watch_inbox_store import (
    MAX_FAILURE_CHARS,
    MAX_PROPOSAL_BYTES,
    InboxStore,
    Record,
    SavedFile,
    next_sequence,
    payload,
    proposal_size,
)
from lsp_agent.store.redact import Redactor

if TYPE_CHECKING:
    from lsp_agent.types import watch as wt
    from lsp_agent.types.watch import InboxItem, InboxKind, InboxProposalStatus
else:  # the inbox's models load with its first item (types/lazy.py)
    from lsp_agent.types.lazy import watch as wt

log = logging.getLogger(__name__)

# A resolved proposal's status as the inbox shows it.
INBOX_STATUS: dict[str, InboxProposalStatus] = {
    "accepted": "accepted", "partially_accepted": "accepted", "rejected": "rejected",
    "conflict": "stale", "failed": "stale", "cancelled": "withdrawn"}


class UnknownInboxItem(KeyError):
    pass


class Inbox:
    """The items in the order they came, and their proposals' statuses. ``send`` tells the
    client of an item (new or changed), in its wire shape; ``state_dir`` is where the items
    are kept (None: nowhere, they live as long as the server)."""

    def __init__(self, send: Callable[[dict[str, Any]], None],
                 state_dir: Callable[[], Path] | None = None):
        self.items: list[InboxItem] = []
        self._send = send
        self._state_dir = state_dir
        self._statuses: dict[str, InboxProposalStatus] = {}  # proposal id -> status
        self._records: dict[str, Record] = {}  # item id -> how it is kept (dismissed ones too)
        self._dirty: set[str] = set()  # workspace URIs whose file is behind
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False
        self.redactor = Redactor.from_environment()  # for what is kept or sent to a model

    def new_item(self, kind: InboxKind, workspace: Path, title: str, detail: str,
                 **extra: Any) -> InboxItem:
        return wt.InboxItem(id=uuid.uuid4().hex[:12], kind=kind, title=title, detail=detail,
                         created_at=time.time(), workspace_uri=from_fs_path(str(workspace)),
                         **extra)

    def knows(self, proposal_id: str) -> bool:
        return proposal_id in self._statuses

    def status(self, proposal_id: str) -> InboxProposalStatus | None:
        return self._statuses.get(proposal_id)

    def set_status(self, proposal_id: str, status: InboxProposalStatus) -> None:
        self._statuses[proposal_id] = status

    def resolved(self, proposal_id: str, status: str) -> None:
        """A proposal was reviewed, failed or withdrawn (its ProposalResolved status)."""
        self._statuses[proposal_id] = INBOX_STATUS.get(status, "stale")
        for record in self._records.values():
            if record.contents and record.contents.pop(proposal_id, None) is not None:
                self._touch(record)

    def wire(self, item: InboxItem) -> dict[str, Any]:
        item.proposals = [wt.InboxProposal(id=i, status=self._statuses.get(i, "stale"))
                          for i in item.proposal_ids]
        return item.wire()

    def listed(self) -> list[dict[str, Any]]:
        return [self.wire(item) for item in self.items]

    def post(self, item: InboxItem) -> None:
        """Add (or update) an item and tell the client."""
        if item not in self.items:
            self.items.append(item)
        record = self._records.setdefault(item.id, Record(item, updated_at=item.created_at))
        self._touch(record)
        self._send(self.wire(item))

    def remove(self, item_id: str) -> InboxItem:
        item = next((i for i in self.items if i.id == item_id), None)
        if item is None:
            raise UnknownInboxItem(f"unknown inbox item: {item_id}")
        self.items.remove(item)
        record = self._records.get(item_id)
        if record is not None:
            record.dismissed = True
            record.contents = None  # nobody will review them
            self._touch(record)
        return item

    # -- what is kept besides the item ---------------------------------------------------------

    def note_failure(self, item: InboxItem, output: str, key: str) -> None:
        """The failure that caused ``item`` (kept with secrets masked, capped)."""
        record = self._records.setdefault(item.id, Record(item, updated_at=item.created_at))
        record.failure = self.redactor.text(output[-MAX_FAILURE_CHARS:])
        record.failure_key = key

    def keep_contents(self, item: InboxItem, proposal_id: str, files: list[SavedFile]) -> None:
        """What a pending proposal changes, so that it can be accepted after a restart (a
        proposal over MAX_PROPOSAL_BYTES, or whose texts hold a secret, is kept without them
        and comes back stale: a secret never reaches the state dir, and a masked text must
        never be written back into the user's file)."""
        record = self._records.setdefault(item.id, Record(item, updated_at=item.created_at))
        if self._statuses.get(proposal_id) != "pending":
            return  # reviewed already
        if record.contents is None:
            record.contents = {}
        keep = proposal_size(files) <= MAX_PROPOSAL_BYTES and not self._holds_secret(files)
        record.contents[proposal_id] = files if keep else None
        self._touch(record)

    def _holds_secret(self, files: list[SavedFile]) -> bool:
        return any(self.redactor.text(text) != text
                   for f in files for text in (f.old_text, f.new_text) if text)

    def restored_contents(self, proposal_id: str) -> tuple[InboxItem, list[SavedFile]] | None:
        """A pending proposal that came back from an earlier server, and its files."""
        for record in self._records.values():
            files = (record.contents or {}).get(proposal_id)
            if files is not None and record.restored \
                    and self._statuses.get(proposal_id) == "pending":
                return record.item, files
        return None

    def tried_keys(self, workspace: Path) -> set[str]:
        """The failures an item (not dismissed) was made for: tried already."""
        uri = from_fs_path(str(workspace))
        return {r.failure_key for r in self._records.values()
                if r.failure_key and not r.dismissed and r.item.workspace_uri == uri}

    # -- back from disk -------------------------------------------------------------------------

    def restore(self, records: Iterable[Record], stale: dict[str, str]) -> None:
        """Items an earlier server kept; ``stale``: pending proposals that cannot be applied
        as prepared any more (id -> why). Items already here are left as they are."""
        for record in records:
            if record.item.id in self._records:
                continue
            record.restored = True
            changed = False
            self._records[record.item.id] = record
            for proposal in record.item.proposals:
                status = proposal.status
                if status == "pending" and proposal.id in stale:
                    status = "stale"
                    (record.contents or {}).pop(proposal.id, None)
                    log.info("inbox: proposal %s comes back stale: %s", proposal.id,
                             stale[proposal.id])
                    changed = True
                self._statuses[proposal.id] = status
            if not record.dismissed:
                self.items.append(record.item)
            if changed:
                self._touch(record)
        self.items.sort(key=lambda i: i.created_at)

    # -- writing --------------------------------------------------------------------------------

    def _touch(self, record: Record) -> None:
        record.updated_at = time.time()
        if record.item.workspace_uri and self._state_dir is not None and not self._closed:
            self._dirty.add(record.item.workspace_uri)
            self._save_soon()

    def _save_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop (a test, or the server's last moments): now
            return
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one write for the changes of this loop iteration
        while self._dirty:
            writes = self._writes()
            try:
                await asyncio.to_thread(_write_all, writes)
            except Exception:
                log.warning("the watcher's inbox could not be saved", exc_info=True)

    def _writes(self) -> list[tuple[InboxStore, dict[str, Any], int]]:
        """The files to write now and their content (made here, on the event loop)."""
        assert self._state_dir is not None
        dirty, self._dirty = self._dirty, set()
        writes = []
        for uri in dirty:
            fs = to_fs_path(uri)
            if not fs:
                continue
            records = [r for r in self._records.values() if r.item.workspace_uri == uri]
            for record in records:
                self.wire(record.item)  # its proposals' statuses as they are now
            writes.append((InboxStore(self._state_dir(), Path(fs)), payload(records),
                           next_sequence()))
        return writes

    def flush(self) -> None:
        """Write what is behind, now (the server is closing)."""
        if self._state_dir is None:
            return
        try:
            _write_all(self._writes())
        except Exception:
            log.warning("the watcher's inbox could not be saved", exc_info=True)

    def close(self) -> None:
        """Save, then stop saving: the shutdown withdraws pending proposals only because
        their sessions end; kept, they are still pending for the next server."""
        self.flush()
        self._closed = True
        if self._flushing is not None:
            self._flushing.cancel()


def _write_all(writes: list[tuple[InboxStore, dict[str, Any], int]]) -> None:
    for store, data, sequence in writes:
        store.write(data, sequence)
