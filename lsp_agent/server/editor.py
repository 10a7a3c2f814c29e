"""What the server needs from the editor: its open buffers, permission answers, edit application.

Each piece is a small adapter over pygls so the session layer never touches LSP types.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

from lsp_agent.edits.landing import ApplyReport, Verdict, has_landed, judge
from lsp_agent.edits.workspace_edit import (
    EditTarget,
    build_workspace_edit,
    needs_disk_creation,
    needs_disk_deletion,
    uri_to_path,
)
from lsp_agent.permissions.safe_write import (
    WriteRefused,
    WriteScope,
    delete_checked,
    write_texts_checked,
)
from lsp_agent.server.client_caps import ClientCaps
from lsp_agent.server.methods import REQUEST_PERMISSION
from lsp_agent.server.wire_positions import apply_content_changes
from lsp_agent.types.jsonutil import plain
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.documents import (
    DocumentSnapshot,
    FileReadError,
    disk_snapshot,
)
from lsp_agent.workspace.positions import Encoding

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

    from lsp_agent.types import events as ev

log = logging.getLogger(__name__)


def path_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


class EditorDocuments:
    """Open documents come from the editor's buffers (with their version), the rest from disk.

    The server's copy of each buffer is kept by pygls's workspace, but incremental changes are
    applied here, in the negotiated position encoding (pygls's own codec splits lines at form
    feeds and misplaces a column past the end of a last line). Every change to a buffer wakes
    whoever waits for one (the edit applier checking that an edit landed).
    """

    def __init__(self, ls: LanguageServer):
        self._ls = ls
        self._generations: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self.listeners: list[Callable[[str], None]] = []  # told each opened/changed/closed uri

    def _documents(self) -> dict[str, Any]:
        try:
            return self._ls.workspace.text_documents
        except RuntimeError:  # not initialized yet
            return {}

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return self.open_snapshot(path) or disk_snapshot(path)

    def open_snapshot(self, path: Path) -> DocumentSnapshot | None:
        """The editor's buffer of ``path`` with its version, or None when it is not open."""
        doc = self._documents().get(_key(path_uri(path)))
        if doc is not None and doc.version is not None:
            return DocumentSnapshot(path=path, text=doc.source, version=doc.version)
        return None

    def buffer(self, uri: str) -> str | None:
        """The open buffer's text, or None when the editor does not have ``uri`` open."""
        doc = self._documents().get(_key(uri))
        return doc.source if doc is not None and doc.version is not None else None

    def text_of(self, path: Path) -> str | None:
        """The text positions in ``path`` refer to; None when it cannot be read."""
        try:
            return self.snapshot(path).text
        except (OSError, FileReadError):
            return None

    def apply_change(self, params: lsp.DidChangeTextDocumentParams, encoding: Encoding) -> None:
        uri = params.text_document.uri
        doc = self._documents().get(_key(uri))
        if doc is None:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        text = apply_content_changes(doc.source, params.content_changes, encoding)
        self._ls.workspace.put_text_document(lsp.TextDocumentItem(
            uri=doc.uri, language_id=doc.language_id or "", version=params.text_document.version,
            text=text))
        self.note_change(uri)

    # -- waiting for the editor ------------------------------------------------------------

    def generation(self, uri: str) -> int:
        """How many times ``uri`` was opened, changed or closed so far."""
        return self._generations.get(_key(uri), 0)

    def note_change(self, uri: str) -> None:
        key = _key(uri)
        self._generations[key] = self._generations.get(key, 0) + 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        for listener in self.listeners:
            listener(uri)

    async def next_change(self, within: float) -> bool:
        """Wait until any buffer changes; False after ``within`` seconds without one."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, within)
        except TimeoutError:
            return False
        return True


def _key(uri: str) -> str:
    return unquote(uri)  # pygls keys its documents by the unquoted URI


class EditorPermissions:
    """Asks the user through ``agent/requestPermission``; silence past the timeout is a no."""

    def __init__(self, ls: LanguageServer, timeout: float):
        self._ls = ls
        self.timeout = timeout

    async def ask(self, asked: ev.PermissionAsked) -> PermissionAnswer:
        params: dict[str, Any] = {
            "sessionId": asked.session_id,
            "toolUseId": asked.tool_use_id,
            "tool": asked.tool,
            "input": asked.input,
            "reason": asked.reason,
        }
        if asked.agent_id:  # a subagent asks: the client can show which one
            params.update(agentId=asked.agent_id, parentToolUseId=asked.parent_tool_use_id)
        try:
            # Withdrawn with $/cancelRequest on timeout or when the turn is cancelled, so the
            # editor can close its dialog.
            raw = await self._ls.protocol.request_or_withdraw(  # type: ignore[attr-defined]
                REQUEST_PERMISSION, params, self.timeout)
        except TimeoutError:
            return PermissionAnswer("deny", source="timeout",
                                    message=f"no answer within {self.timeout:g} s")
        except Exception as exc:  # the client failed or does not implement the request
            return PermissionAnswer("deny", source="error",
                                    message=f"the editor could not ask the user: {exc}")
        from lsp_agent.server.protocol import PermissionAnswerParams  # with the first question

        try:
            answer = PermissionAnswerParams.model_validate(plain(raw) or {})
        except ValueError:
            return PermissionAnswer("deny", source="error",
                                    message="the editor sent an unreadable permission answer")
        return PermissionAnswer(answer.decision, answer.remember, answer.message, "user")


@dataclass
class _Watch:
    """An open document an edit was sent to: what it held, what it should hold."""

    target: EditTarget
    base: str
    answered_at: int = 0  # the document's generation when the editor answered


class EditorApplier:
    """Sends accepted edits to the editor in the shapes it declared, checks that they landed
    in its buffers, then makes the disk hold the same text.

    After ``applied: true`` each open document must show the edit (through ``didChange``)
    within ``verify_timeout`` seconds. One without any trace of it is reported unconfirmed (the
    proposal plans again against the buffer the editor really has); one holding other text is
    reported diverged (a conflict: nothing is written to disk for it). Files the editor does not
    have open, and new files, are written to disk by the server.
    """

    def __init__(self, ls: LanguageServer, timeout: float, editor_saves: bool,
                 documents: EditorDocuments | None = None, verify_timeout: float = 3.0):
        self._ls = ls
        self.timeout = timeout
        self.editor_saves = editor_saves
        self.verify_timeout = verify_timeout
        self.documents = documents or EditorDocuments(ls)
        self.caps = ClientCaps()
        self._showing: set[asyncio.Future[Any]] = set()

    @property
    def writes_to_disk(self) -> bool:
        """Whether the server writes the files itself (then it owns their encoding)."""
        return not self.editor_saves

    async def apply(self, targets: Sequence[EditTarget],
                    scopes: Mapping[Path, WriteScope] | None = None) -> ApplyReport:
        to_create = [t for t in targets if needs_disk_creation(t, self.caps.edits)]
        # Deletions go through the editor only with workspace/applyEdit and DeleteFile.
        to_delete = [t for t in targets if t.delete and (
            not self.caps.apply_edit or needs_disk_deletion(t, self.caps.edits))]
        for_editor = [t for t in targets if t not in to_create and t not in to_delete]
        moved = self._moved_since_planning([*for_editor, *to_delete])
        if moved:
            return ApplyReport.refused(f"{moved} changed after the edit was planned")
        await asyncio.to_thread(delete_targets, to_delete, scopes)
        watches = {t.uri: _Watch(t, base) for t in for_editor if not t.is_new and not t.delete
                   and (base := self.documents.buffer(t.uri)) is not None}
        if not self.caps.apply_edit:
            return await self._without_apply_edit(for_editor, to_create, watches, scopes)
        edit = build_workspace_edit(for_editor, caps=self.caps.edits)
        if edit.document_changes or edit.changes:
            applied, reason = await self._send(edit)
            if not applied:
                return ApplyReport.refused(reason)
        for uri, watch in watches.items():
            watch.answered_at = self.documents.generation(uri)
        report = await self._verify(watches)
        writes = {_path(t): t.target_text for t in for_editor
                  if t.uri not in watches and not t.delete}
        writes |= {_path(w.target): self.documents.buffer(uri) or w.target.target_text
                   for uri, w in watches.items()
                   if uri not in report.unconfirmed and uri not in report.diverged}
        if self.editor_saves:
            writes = {}
        try:
            await asyncio.to_thread(write_targets, writes | _texts(to_create), scopes)
        except WriteRefused as exc:
            raise WriteRefused(f"{exc}. The editor's buffer shows the change unsaved") from None
        self._show(to_create)
        return report

    def _moved_since_planning(self, targets: Sequence[EditTarget]) -> str | None:
        """The first open document whose buffer is no longer the text the edit was built on:
        without version pinning (a ``changes`` map) this check is what protects the typing."""
        for target in targets:
            buffer = self.documents.buffer(target.uri)
            if buffer is not None and not target.is_new and buffer != target.current_text:
                return target.uri
        return None

    async def _send(self, edit: lsp.WorkspaceEdit) -> tuple[bool, str]:
        params = lsp.ApplyWorkspaceEditParams(edit=edit, label="lsp-agent")
        try:
            result = await asyncio.wait_for(
                self._ls.workspace_apply_edit_async(params), self.timeout
            )
        except TimeoutError:
            return False, f"the editor did not answer workspace/applyEdit within {self.timeout:g} s"
        except Exception as exc:
            return False, f"the editor failed to apply the edit: {exc}"
        if not result.applied:
            return False, result.failure_reason or "the editor refused the edit"
        return True, ""

    async def _verify(self, watches: dict[str, _Watch]) -> ApplyReport:
        """Wait (bounded) until every watched buffer holds its edit, then judge the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.verify_timeout
        pending = dict(watches)
        while True:
            for uri, watch in list(pending.items()):
                buffer = self.documents.buffer(uri)
                if buffer is None or has_landed(watch.base, watch.target.target_text, buffer):
                    del pending[uri]  # landed (or closed, and then the disk is what counts)
            remaining = deadline - loop.time()
            if not pending or remaining <= 0 or not await self.documents.next_change(remaining):
                break
        report = ApplyReport(True)
        for uri, watch in pending.items():
            buffer = self.documents.buffer(uri) or ""
            after = self.documents.generation(uri) != watch.answered_at
            verdict = judge(watch.base, watch.target.target_text, buffer, after)
            if verdict is Verdict.DIVERGED:
                report.diverged[uri] = DIVERGED_REASON
            elif verdict is Verdict.NOT_YET:
                report.unconfirmed[uri] = UNCONFIRMED_REASON.format(seconds=self.verify_timeout)
        return report

    async def _without_apply_edit(self, for_editor: list[EditTarget], to_create: list[EditTarget],
                                  watches: dict[str, _Watch],
                                  scopes: Mapping[Path, WriteScope] | None) -> ApplyReport:
        """A client that did not declare ``workspace/applyEdit``: the server may not send it.
        Closed and new files are written to disk; open buffers cannot be changed."""
        report = ApplyReport(True)
        for uri in watches:
            report.diverged[uri] = NO_APPLY_EDIT_REASON
        writes = {_path(t): t.target_text for t in [*for_editor, *to_create]
                  if t.uri not in watches}
        await asyncio.to_thread(write_targets, writes, scopes)
        self._show(to_create)
        return report

    def _show(self, created: Sequence[EditTarget]) -> None:
        """Open files the server created itself, if the client can be asked to."""
        if not self.caps.show_document:
            return
        for target in created:
            params = lsp.ShowDocumentParams(uri=target.uri, take_focus=False)
            task = asyncio.ensure_future(self._ls.window_show_document_async(params))
            self._showing.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._showing.discard)
            task.add_done_callback(_log_show_failure)


UNCONFIRMED_REASON = (
    "the editor answered that it applied the edit, but its buffer showed no trace of it within "
    "{seconds:g} s (an editor may skip an edit it finds stale and still answer applied)")
DIVERGED_REASON = (
    "the editor answered that it applied the edit, but its buffer now holds different text "
    "than intended (the edit was misapplied, or typed over at once). lsp-agent wrote nothing "
    "to disk for this file; check the buffer (undo there if needed), then re-read the file")
NO_APPLY_EDIT_REASON = (
    "the file is open in the editor, and the editor did not declare workspace/applyEdit, so "
    "lsp-agent cannot change its buffer; nothing was written. Close the file and ask again")


def _path(target: EditTarget) -> Path:
    return uri_to_path(target.uri)


def _texts(targets: Sequence[EditTarget]) -> dict[Path, str]:
    return {_path(t): t.target_text for t in targets}


def _log_show_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("window/showDocument failed: %s", task.exception())


def write_targets(targets: dict[Path, str],
                  scopes: Mapping[Path, WriteScope] | None = None) -> None:
    """Write each file atomically in its own encoding, unless it already holds exactly that
    text; every path is checked again now (see ``workspace.safe_write``)."""
    write_texts_checked(targets, scopes or {})


def delete_targets(targets: Sequence[EditTarget],
                   scopes: Mapping[Path, WriteScope] | None = None) -> None:
    """Delete the files of accepted deletions, each path checked again now."""
    for target in targets:
        path = _path(target)
        delete_checked(path, (scopes or {}).get(path, WriteScope()))


class DiskApplier:
    """For headless use without an editor: accepted text goes straight to disk."""

    writes_to_disk = True

    async def apply(self, targets: Sequence[EditTarget],
                    scopes: Mapping[Path, WriteScope] | None = None) -> ApplyReport:
        await asyncio.to_thread(delete_targets, [t for t in targets if t.delete], scopes)
        await asyncio.to_thread(write_targets, _texts([t for t in targets if not t.delete]),
                                scopes)
        return ApplyReport(True)
