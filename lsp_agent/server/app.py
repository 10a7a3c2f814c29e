"""The pygls language server: LSP in, session calls out. Handlers stay a few lines long."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import lsp_method
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent import PROTOCOL_VERSION, __version__
from lsp_agent.code_intel.bridge import BRIDGE_METHODS
from lsp_agent.model.client import ModelSettings
from lsp_agent.server import actions
from lsp_agent.server import protocol as p
from lsp_agent.server.editor import EditorApplier, EditorDocuments, EditorPermissions
from lsp_agent.server.jsonrpc import RobustProtocol
from lsp_agent.server.progress import TurnProgress
from lsp_agent.sessions.manager import SessionManager, UnknownSession
from lsp_agent.sessions.proposals import UnknownProposal
from lsp_agent.sessions.session import Session, SessionBusy
from lsp_agent.types import events as ev

log = logging.getLogger(__name__)

CUSTOM_METHODS = [p.NEW_SESSION, p.PROMPT, p.CANCEL, p.SET_MODE, p.REVIEW, p.LIST_SESSIONS,
                  p.CONTEXT, p.COMPACT, p.SET_MODEL]


PYTHON_FEATURE_CAPABILITIES = ("definition_provider", "references_provider", "hover_provider",
                               "document_symbol_provider", "workspace_symbol_provider")


class AgentProtocol(RobustProtocol):
    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams):
        result = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {
            "lspAgent": {
                "protocolVersion": PROTOCOL_VERSION,
                "methods": CUSTOM_METHODS,
                "notifications": [p.EVENT],
                "clientRequests": [p.REQUEST_PERMISSION],
                "commands": [p.CMD_FIX, p.CMD_EXPLAIN, p.CMD_CHANGE],
                "editorBridge": BRIDGE_METHODS,
            }
        }
        if not self._server.options.python_language_features:
            # Registered once for every server, but advertised only when on (the handlers
            # answer nothing when off): a client then asks its other servers instead.
            for name in PYTHON_FEATURE_CAPABILITIES:
                setattr(result.capabilities, name, None)
        return result


class AgentServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lsp-agent", __version__, protocol_cls=AgentProtocol)
        self.options = p.InitializationOptions()
        self.documents = EditorDocuments(self)
        self.permissions = EditorPermissions(self, self.options.permission_timeout_seconds)
        self.applier = EditorApplier(self, self.options.apply_edit_timeout_seconds, False)
        self.progress_for_turns = TurnProgress(self)
        self._manager: SessionManager | None = None
        self._intel: dict[Path, Any] = {}

    # Our transports replace pygls's reader loop (see transport.py); they return the exit code.
    def start_io(self, stdin: Any = None, stdout: Any = None) -> int:  # type: ignore[override]
        from lsp_agent.server.transport import serve_stdio

        return serve_stdio(self, stdin, stdout)

    def start_tcp(self, host: str, port: int) -> int:  # type: ignore[override]
        from lsp_agent.server.transport import serve_tcp

        return serve_tcp(self, host, port)

    # -- configuration -----------------------------------------------------------------------

    def configure(self, params: lsp.InitializeParams) -> None:
        try:
            self.options = p.InitializationOptions.model_validate(
                params.initialization_options or {})
        except ValueError as exc:
            log.warning("ignoring invalid initializationOptions: %s", exc)
            self.options = p.InitializationOptions()
        self.permissions.timeout = self.options.permission_timeout_seconds
        self.applier.timeout = self.options.apply_edit_timeout_seconds
        self.applier.editor_saves = self.options.editor_saves_applied_edits
        self._manager = None

    @property
    def manager(self) -> SessionManager:
        if self._manager is None:
            settings = ModelSettings.from_env(model=self.options.model,
                                              fallback_model=self.options.fallback_model)
            log.info("model settings: %s", settings.redacted())
            self._manager = SessionManager(
                settings=settings,
                documents=self.documents,
                applier=self.applier,
                sink=self.send_event,
                asker=self.permissions.ask,
                state_dir=self.state_dir,
                code_intel_for=self.code_intel_for,
                safety_options=self.options.safety_options(),
            )
            if self.options.editor_bridge:
                from lsp_agent.code_intel.bridge import EditorDiagnostics

                self._manager.diagnostics = EditorDiagnostics(self.editor_bridge())
        return self._manager

    @property
    def state_dir(self) -> Path:
        raw = self.options.state_dir or os.environ.get("LSP_AGENT_STATE_DIR")
        return Path(raw).expanduser() if raw else Path.home() / ".cache" / "lsp-agent"

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
        if root not in self._intel:
            from lsp_agent.code_intel.jedi_intel import JediIntel

            self._intel[root] = JediIntel(root, self.documents)
            if self.options.editor_bridge:  # other languages: ask the editor
                from lsp_agent.code_intel.bridge import RoutedIntel

                self._intel[root] = RoutedIntel(self._intel[root], self.editor_bridge())
        return self._intel[root]

    def editor_bridge(self) -> Any:
        from lsp_agent.code_intel.bridge import EditorBridge

        return EditorBridge(self.protocol.send_request_async,
                            timeout=self.options.editor_bridge_timeout_seconds,
                            lines_of=self._buffer_lines)

    def _buffer_lines(self, path: Path) -> list[str] | None:
        try:
            return self.documents.snapshot(path).text.splitlines()
        except Exception:  # missing or unreadable: the location is shown without its line
            return None

    def editor_intel(self) -> Any:
        """JediIntel for the LSP features, or None when they are switched off."""
        if not self.options.python_language_features:
            return None
        intel = self.code_intel_for(self.root)
        return getattr(intel, "jedi", intel)  # the LSP features serve Python only

    # -- events ------------------------------------------------------------------------------

    def send_event(self, event: ev.AgentEvent) -> None:
        self.protocol.notify(p.EVENT, {"sessionId": event.session_id, "seq": event.seq,
                                       "event": event.wire()})
        self.progress_for_turns.on_event(event)

    # -- helpers used by handlers ------------------------------------------------------------

    def session(self, session_id: str) -> Session:
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
        return self.manager.create(workspace, params.mode or self.options.mode, params.model)

    async def run_prompt(self, session: Session, params: p.PromptParams) -> dict[str, Any]:
        try:
            ended = await session.prompt(params.text, params.context)
        except SessionBusy as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        return {"stopReason": ended.stop_reason, "usage": ended.usage.wire(),
                "rounds": ended.rounds}

    def start_prompt(self, session: Session, params: p.PromptParams) -> None:
        """Run a turn in the background (commands answer at once; events report progress)."""
        try:
            task = session.begin(params.text, params.context)
        except SessionBusy as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background turn failed", exc_info=task.exception())


def create_server() -> AgentServer:
    server = AgentServer()
    _register_lifecycle(server)
    _register_agent_methods(server)
    actions.register(server)
    from lsp_agent.server.language_features import register_language_features

    register_language_features(server, server.editor_intel)
    return server


def _register_lifecycle(server: AgentServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def on_initialize(ls: AgentServer, params: lsp.InitializeParams) -> None:
        ls.configure(params)

    @server.feature(lsp.SHUTDOWN)
    async def on_shutdown(ls: AgentServer, *_: Any) -> None:
        if ls._manager is not None:
            await ls.manager.cancel_all()

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: AgentServer, params: lsp.DidChangeTextDocumentParams) -> None:
        # Diagnostics the editor gave us describe the old text; drop them.
        fs = to_fs_path(params.text_document.uri)
        if fs and ls._manager is not None:
            ls.manager.diagnostics.replace(Path(fs), [])

    @server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def on_progress_cancel(ls: AgentServer, params: lsp.WorkDoneProgressCancelParams):
        session_id = ls.progress_for_turns.session_for(params.token)
        if session_id and session_id in {s.id for s in ls.manager.all()}:
            await ls.manager.get(session_id).cancel()


def _register_agent_methods(server: AgentServer) -> None:
    @server.feature(p.NEW_SESSION)
    def new_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        session = ls.new_session(p.parse(p.NewSessionParams, params))
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

    @server.feature(p.LIST_SESSIONS)
    def list_sessions(ls: AgentServer, params: Any) -> dict[str, Any]:
        return {"sessions": [
            {"sessionId": s.id, "workspaceUri": from_fs_path(str(s.workspace)),
             "mode": s.mode, "model": s.agent.model, "busy": s.busy,
             "pendingProposals": s.proposals.pending_ids}
            for s in ls.manager.all()]}

    @server.feature(p.CONTEXT)
    async def context(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return await ls.session(args.session_id).context_report()

    @server.feature(p.COMPACT)
    async def compact(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.CompactParams, params)
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
        try:
            session = ls.manager.owner_of(args.proposal_id)
            result = await session.proposals.review(
                args.proposal_id, args.accept, args.reject, args.feedback)
        except UnknownProposal:
            raise JsonRpcInvalidParams(
                f"unknown or already resolved proposal: {args.proposal_id}") from None
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        return result.wire()
