"""Assembling a session from its parts, in one place.

A front end (the LSP server, later the ACP front end and children agents) hands over what it
shares across sessions -- documents, the edit applier, the event sink, the permission asker,
code intelligence, the tool pool -- and the factory adds what belongs to a session: its model
service (one SDK client per endpoint and key, shared), its config and its id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.clients import ClientPool
from lsp_agent.model.service import ModelService
from lsp_agent.sessions.proposals import EditApplier
from lsp_agent.sessions.recorder import SessionRecorder
from lsp_agent.sessions.session import EventSink, Session, SessionConfig
from lsp_agent.store import Store, entries
from lsp_agent.tools.base import ToolPool
from lsp_agent.tools.pool import default_pool
from lsp_agent.types.permissions import Asker, Mode
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource

log = logging.getLogger(__name__)


@dataclass
class SharedParts:
    """What every session of one front end shares."""

    documents: DocumentSource
    applier: EditApplier
    sink: EventSink
    asker: Asker | None
    diagnostics: DiagnosticsStore = field(default_factory=DiagnosticsStore)
    tools: ToolPool = field(default_factory=default_pool)
    code_intel_for: Callable[[Path], Any] | None = None


class SessionFactory:
    def __init__(self, parts: SharedParts, settings: ModelSettings, state_dir: Path,
                 safety_options: dict[str, Any] | None = None, store: Store | None = None,
                 clients: ClientPool | None = None):
        self.parts = parts
        self.store = store  # None: sessions are not saved
        self.settings = settings
        self.state_dir = state_dir
        self.safety_options = safety_options  # editor / command-line settings (permissions...)
        # One SDK client per endpoint and key, shared by every session (and its children),
        # built on a thread (the front end may have started it already: ClientPool.preload).
        self.clients = clients or ClientPool()

    def create(self, workspace: Path, mode: Mode, model: str | None = None,
               session_id: str | None = None, recorder: SessionRecorder | None = None,
               coordinator: bool = False) -> Session:
        """A new session (its transcript opens in the background), or with ``recorder``
        one that goes on with a transcript opened for a resume."""
        session_id = session_id or uuid.uuid4().hex[:12]
        fresh = False
        if recorder is None and self.store is not None:
            fresh = True
            recorder = SessionRecorder(self.store, workspace, session_id, log.warning)
            recorder.open_new()
        settings = self.settings
        if model:
            settings = ModelSettings(**{**vars(settings), "model": model})
        parts = self.parts
        session = Session(
            SessionConfig(workspace=workspace, settings=settings, mode=mode,
                          state_dir=self.state_dir, safety_options=self.safety_options,
                          coordinator=coordinator),
            model=self.model_service(settings),
            tools=parts.tools,
            documents=parts.documents,
            diagnostics=parts.diagnostics,
            applier=parts.applier,
            sink=parts.sink,
            asker=parts.asker,
            code_intel=parts.code_intel_for(workspace) if parts.code_intel_for else None,
            session_id=session_id,
            recorder=recorder,
        )
        if fresh and recorder is not None:  # what a resume starts from
            recorder.mode_changed(mode)
            recorder.model_changed(session.agent.model)
            if coordinator:
                recorder.append(entries.coordinator())
        return session

    def model_service(self, settings: ModelSettings) -> ModelService:
        self.clients.preload(settings)  # a session is made to be prompted: start the build
        return ModelService(settings, clients=self.clients)
