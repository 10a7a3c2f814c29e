"""The watcher's inbox on disk (docs/autonomy.md, "The inbox after a restart"): its items, per
workspace, in ``<stateDir>/watch/<workspace slug>/inbox.json``, so a restarted server shows what
is still waiting and a fix prepared before the restart can still be accepted.

Each record keeps the item as the client saw it (its proposals and their statuses), whether the
user dismissed it, when it changed, the failure that caused it (its output's tail, secrets
masked) and, for each proposal still pending, what it changes: per file the path, the real path
the permission check approved, the text it was prepared against and the text it proposes.

Bounded: at most MAX_ITEMS records (the oldest resolved or dismissed go first), proposal texts
up to MAX_PROPOSAL_BYTES each (a larger one is kept without them and comes back stale), records
older than RETENTION_DAYS dropped (the sessions' retention). Written atomically (a reader sees
the old file or the new, whole). A file that cannot be read whole is moved aside, never
overwritten, and named in a warning; one bad record is left out with a warning, the rest load.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.store.layout import atomic_write_json, ensure_private_dir, workspace_slug

if TYPE_CHECKING:
    from lsp_agent.types.watch import InboxItem

log = logging.getLogger(__name__)
_WRITING = threading.Lock()
_WRITTEN: dict[Path, int] = {}  # the newest payload written per file (of this process)
_SEQUENCE = itertools.count(1)


def next_sequence() -> int:
    """When a payload was made, for InboxStore.write (one order for the whole process)."""
    return next(_SEQUENCE)

STORE_VERSION = 1
FILE_NAME = "inbox.json"
MAX_ITEMS = 100
MAX_PROPOSAL_BYTES = 512_000
MAX_FILE_BYTES = 64 * 1024 * 1024  # larger: not read (moved aside, with a warning)
MAX_FAILURE_CHARS = 4_000
RETENTION_DAYS = 30.0
MAX_SET_ASIDE = 3  # unreadable copies kept beside the store


@dataclass(frozen=True)
class SavedFile:
    """One file of a pending proposal, as it was prepared."""

    path: str
    approved: str  # its real path when proposed: a write that would land elsewhere is refused
    old_text: str | None  # None: the proposal creates it
    new_text: str
    delete: bool = False

    def wire(self) -> dict[str, Any]:
        return {"path": self.path, "approved": self.approved, "oldText": self.old_text,
                "newText": self.new_text, "delete": self.delete}

    @classmethod
    def parse(cls, data: Any) -> SavedFile:
        if not isinstance(data, dict):
            raise ValueError("a proposal file must be an object")
        old = data.get("oldText")
        fields = (data.get("path"), data.get("approved"), data.get("newText"))
        if not all(isinstance(v, str) for v in fields) or not (old is None or isinstance(old, str)):
            raise ValueError("a proposal file needs path, approved, newText (and oldText)")
        path, approved, new = fields
        return cls(str(path), str(approved), old, str(new), data.get("delete") is True)


@dataclass
class Record:
    """One inbox item as it is kept."""

    item: InboxItem  # with its proposals' statuses in ``item.proposals``
    dismissed: bool = False
    updated_at: float = 0.0
    failure: str | None = None  # the output that caused it (secrets masked, capped)
    failure_key: str | None = None  # failure_key() of it: tried already, after a restart too
    contents: dict[str, list[SavedFile] | None] | None = None  # pending proposal -> its files
    restored: bool = False  # read back from an earlier server (not itself kept)

    def wire(self) -> dict[str, Any]:
        return {"item": self.item.wire(), "dismissed": self.dismissed,
                "updatedAt": self.updated_at, "failure": self.failure,
                "failureKey": self.failure_key,
                "contents": {pid: None if files is None else [f.wire() for f in files]
                             for pid, files in (self.contents or {}).items()}}

    @classmethod
    def parse(cls, data: Any) -> Record:
        if not isinstance(data, dict):
            raise ValueError("a record must be an object")
        from lsp_agent.types.watch import InboxItem  # a model: loads with the first record

        item = InboxItem.model_validate(data.get("item"))
        contents: dict[str, list[SavedFile] | None] = {}
        for pid, files in (data.get("contents") or {}).items():
            contents[str(pid)] = None if files is None else [SavedFile.parse(f) for f in files]
        failure = data.get("failure")
        key = data.get("failureKey")
        updated = data.get("updatedAt")
        return cls(item, dismissed=data.get("dismissed") is True,
                   updated_at=float(updated) if isinstance(updated, int | float)
                   else item.created_at,
                   failure=failure if isinstance(failure, str) else None,
                   failure_key=key if isinstance(key, str) else None, contents=contents)

    @property
    def settled(self) -> bool:
        """Nothing in it waits for the user any more (dropped first when over the count)."""
        return self.dismissed or all(p.status != "pending" for p in self.item.proposals)


def proposal_size(files: list[SavedFile]) -> int:
    return sum(len(f.new_text) + len(f.old_text or "") for f in files)


class InboxStore:
    def __init__(self, state_dir: Path, workspace: Path):
        self.path = Path(state_dir) / "watch" / workspace_slug(workspace) / FILE_NAME
        self.writable = True  # False when an unreadable file could not be set aside

    def load(self, now: float | None = None) -> tuple[list[Record], list[str]]:
        """The records kept (retention applied) and warnings about what could not be read.
        A file not read whole is moved aside first, so the next save cannot lose it."""
        warnings: list[str] = []
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [f"{self.path}: the watcher's inbox cannot be read ({exc})"]
        try:
            if size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise ValueError("not an inbox file (no 'items' list)")
            if data.get("version") != STORE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, this server reads "
                                 f"{STORE_VERSION}")
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
            return [], [self._set_aside(f"cannot be read ({exc})")]
        records: list[Record] = []
        bad = 0
        for number, raw in enumerate(data["items"], 1):
            try:
                records.append(Record.parse(raw))
            except (ValueError, TypeError, AttributeError) as exc:  # ValidationError too
                bad += 1
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                warnings.append(f"{self.path}: inbox item {number} is not valid ({first}); "
                                "left out")
        if bad:
            warnings.append(self._set_aside(f"{bad} of its items were left out", copy=True))
        return retained(records, now), warnings

    def save(self, records: list[Record], now: float | None = None) -> None:
        self.write(payload(records, now))

    def write(self, data: dict[str, Any], sequence: int | None = None) -> None:
        """Write what payload() made (off the event loop: it is file I/O). ``sequence``: when
        it was made; a write made earlier than the one on disk is skipped (two writers: the
        background one and the last one at shutdown)."""
        if not self.writable:
            return
        with _WRITING:
            if sequence is not None:
                if sequence <= _WRITTEN.get(self.path, -1):
                    return
                _WRITTEN[self.path] = sequence
            ensure_private_dir(self.path.parent)
            atomic_write_json(self.path, data)

    def _set_aside(self, why: str, copy: bool = False) -> str:
        """Keep the unreadable file beside the store (at most MAX_SET_ASIDE of them)."""
        aside = self.path.with_name(f"{FILE_NAME}.bad-{int(time.time() * 1000)}")
        try:
            if copy:
                aside.write_bytes(self.path.read_bytes())
                os.chmod(aside, 0o600)
            else:
                os.replace(self.path, aside)
            for old in sorted(self.path.parent.glob(f"{FILE_NAME}.bad-*"))[:-MAX_SET_ASIDE]:
                old.unlink(missing_ok=True)
        except OSError as exc:
            self.writable = False
            return (f"{self.path}: the watcher's inbox {why}; it could not be set aside "
                    f"({exc}), so it is not written this session")
        message = f"{self.path}: the watcher's inbox {why}; the file is kept as {aside.name}"
        log.warning("%s", message)
        return message


def payload(records: list[Record], now: float | None = None) -> dict[str, Any]:
    """The file's content (made on the event loop: the items are live objects)."""
    return {"version": STORE_VERSION, "items": [r.wire() for r in retained(records, now)]}


def retained(records: list[Record], now: float | None = None) -> list[Record]:
    """Records within the retention period, at most MAX_ITEMS: the settled ones go first,
    oldest first."""
    now = time.time() if now is None else now
    fresh = [r for r in records if now - r.updated_at <= RETENTION_DAYS * 86400]
    over = len(fresh) - MAX_ITEMS
    if over <= 0:
        return fresh
    order = sorted(fresh, key=lambda r: (not r.settled, r.updated_at))
    dropped = {id(r) for r in order[:over]}
    return [r for r in fresh if id(r) not in dropped]
