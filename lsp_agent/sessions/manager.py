"""All sessions of one server process: the registry. Sessions are assembled by the
SessionFactory from the parts the front end shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.model.client import ModelSettings
from lsp_agent.sessions.factory import SessionFactory, SharedParts
from lsp_agent.sessions.proposals import EditApplier, UnknownProposal
from lsp_agent.sessions.session import EventSink, Session
from lsp_agent.tools.base import ToolPool
from lsp_agent.tools.pool import default_pool
from lsp_agent.types.permissions import Asker, Mode
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource


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
        self.factory = SessionFactory(
            SharedParts(documents=documents, applier=applier, sink=sink, asker=asker,
                        tools=tools or default_pool(), code_intel_for=code_intel_for),
            settings, state_dir, safety_options)
        self._sessions: dict[str, Session] = {}

    @property
    def settings(self) -> ModelSettings:
        return self.factory.settings

    @property
    def diagnostics(self) -> DiagnosticsStore:
        return self.factory.parts.diagnostics

    @diagnostics.setter
    def diagnostics(self, store: DiagnosticsStore) -> None:
        self.factory.parts.diagnostics = store  # the editor bridge's, when it answers them

    def create(self, workspace: Path, mode: Mode, model: str | None = None) -> Session:
        session = self.factory.create(workspace, mode, model)
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
