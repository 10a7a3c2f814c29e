"""What the server needs from the editor: its open buffers, permission answers, edit application.

Each piece is a small adapter over pygls so the session layer never touches LSP types.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, write_texts_checked
from lsp_agent.server.protocol import REQUEST_PERMISSION, PermissionAnswerParams
from lsp_agent.types import events as ev
from lsp_agent.types.jsonutil import plain
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.documents import DocumentSnapshot, disk_snapshot

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


def path_uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


class EditorDocuments:
    """Open documents come from the editor's buffers (with their version), the rest from disk."""

    def __init__(self, ls: LanguageServer):
        self._ls = ls

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return self.open_snapshot(path) or disk_snapshot(path)

    def open_snapshot(self, path: Path) -> DocumentSnapshot | None:
        """The editor's buffer of ``path`` with its version, or None when it is not open."""
        try:
            docs = self._ls.workspace.text_documents
        except RuntimeError:  # not initialized yet
            docs = {}
        doc = docs.get(path_uri(path))
        if doc is not None and doc.version is not None:
            return DocumentSnapshot(path=path, text=doc.source, version=doc.version)
        return None


class EditorPermissions:
    """Asks the user through ``agent/requestPermission``; silence past the timeout is a no."""

    def __init__(self, ls: LanguageServer, timeout: float):
        self._ls = ls
        self.timeout = timeout

    async def ask(self, asked: ev.PermissionAsked) -> PermissionAnswer:
        params = {
            "sessionId": asked.session_id,
            "toolUseId": asked.tool_use_id,
            "tool": asked.tool,
            "input": asked.input,
            "reason": asked.reason,
        }
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
        try:
            answer = PermissionAnswerParams.model_validate(plain(raw) or {})
        except ValueError:
            return PermissionAnswer("deny", source="error",
                                    message="the editor sent an unreadable permission answer")
        return PermissionAnswer(answer.decision, answer.remember, answer.message, "user")


class EditorApplier:
    """Sends a WorkspaceEdit to the editor, then makes sure the disk holds the accepted text."""

    def __init__(self, ls: LanguageServer, timeout: float, editor_saves: bool):
        self._ls = ls
        self.timeout = timeout
        self.editor_saves = editor_saves

    @property
    def writes_to_disk(self) -> bool:
        """Whether the server writes the files itself (then it owns their encoding)."""
        return not self.editor_saves

    async def apply(self, edit: lsp.WorkspaceEdit, targets: dict[Path, str],
                    scopes: Mapping[Path, WriteScope] | None = None) -> tuple[bool, str]:
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
        if not self.editor_saves:
            try:
                await asyncio.to_thread(write_targets, targets, scopes)
            except WriteRefused as exc:
                raise WriteRefused(f"{exc}. The editor's buffer shows the change unsaved") from None
        return True, ""


def write_targets(targets: dict[Path, str],
                  scopes: Mapping[Path, WriteScope] | None = None) -> None:
    """Write each file atomically in its own encoding, unless it already holds exactly that
    text; every path is checked again now (see ``workspace.safe_write``)."""
    write_texts_checked(targets, scopes or {})


class DiskApplier:
    """For headless use without an editor: accepted text goes straight to disk."""

    writes_to_disk = True

    async def apply(self, edit: lsp.WorkspaceEdit, targets: dict[Path, str],
                    scopes: Mapping[Path, WriteScope] | None = None) -> tuple[bool, str]:
        await asyncio.to_thread(write_targets, targets, scopes)
        return True, ""
