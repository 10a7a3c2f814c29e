"""The watcher over LSP (docs/autonomy.md, "The watcher"; docs/protocol.md): thin handlers.
The watcher itself -- triggers, triage, budgets, the background sessions, the inbox -- lives in
sessions/watcher.py; this module hands it what the editor says (saves, typing, diagnostics) and
answers ``agent/inboxList``, ``agent/inboxDismiss``, ``agent/watchStatus``,
``agent/watchApprove`` and ``agent/watchPause``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.uris import to_fs_path

from lsp_agent.server.fanout import on_notification
from lsp_agent.server.session_methods import workspace_of
from lsp_agent.sessions.watch import Approvals, DailyCost
from lsp_agent.sessions.watch_inbox import UnknownInboxItem

if TYPE_CHECKING:
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
    from lsp_agent.sessions.manager import SessionManager
    from lsp_agent.sessions.proposals import EditApplier
    from lsp_agent.sessions.watcher import Watcher
    from lsp_agent.types.editor import EditorContext
    from lsp_agent.workspace.documents import DocumentSource
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

log = logging.getLogger(__name__)

INBOX = "agent/inbox"  # notification
INBOX_LIST = "agent/inboxList"
WATCH_STATUS = "agent/watchStatus"
WATCH_APPROVE = "agent/watchApprove"
WATCH_PAUSE = "agent/watchPause"
METHODS = [INBOX_LIST, WATCH_STATUS, WATCH_APPROVE, WATCH_PAUSE, p.INBOX_DISMISS]


class ServerHost:
    """The watcher's view of the language server (sessions/watcher.py, WatchHost)."""

    def __init__(self, server: AgentServer):
        self._server = server

    @property
    def manager(self) -> SessionManager:
        return self._server.manager

    @property
    def documents(self) -> DocumentSource:
        return self._server.documents

    @property
    def applier(self) -> EditApplier:
        return self._server.applier

    def state_dir(self) -> Path:
        return self._server.wiring.state_dir()

    def watch_options(self) -> Any:
        return self._server.options.watch

    def workspace_for(self, path: Path) -> Path:
        return self._server.workspace_for(path)

    def open_version(self, path: Path) -> int | None:
        snapshot = self._server.documents.open_snapshot(path)
        return snapshot.version if snapshot is not None else None

    def context_in(self, context: EditorContext) -> EditorContext:
        return self._server.positions.context_in(context)

    def send_inbox(self, item: dict[str, Any]) -> None:
        self._server.protocol.notify(INBOX, {"item": item})

    def send_watch_event(self, event: dict[str, Any]) -> None:
        self._server.protocol.notify(p.WATCH_EVENT, event)


def watcher_for(server: AgentServer) -> Watcher:
    from lsp_agent.sessions.watcher import Watcher

    return Watcher(ServerHost(server))


def register(server: AgentServer) -> None:
    def on_save(params: lsp.DidSaveTextDocumentParams) -> None:
        fs = to_fs_path(params.text_document.uri)
        if fs:
            server.watcher.on_save(Path(fs))

    def on_change(params: lsp.DidChangeTextDocumentParams) -> None:
        server.watcher.on_change(params.text_document.uri)

    def on_initialized(params: lsp.InitializedParams) -> None:
        server.watcher.start(server.root)

    on_notification(server, lsp.TEXT_DOCUMENT_DID_SAVE, on_save)
    on_notification(server, lsp.TEXT_DOCUMENT_DID_CHANGE, on_change)
    on_notification(server, lsp.INITIALIZED, on_initialized)

    @server.feature(p.DIAGNOSTICS_CHANGED)
    def diagnostics_changed(ls: AgentServer, params: Any) -> None:
        try:
            args = p.parse(p.DiagnosticsChangedParams, params)
        except JsonRpcInvalidParams as exc:  # a notification has no answer: log it
            log.warning("%s: %s", p.DIAGNOSTICS_CHANGED, exc)
            return
        ls.watcher.on_diagnostics(args.uri, [d.wire() for d in args.diagnostics], full=True)

    @server.feature(INBOX_LIST)
    async def inbox_list(ls: AgentServer, params: Any) -> dict[str, Any]:
        await ls.watcher.ready()  # with what an earlier server kept
        return {"items": ls.watcher.inbox.listed()}

    @server.feature(p.INBOX_DISMISS)
    def inbox_dismiss(ls: AgentServer, params: Any) -> dict[str, Any]:
        try:
            ls.watcher.dismiss(p.parse(p.InboxDismissParams, params).id)
        except UnknownInboxItem as exc:
            raise JsonRpcInvalidParams(exc.args[0]) from None
        return {"dismissed": True}

    @server.feature(WATCH_STATUS)
    async def status(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        config, warnings = ls.watcher.config(workspace)
        approved = config is not None and await asyncio.to_thread(
            Approvals(ls.watcher.state_dir()).approved, workspace, config)
        spent = await asyncio.to_thread(DailyCost(ls.watcher.state_dir(), workspace).spent)
        place = ls.watcher.places.get(workspace)
        return {"enabled": bool(config and config.enabled), "paused": ls.watcher.paused,
                "testCommand": config.test_command if config else None,
                "source": config.source if config else None,
                "approved": approved,
                "warnings": warnings + ls.watcher.inbox_warnings.get(workspace, []),
                "autoApply": list(config.auto_apply) if config else [],
                "speculative": bool(config and config.speculative),
                "triage": bool(config and config.triage),
                # The model the triage asks: its own setting, else the classifier's.
                "triageModel": (config.triage_model or ls.manager.settings.classifier_model)
                if config and config.triage else None,
                "spentTodayUsd": round(spent, 6),
                "dailyCostUsd": config.daily_cost_usd if config else None,
                "activity": place.activity if place else "idle",
                "ticks": place.ticks if place else 0}

    @server.feature(WATCH_APPROVE)
    async def approve(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        config, _ = ls.watcher.config(workspace)
        if config is None:
            raise JsonRpcInvalidRequest("this workspace has no watcher settings to approve")
        await asyncio.to_thread(Approvals(ls.watcher.state_dir()).approve, workspace, config)
        ls.watcher.start(workspace)
        return {"approved": True, "testCommand": config.test_command}

    @server.feature(WATCH_PAUSE)
    def pause(ls: AgentServer, params: Any) -> dict[str, Any]:
        ls.watcher.paused = p.parse(p.PauseParams, params).paused
        return {"paused": ls.watcher.paused}
