"""The wiring of the LSP front end, in one place: from the editor-facing adapters (documents,
edit applier, permission asker, the editor bridge) and the initialization options, build the
session manager and the code intelligence each workspace root uses. The handlers in app.py
only call into what this builds."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import to_fs_path

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.clients import ClientPool, preloads_at
from lsp_agent.workspace.positions import split_lines

if TYPE_CHECKING:
    from lsp_agent.server.app import AgentServer
    from lsp_agent.sessions.manager import SessionManager

log = logging.getLogger(__name__)


class Wiring:
    def __init__(self, server: AgentServer):
        self._server = server
        self._intel: dict[Path, Any] = {}
        self._indexes: dict[Path, Any] = {}
        self.clients = ClientPool()  # the SDK clients, kept across a re-initialize

    def model_settings(self) -> ModelSettings:
        options = self._server.options
        return ModelSettings.from_env(model=options.model, fallback_model=options.fallback_model,
                                      classifier_model=options.classifier_model,
                                      explore_model=options.explore_model)

    def preload_model(self, when: str) -> None:
        """Start the SDK import and client set-up on a thread if LSP_AGENT_PRELOAD_MODEL asks
        for it at this point (``when``: "start", "initialized" or "warmUp"), so that the first
        prompt finds the client ready (model/clients.py)."""
        if not preloads_at(when):
            return
        try:
            settings = self.model_settings()
        except ValueError as exc:  # a bad setting: said when a session starts, not here
            log.debug("no preload: %s", exc)
            return
        if not self.clients.preloaded(settings):
            log.info("preloading the model client (at %s)", when)
            self.clients.preload(settings)

    def session_manager(self) -> SessionManager:
        # Imported here: sessions bring the agent, its tools and the store, none of which
        # initialize needs (README.md, "Cold start").
        from lsp_agent.sessions.manager import SessionManager
        from lsp_agent.store import RetentionPolicy

        server, options = self._server, self._server.options
        settings = self.model_settings()
        log.info("model settings: %s", settings.redacted())
        manager = SessionManager(
            settings=settings,
            documents=server.documents,
            applier=server.applier,
            sink=server.send_event,
            asker=server.permissions.ask,
            state_dir=self.state_dir(),
            code_intel_for=self.code_intel_for,
            safety_options=options.safety_options(),
            persist=options.persist_sessions,
            clients=self.clients,
        )
        if manager.store is not None:
            manager.store.policy = RetentionPolicy(
                max_age_days=options.session_retention_days,
                max_total_bytes=int(options.session_storage_max_mb * 1024 * 1024))
            manager.start_housekeeping()
        if options.editor_bridge:
            from lsp_agent.code_intel.bridge import EditorDiagnostics

            manager.diagnostics = EditorDiagnostics(self.editor_bridge())
        return manager

    def state_dir(self) -> Path:
        raw = self._server.options.state_dir or os.environ.get("LSP_AGENT_STATE_DIR")
        return Path(raw).expanduser() if raw else Path.home() / ".cache" / "lsp-agent"

    def code_intel_for(self, root: Path) -> Any:
        if root not in self._intel:
            from lsp_agent.code_intel.jedi_intel import JediIntel

            options = self._server.options
            # The root's index, also for the agent's tools (a first search starts it).
            index = self.symbol_index() if root == self._server.root else self._indexes.get(root)
            self._intel[root] = JediIntel(
                root, self._server.documents, timeout=options.code_intel_timeout_seconds,
                tool_timeout=options.code_intel_tool_timeout_seconds, index=index)
            if self._server.options.editor_bridge:  # other languages: ask the editor
                from lsp_agent.code_intel.bridge import RoutedIntel

                self._intel[root] = RoutedIntel(self._intel[root], self.editor_bridge())
        return self._intel[root]

    def symbol_index(self) -> Any:
        """The root's symbol index, or None when Python language features are off. Its
        process starts with its first use (the first Python buffer opened, the first
        workspace-symbol search: language_features.py, JediIntel.workspace_symbols)."""
        if not self._server.options.python_language_features:
            return None
        root = self._server.root
        if root not in self._indexes:
            from lsp_agent.code_intel.symbol_index import SymbolIndex

            self._indexes[root] = SymbolIndex(root)
            self._indexes[root].open_buffers = self._open_buffers
            if root in self._intel:  # built before the index: give it the index now
                getattr(self._intel[root], "jedi", self._intel[root]).index = self._indexes[root]
        return self._indexes[root]

    def editor_bridge(self) -> Any:
        from lsp_agent.code_intel.bridge import EditorBridge

        server = self._server
        return EditorBridge(server.protocol.send_request_async,
                            timeout=server.options.editor_bridge_timeout_seconds,
                            lines_of=self._buffer_lines, positions=server.positions)

    def editor_intel(self) -> Any:
        """JediIntel for the LSP features, or None when they are switched off."""
        if not self._server.options.python_language_features:
            return None
        intel = self.code_intel_for(self._server.root)
        return getattr(intel, "jedi", intel)  # the LSP features serve Python only

    def _open_buffers(self) -> list[tuple[Path, str]]:
        """The editor's open buffers, for an index that starts now (they may differ from the
        disk)."""
        try:
            documents: dict[str, Any] = self._server.workspace.text_documents
        except RuntimeError:  # not initialized
            return []
        paths = ((to_fs_path(uri), doc.source) for uri, doc in documents.items())
        return [(Path(fs), text) for fs, text in paths if fs]

    def _buffer_lines(self, path: Path) -> list[str] | None:
        text = self._server.documents.text_of(path)  # missing or unreadable: shown bare
        return split_lines(text) if text is not None else None
