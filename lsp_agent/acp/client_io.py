"""Files through the ACP client: reads of its (maybe unsaved) buffers with ``fs/read_text_file``
and accepted edits written with ``fs/write_text_file``, when the client offers them; the disk
otherwise.

ACP's file requests name a session. The session is the one whose turn (or review) is running:
the front end sets ``CURRENT_SESSION`` before it starts one, and the tasks of that turn inherit
it. Outside a turn the session whose workspace holds the path is used.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.edits.landing import ApplyReport
from lsp_agent.edits.workspace_edit import EditTarget, uri_to_path
from lsp_agent.permissions.safe_write import (
    WriteRefused,
    WriteScope,
    delete_checked,
    resolve_for_write,
    write_texts_checked,
)
from lsp_agent.workspace.documents import (
    MAX_READ_BYTES,
    DocumentSnapshot,
    disk_snapshot,
    disk_snapshot_async,
    is_small_regular_file,
)

log = logging.getLogger(__name__)

CURRENT_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "acp_current_session", default=None)
CLIENT_FS_TIMEOUT = 30.0  # seconds for one fs/* request before the disk is used


@dataclass
class ClientFs:
    """What the client offers, and how to reach it (set at ``initialize``)."""

    conn: Any = None  # acp's AgentSideConnection
    can_read: bool = False
    can_write: bool = False
    session_for: Callable[[Path], str | None] = lambda path: None

    def session_id(self, path: Path) -> str | None:
        return CURRENT_SESSION.get() or self.session_for(path)


class ClientDocuments:
    """A DocumentSource: the client's view of a file when it can read, else the disk.

    Only regular text files the disk would give us are asked for: a folder, FIFO, device or
    oversized file is refused by the disk reader with its usual reason, before the client is
    involved. The encoding is the disk's, so that a disk write keeps its bytes."""

    def __init__(self, fs: ClientFs):
        self.fs = fs

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return disk_snapshot(path)  # synchronous callers (worker threads): the disk

    async def read_snapshot(self, path: Path) -> DocumentSnapshot:
        disk = await disk_snapshot_async(path)  # FileNotFoundError, FileReadError pass through
        session_id = self.fs.session_id(path)
        if (not self.fs.can_read or session_id is None
                or not is_small_regular_file(path, MAX_READ_BYTES)):
            return disk
        try:
            answer = await asyncio.wait_for(
                self.fs.conn.read_text_file(session_id=session_id, path=str(path)),
                CLIENT_FS_TIMEOUT)
        except Exception as exc:  # a client error or silence: the disk is the next best
            log.warning("fs/read_text_file %s failed (%s); reading the disk", path, exc)
            return disk
        return DocumentSnapshot(path=path, text=answer.content, version=None,
                                encoding=disk.encoding)


class ClientWriter:
    """An EditApplier: accepted text goes through ``fs/write_text_file`` (so the editor's
    buffers stay right), or straight to disk when the client cannot write. Either way the path
    is checked again just before the write."""

    def __init__(self, fs: ClientFs):
        self.fs = fs

    @property
    def writes_to_disk(self) -> bool:
        return not self.fs.can_write

    async def apply(self, targets: Sequence[EditTarget],
                    scopes: Mapping[Path, WriteScope] | None = None) -> ApplyReport:
        for target in [t for t in targets if t.delete]:  # ACP has no delete: the disk's
            path = uri_to_path(target.uri)
            await asyncio.to_thread(delete_checked, path, (scopes or {}).get(path, WriteScope()))
        targets = [t for t in targets if not t.delete]
        texts = {uri_to_path(t.uri): t.target_text for t in targets}
        if self.writes_to_disk:
            await asyncio.to_thread(write_texts_checked, texts, scopes or {})
            return ApplyReport(True)
        report = ApplyReport(True)
        written = 0
        for target, (path, text) in zip(targets, texts.items(), strict=True):
            scope = (scopes or {}).get(path, WriteScope())
            await asyncio.to_thread(resolve_for_write, path, scope)  # WriteRefused passes up
            reason = await self._write(path, text)
            if reason is None:
                written += 1
            elif written == 0:
                return ApplyReport.refused(reason)
            else:  # some files of the edit are written: this one is a conflict to look at
                report.diverged[target.uri] = reason
        return report

    async def _write(self, path: Path, text: str) -> str | None:
        session_id = self.fs.session_id(path)
        if session_id is None:
            raise WriteRefused(f"{path}: no ACP session holds it")
        try:
            await asyncio.wait_for(self.fs.conn.write_text_file(
                session_id=session_id, path=str(path), content=text), CLIENT_FS_TIMEOUT)
        except Exception as exc:
            log.warning("fs/write_text_file %s failed: %s", path, exc)
            return f"the editor did not write {path}: {exc}"
        return None
