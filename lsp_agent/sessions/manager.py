"""All sessions of one server process, and what they share (model client, tools, documents)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.model.client import ModelSettings, make_client
from lsp_agent.model.service import ModelService
from lsp_agent.sessions.proposals import EditApplier, UnknownProposal
from lsp_agent.sessions.session import EventSink, Session, SessionConfig
from lsp_agent.tools.base import ToolPool
from lsp_agent.tools.pool import default_pool
from lsp_agent.types.permissions import Asker, Mode
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource

if TYPE_CHECKING:
    import anthropic


class UnknownSession(KeyError):
    pass


class SessionManager:
    def __init__(
        self,
        settings: ModelSettings,
        documents: DocumentSource,
        applier: EditApplier,
        sink: EventSink,
        asker: Asker | None,
        state_dir: Path,
        code_intel_for: Callable[[Path], Any] | None = None,
        tools: ToolPool | None = None,
        safety_options: dict[str, Any] | None = None,
    ):
        self.settings = settings
        self.documents = documents
        self.applier = applier
        self.sink = sink
        self.asker = asker
        self.state_dir = state_dir
        self.diagnostics = DiagnosticsStore()
        self._code_intel_for = code_intel_for
        self._tools = tools or default_pool()
        self.safety_options = safety_options  # editor / command-line settings (permissions...)
        # One SDK client per endpoint and key, shared by every session (and its children).
        self._clients: dict[tuple[str | None, str | None], anthropic.AsyncAnthropic] = {}
        self._sessions: dict[str, Session] = {}

    def create(self, workspace: Path, mode: Mode, model: str | None = None) -> Session:
        settings = self.settings
        if model:
            settings = ModelSettings(**{**vars(settings), "model": model})
        session = Session(
            SessionConfig(workspace=workspace, settings=settings, mode=mode,
                          state_dir=self.state_dir, safety_options=self.safety_options),
            model=self._service(settings),
            tools=self._tools,
            documents=self.documents,
            diagnostics=self.diagnostics,
            applier=self.applier,
            sink=self.sink,
            asker=self.asker,
            code_intel=self._code_intel_for(workspace) if self._code_intel_for else None,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession(session_id) from None

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def owner_of(self, proposal_id: str) -> Session:
        for session in self._sessions.values():
            if session.proposals.owns(proposal_id):
                return session
        raise UnknownProposal(proposal_id)

    async def cancel_all(self) -> None:
        for session in self._sessions.values():
            await session.cancel()

    def _service(self, settings: ModelSettings) -> ModelService:
        key = (settings.base_url, settings.api_key)
        if key not in self._clients:
            self._clients[key] = make_client(settings)
        return ModelService(settings, self._clients[key])
