"""The pygls language server: LSP in, session calls out. Handlers stay a few lines long."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import lsp_method
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent import PROTOCOL_VERSION, __version__
from lsp_agent.code_intel.bridge_methods import BRIDGE_METHODS
from lsp_agent.server import (
    actions,
    dream_api,
    extensions_api,
    generated_code_cache,
    memory_api,
    session_methods,
    views_api,
    watch_api,
)
from lsp_agent.server.client_caps import ClientCaps
from lsp_agent.server.editor import EditorApplier, EditorDocuments, EditorPermissions
from lsp_agent.server.event_frames import notify_event
from lsp_agent.server.fanout import on_notification
from lsp_agent.server.init_options import InitializationOptions
from lsp_agent.server.jsonrpc import RobustProtocol
from lsp_agent.server.progress import TurnProgress
from lsp_agent.server.wire_positions import WirePositions
from lsp_agent.server.wiring import Wiring

if TYPE_CHECKING:  # sessions (and the agent, its tools...) load with the first session
    from lsp_agent.server import protocol as p
    from lsp_agent.sessions.manager import SessionManager
    from lsp_agent.sessions.session import Session
    from lsp_agent.sessions.watcher import Watcher
    from lsp_agent.types import events as ev
    from lsp_agent.types.editor import EditorContext
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

log = logging.getLogger(__name__)

CUSTOM_METHODS = [p.NEW_SESSION, p.PROMPT, p.CANCEL, p.SET_MODE, p.REVIEW, p.LIST_SESSIONS,
                  p.CONTEXT, p.COMPACT, p.SET_MODEL, p.RESUME_SESSION, p.SESSION_HISTORY,
                  p.FORK_SESSION, p.RENAME_SESSION, p.DELETE_SESSION, p.PROMPT_HISTORY,
                  p.REWIND, p.CHECKPOINTS, p.TASKS, p.WORKTREES, p.REMOVE_WORKTREE,
                  *extensions_api.METHODS, *memory_api.METHODS, *dream_api.METHODS,
                  *watch_api.METHODS, *views_api.METHODS]


PYTHON_FEATURE_CAPABILITIES = ("definition_provider", "references_provider", "hover_provider",
                               "document_symbol_provider", "workspace_symbol_provider")


class AgentProtocol(RobustProtocol):
    @property
    def agent_server(self) -> AgentServer:
        return cast(AgentServer, self._server)

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        result = yield from super().lsp_initialize(params)
        # ClientCaps made the choice (the same rule as pygls's); say it from the one place.
        result.capabilities.position_encoding = self.agent_server.client_caps.position_encoding
        result.capabilities.experimental = {
            "lspAgent": {
                "protocolVersion": PROTOCOL_VERSION,
                "methods": CUSTOM_METHODS,
                "notifications": [p.EVENT, watch_api.INBOX, p.WATCH_EVENT],
                "clientNotifications": [p.WARM_UP, p.DIAGNOSTICS_CHANGED],
                "clientRequests": [p.REQUEST_PERMISSION],
                "commands": [p.CMD_FIX, p.CMD_EXPLAIN, p.CMD_CHANGE],
                "editorBridge": BRIDGE_METHODS,
            }
        }
        if not self.agent_server.options.python_language_features:
            # Registered once for every server, but advertised only when on (the handlers
            # answer nothing when off): a client then asks its other servers instead.
            for name in PYTHON_FEATURE_CAPABILITIES:
                setattr(result.capabilities, name, None)
        return result

    @lsp_method(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: lsp.DidChangeTextDocumentParams):
        # Our own application of the changes, in the negotiated encoding (see EditorDocuments).
        server = self.agent_server
        server.documents.apply_change(params, server.client_caps.position_encoding)
        if (handler := self.fm.features.get(lsp.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None


class AgentServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lsp-agent", __version__, protocol_cls=AgentProtocol)
        self.options = _default_options()
        self.client_caps = ClientCaps()
        self.documents = EditorDocuments(self)
        self.positions = WirePositions(self.documents.text_of)
        self.permissions = EditorPermissions(self, self.options.permission_timeout_seconds)
        self.applier = EditorApplier(self, self.options.apply_edit_timeout_seconds, False,
                                     self.documents)
        self.progress_for_turns = TurnProgress(self)
        self._manager: SessionManager | None = None
        self.wiring = Wiring(self)  # builds the sessions' parts from the editor's side
        self.dreams = dream_api.DreamRunner(self)  # memory consolidation in the background
        self._watcher: Watcher | None = None  # made after initialize (see the property)

    @property
    def watcher(self) -> Watcher:
        """Prepares fixes when tests fail (opt-in). Made at ``initialized`` or when first
        needed: its modules stay off the initialize path."""
        if self._watcher is None:
            self._watcher = watch_api.watcher_for(self)
        return self._watcher

    # Our transports replace pygls's reader loop (see transport.py); they return the exit code.
    def start_io(self, stdin: Any = None, stdout: Any = None) -> int:
        from lsp_agent.server.transport import serve_stdio

        return serve_stdio(self, stdin, stdout)

    def start_tcp(self, host: str, port: int) -> int:  # type: ignore[override]
        from lsp_agent.server.transport import serve_tcp

        return serve_tcp(self, host, port)

    # -- configuration -----------------------------------------------------------------------

    def configure(self, params: lsp.InitializeParams) -> None:
        self.client_caps = ClientCaps.parse(params.capabilities)
        self.positions.encoding = self.client_caps.position_encoding
        self.applier.caps = self.client_caps
        log.info("client: %s", self.client_caps.summary())
        try:
            self.options = (InitializationOptions.model_validate(params.initialization_options)
                            if params.initialization_options else _default_options())
        except ValueError as exc:
            log.warning("ignoring invalid initializationOptions: %s", exc)
            self.options = _default_options()
        self.permissions.timeout = self.options.permission_timeout_seconds
        self.applier.timeout = self.options.apply_edit_timeout_seconds
        self.applier.editor_saves = self.options.editor_saves_applied_edits
        self.applier.verify_timeout = self.options.apply_edit_verify_seconds
        self._manager = None

    @property
    def manager(self) -> SessionManager:
        if self._manager is None:
            self._manager = self.wiring.session_manager()
        return self._manager

    @property
    def root(self) -> Path:
        try:
            root = self.workspace.root_path
        except RuntimeError:
            root = None
        return Path(root) if root else Path.cwd()

    def workspace_for(self, path: Path) -> Path:
        """The innermost workspace folder holding ``path``; the root when none does."""
        try:
            folders = [Path(to_fs_path(f.uri) or "") for f in self.workspace.folders.values()]
        except RuntimeError:
            folders = []
        holding = [f for f in [*folders, self.root] if f != Path() and path.is_relative_to(f)]
        return max(holding, key=lambda f: len(f.parts), default=self.root)

    def code_intel_for(self, root: Path) -> Any:
        return self.wiring.code_intel_for(root)

    def editor_intel(self) -> Any:
        """JediIntel for the LSP features, or None when they are switched off."""
        return self.wiring.editor_intel()

    # -- events ------------------------------------------------------------------------------

    def send_event(self, event: ev.AgentEvent) -> None:
        notify_event(cast(AgentProtocol, self.protocol), event)  # serialised once (pydantic)
        self.progress_for_turns.on_event(event)
        self.dreams.on_event(event)
        self.watcher.on_event(event)

    # -- helpers used by handlers ------------------------------------------------------------

    def session(self, session_id: str) -> Session:
        from lsp_agent.sessions.manager import UnknownSession

        try:
            return self.manager.get(session_id)
        except UnknownSession:
            raise JsonRpcInvalidParams(f"unknown session: {session_id}") from None

    def new_session(self, params: p.NewSessionParams, for_file: Path | None = None) -> Session:
        workspace = self.workspace_for(for_file) if for_file else self.root
        if params.workspace_uri:
            fs = to_fs_path(params.workspace_uri)
            if not fs or not Path(fs).is_dir():
                raise JsonRpcInvalidParams(
                    f"workspaceUri is not an existing folder: {params.workspace_uri}")
            workspace = Path(fs)
        return self.manager.create(workspace, params.mode or self.options.mode, params.model,
                                   coordinator=params.coordinator)

    def context_in(self, params: p.PromptParams) -> EditorContext | None:
        """The prompt's editor context with its positions in code points."""
        return self.positions.context_in(params.context) if params.context else None

    async def run_prompt(self, session: Session, params: p.PromptParams) -> dict[str, Any]:
        from lsp_agent.sessions.session import SessionBusy

        try:
            ended = await session.prompt(params.text, self.context_in(params))
        except SessionBusy as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        return {"stopReason": ended.stop_reason, "usage": ended.usage.wire(),
                "rounds": ended.rounds}

    def start_prompt(self, session: Session, params: p.PromptParams) -> None:
        """Run a turn in the background (commands answer at once; events report progress)."""
        from lsp_agent.sessions.session import SessionBusy

        try:
            task = session.begin(params.text, self.context_in(params))
        except SessionBusy as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        task.add_done_callback(_log_failure)


def _default_options() -> InitializationOptions:
    """The defaults, as validating ``{}`` gives them, without pydantic (server/init_options.py:
    some 8 MB and 50 ms before the initialize answer, for a client that sends no options)."""
    return InitializationOptions.model_construct()


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background turn failed", exc_info=task.exception())


def create_server() -> AgentServer:
    server = AgentServer()
    _register_lifecycle(server)
    _register_agent_methods(server)
    session_methods.register(server)
    actions.register(server)
    extensions_api.register(server)  # agent/mcpStatus, agent/mcpRestart, agent/commands
    memory_api.register(server)  # agent/memory*: the project's auto memory
    dream_api.register(server)  # agent/dream, agent/dreamCancel: memory consolidation
    watch_api.register(server)  # didSave -> test command -> a proposal in the inbox
    views_api.register(server)  # agent/taskOutput, agent/taskStop, agent/customizations
    from lsp_agent.server.language_features import register_language_features

    register_language_features(server, server.editor_intel, server.positions,
                               server.wiring.symbol_index)
    return server


def _register_lifecycle(server: AgentServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def on_initialize(ls: AgentServer, params: lsp.InitializeParams) -> None:
        ls.configure(params)

    def on_initialized(params: lsp.InitializedParams) -> None:
        server.wiring.preload_model("initialized")  # only if LSP_AGENT_PRELOAD_MODEL=1 asks
        generated_code_cache.save_soon()  # for the next start (if `serve` installed it)

    on_notification(server, lsp.INITIALIZED, on_initialized)

    @server.feature(p.WARM_UP)
    def on_warm_up(ls: AgentServer, params: Any) -> None:
        # The client expects a prompt soon (its chat view opened): build the SDK client now,
        # on a thread, rather than keep it in every idle editor's memory (model/clients.py).
        p.parse(p.WarmUpParams, params)
        ls.wiring.preload_model("warmUp")

    @server.feature(lsp.SHUTDOWN)
    async def on_shutdown(ls: AgentServer, *_: Any) -> None:
        await ls.dreams.cancel_all()  # a run stopped now rolls its lock back
        if ls._watcher is not None:
            ls._watcher.close()
        if ls._manager is not None:
            await ls.manager.close_all()  # turns stopped, transcripts flushed and closed
            await extensions_api.close_all(ls)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def on_open(ls: AgentServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.documents.note_change(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: AgentServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.documents.note_change(params.text_document.uri)

    def on_change(params: lsp.DidChangeTextDocumentParams) -> None:
        # Diagnostics the editor gave us describe the old text; drop them.
        fs = to_fs_path(params.text_document.uri)
        if fs and server._manager is not None:
            server.manager.diagnostics.replace(Path(fs), [])

    on_notification(server, lsp.TEXT_DOCUMENT_DID_CHANGE, on_change)  # the watcher hears it too

    @server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def on_progress_cancel(ls: AgentServer, params: lsp.WorkDoneProgressCancelParams):
        session_id = ls.progress_for_turns.session_for(params.token)
        if session_id and session_id in {s.id for s in ls.manager.all()}:
            await ls.manager.get(session_id).cancel()


def _register_agent_methods(server: AgentServer) -> None:
    @server.feature(p.NEW_SESSION)
    async def new_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        session = ls.new_session(p.parse(p.NewSessionParams, params))
        # Answered once the SDK client is ready (normally long since: it is built from
        # initialized on, on a thread), so that the first prompt starts at once. A failure
        # of the build is the first model call's to report (model/clients.py).
        with contextlib.suppress(Exception):
            await session.agent.deps.model.ready_client()
        return p.NewSessionResult(session_id=session.id,
                                  workspace_uri=from_fs_path(str(session.workspace)) or "",
                                  mode=session.mode, model=session.agent.model,
                                  warnings=session.safety.warnings).wire()

    @server.feature(p.PROMPT)
    async def prompt(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.PromptParams, params)
        return await ls.run_prompt(ls.session(args.session_id), args)

    @server.feature(p.CANCEL)
    async def cancel(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return {"cancelled": await ls.session(args.session_id).cancel()}

    @server.feature(p.SET_MODE)
    def set_mode(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SetModeParams, params)
        ls.session(args.session_id).set_mode(args.mode)
        return {"mode": args.mode}

    @server.feature(p.SET_MODEL)
    def set_model(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SetModelParams, params)
        return {"model": ls.session(args.session_id).set_model(args.model)}

    @server.feature(p.CONTEXT)
    async def context(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return await ls.session(args.session_id).context_report()

    @server.feature(p.TASKS)
    def tasks(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return {"tasks": ls.session(args.session_id).tasks.summaries()}

    @server.feature(p.WORKTREES)
    async def worktrees(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.WorktreesParams, params)
        from lsp_agent.workspace.worktrees import worktrees_for

        folder = Path(to_fs_path(args.workspace_uri) or "") if args.workspace_uri else None
        found = await worktrees_for(ls.manager.factory.state_dir).list_worktrees(folder)
        return {"worktrees": [w.wire() for w in found]}

    @server.feature(p.REMOVE_WORKTREE)
    async def remove_worktree(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.RemoveWorktreeParams, params)
        from lsp_agent.workspace.worktrees import WorktreeError, worktrees_for

        store = worktrees_for(ls.manager.factory.state_dir)
        try:
            removed = await store.remove(args.agent_id, args.delete_branch)
        except WorktreeError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        return {"removed": removed.wire()}

    @server.feature(p.COMPACT)
    async def compact(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.CompactParams, params)
        from lsp_agent.sessions.session import SessionBusy

        try:
            boundary = await ls.session(args.session_id).compact(args.instructions)
        except SessionBusy as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        if boundary is None:
            return {"compacted": False}
        return {"compacted": True, "tokensBefore": boundary.tokens_before,
                "tokensAfter": boundary.tokens_after}

    @server.feature(p.REVIEW)
    async def review(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ReviewParams, params)
        from lsp_agent.sessions.proposals import UnknownProposal

        try:
            await ls.watcher.ready()
            if ls.watcher.restored(args.proposal_id):  # prepared before a restart
                return (await ls.watcher.review_restored(
                    args.proposal_id, args.accept, args.reject)).wire()
            session = ls.manager.owner_of(args.proposal_id)
            result = await session.proposals.review(
                args.proposal_id, args.accept, args.reject, args.feedback)
        except UnknownProposal:
            raise JsonRpcInvalidParams(
                f"unknown or already resolved proposal: {args.proposal_id}") from None
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        return result.wire()
