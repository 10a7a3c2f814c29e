"""All sessions of one server process: the registry. Sessions are assembled by the
SessionFactory from the parts the front end shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.clients import ClientPool
from lsp_agent.sessions.factory import SessionFactory, SharedParts
from lsp_agent.sessions.proposals import EditApplier, UnknownProposal
from lsp_agent.sessions.recorder import SessionRecorder
from lsp_agent.sessions.session import EventSink, Session
from lsp_agent.sessions.sidechain import restore_children
from lsp_agent.store import HistoryPage, SessionInUse, SessionNotFound, SessionPage, Store, entries
from lsp_agent.tools.base import ToolPool
from lsp_agent.tools.pool import default_pool
from lsp_agent.types.permissions import Asker, Mode
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource

log = logging.getLogger(__name__)

# A resumed session never starts in this mode: the user chooses it again (see docs/sessions.md).
NOT_RESUMED_MODES = frozenset({"bypassPermissions"})
RECENT_PROMPTS_KEPT = 5  # as many as the agent keeps for auto mode (agent/loop.py)


class UnknownSession(KeyError):
    pass


class PersistenceOff(RuntimeError):
    """Sessions are not saved by this server (``persist=False``)."""


@dataclass
class Resumed:
    session: Session
    not_applied: list[str] = field(default_factory=list)  # proposals pending at the end
    warnings: list[str] = field(default_factory=list)
    was_live: bool = False  # already open in this server: nothing was read back


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
        persist: bool = True,
        clients: ClientPool | None = None,
    ):
        self.store = Store(state_dir) if persist else None
        if self.store is not None and settings.api_key:
            self.store.redactor.add([settings.api_key])
        self.factory = SessionFactory(
            SharedParts(documents=documents, applier=applier, sink=sink, asker=asker,
                        tools=tools or default_pool(), code_intel_for=code_intel_for),
            settings, state_dir, safety_options, store=self.store, clients=clients)
        self._sessions: dict[str, Session] = {}
        self._housekeeping: asyncio.Future[None] | None = None

    @property
    def settings(self) -> ModelSettings:
        return self.factory.settings

    @property
    def diagnostics(self) -> DiagnosticsStore:
        return self.factory.parts.diagnostics

    @diagnostics.setter
    def diagnostics(self, store: DiagnosticsStore) -> None:
        self.factory.parts.diagnostics = store  # the editor bridge's, when it answers them

    def create(self, workspace: Path, mode: Mode, model: str | None = None,
               coordinator: bool = False) -> Session:
        session = self.factory.create(workspace, mode, model, coordinator=coordinator)
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

    async def close_all(self) -> None:
        """Stop every turn and close every transcript (the server is shutting down)."""
        await asyncio.gather(*(s.close() for s in self._sessions.values()),
                             return_exceptions=True)

    # -- sessions on disk --------------------------------------------------------------------

    def start_housekeeping(self) -> None:
        """Apply the retention policy once, in the background (old sessions and their
        checkpoints go; sessions open here or in another process never do)."""
        self._housekeeping = asyncio.ensure_future(self._apply_retention())

    async def _apply_retention(self) -> None:
        store = self._store()
        keep = frozenset(s.recorder.writer.path for s in self._sessions.values()
                         if s.recorder is not None and s.recorder.writer is not None)
        try:
            report = await store.apply_retention_if_due(keep=keep)
        except Exception:  # housekeeping must never disturb the sessions
            log.warning("applying the session retention policy failed", exc_info=True)
            return
        if report is not None and report.deleted:
            log.info("retention: deleted %d old sessions (%d -> %d bytes)",
                     len(report.deleted), report.total_bytes_before, report.total_bytes_after)

    def _store(self) -> Store:
        if self.store is None:
            raise PersistenceOff("sessions are not saved by this server")
        return self.store

    async def resume(self, workspace: Path, session_id: str, mode: Mode = "default") -> Resumed:
        """Rebuild a saved session in this server: the history as the model last saw it, its
        todos, cost, mode and model. Raises SessionNotFound, TranscriptVersionError (a newer
        format), SessionInUse (open in another process) and PersistenceOff."""
        if session_id in self._sessions:
            return Resumed(self._sessions[session_id], was_live=True)
        store = self._store()
        recorder = SessionRecorder(store, workspace, session_id, log.warning)
        reader, writer = await store.resume(workspace, session_id, on_error=recorder.report)
        recorder.attach(writer)
        state = await asyncio.to_thread(_saved_state, reader)
        warnings = list(reader.warnings)
        saved_mode = state["mode"] or mode
        if saved_mode in NOT_RESUMED_MODES:
            warnings.append(f"The session ran in {saved_mode} mode; it resumes in {mode} mode. "
                            "Choose the mode again if you want it.")
            saved_mode = mode
        session = self.factory.create(workspace, saved_mode, state["model"],
                                      session_id=session_id, recorder=recorder,
                                      coordinator=state["coordinator"])
        session.restore(state["messages"], state["todos"], state["cost"], state["first"],
                        prompts=state["prompts"], auto_decisions=state["auto"])
        session.restore_task_list(state["task_list"])
        await restore_children(session.delegation, session.agent_tool, recorder)
        for proposal_id in state["pending"]:
            recorder.append(entries.proposal_decision(
                proposal_id, "not_applied",
                feedback="the session ended before the review; nothing was applied"))
        self._sessions[session.id] = session
        return Resumed(session, not_applied=state["pending"], warnings=warnings)

    async def list_saved(self, workspace: Path, offset: int = 0, limit: int = 50) -> SessionPage:
        return await self._store().list_sessions(workspace, offset=offset, limit=limit)

    async def history(self, workspace: Path, session_id: str, before: str | None = None,
                      limit: int = 50) -> HistoryPage:
        live = self._sessions.get(session_id)
        if live is not None and live.recorder is not None and live.recorder.writer is not None:
            await live.recorder.writer.flush()  # what is queued is part of the history
        reader = await self._store().load(workspace, session_id)
        return await asyncio.to_thread(reader.history, before, limit)

    async def fork(self, workspace: Path, session_id: str, at_turn: int | None = None) -> str:
        """A new saved session with the history before turn ``at_turn`` (all of it without);
        resume it to use it."""
        live = self._sessions.get(session_id)
        if live is not None and live.recorder is not None and live.recorder.writer is not None:
            await live.recorder.writer.flush()
        store = self._store()
        if at_turn is None:
            reader = await store.load(workspace, session_id)
            at_turn = len(reader.turns()) + 1
        return await store.fork(workspace, session_id, at_turn)

    async def rename(self, workspace: Path, session_id: str, title: str) -> None:
        live = self._sessions.get(session_id)
        if live is not None and live.recorder is not None and live.recorder.writer is not None:
            live.recorder.writer.set_title(title)
            return
        await self._store().rename(workspace, session_id, title)

    async def delete(self, workspace: Path, session_id: str) -> None:
        """Delete a saved session; one open in this server is closed first (refused while it
        runs a turn)."""
        live = self._sessions.get(session_id)
        if live is not None:
            if live.busy:
                raise SessionInUse(f"session {session_id} is running a turn; stop it first")
            await live.close()
            del self._sessions[session_id]
        await self._store().delete(workspace, session_id)

    async def prompt_history(self, workspace: Path, limit: int = 100) -> list[str]:
        return await self._store().prompt_history(workspace, limit)

    async def latest(self, workspace: Path) -> str | None:
        return await self._store().latest(workspace)


def _saved_state(reader: Any) -> dict[str, Any]:
    """Everything a resume needs from a transcript (computed off the event loop)."""
    turns = reader.turns()
    return {
        "messages": reader.messages(), "todos": reader.todos(), "mode": reader.mode(),
        "task_list": reader.task_list(), "coordinator": reader.coordinator(),
        "model": reader.model(), "cost": reader.cost().by_model,
        "pending": [p["proposalId"] for p in reader.pending_proposals()],
        "first": turns[0].prompt if turns else None,
        # What auto mode's classifier is told the user wants, and what it decided already.
        "prompts": [t.prompt for t in turns[-RECENT_PROMPTS_KEPT:]],
        "auto": reader.auto_decisions(),
    }


__all__ = ["PersistenceOff", "Resumed", "SessionInUse", "SessionManager", "SessionNotFound",
           "UnknownSession"]
