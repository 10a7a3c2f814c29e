"""Dream over LSP: ``agent/dream`` runs it (gated, or forced), ``agent/dreamCancel`` stops it,
``agent/dreamStatus`` notifications show it; after a turn ends and the server has been idle
for ``dream.idleSeconds``, it runs on its own when its gates pass (sessions/dream.py).

One run per workspace at a time in this server; the lock in the memory folder keeps other
servers out. A run is an asyncio task: cancelling it stops its agent (its model request, its
tools) and rolls the lock back; the server's shutdown cancels it too. The Dream agent's events
go to the client as ``agent/dreamStatus`` ``{status: "running", phase, event}`` (text deltas
left out, long contents cut): a Dream has no session, so no ``agent/event``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidRequest
from pygls.uris import from_fs_path

from lsp_agent.server.memory_api import project_memory
from lsp_agent.server.session_methods import workspace_of

if TYPE_CHECKING:  # Dream (its agent, the model service) loads with the first run
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
    from lsp_agent.sessions.dream import Dream, DreamPolicy, DreamResult
    from lsp_agent.types import events as ev
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p
    from lsp_agent.types.lazy import events as ev  # the event models likewise

log = logging.getLogger(__name__)

DREAM = "agent/dream"
DREAM_CANCEL = "agent/dreamCancel"
DREAM_STATUS = "agent/dreamStatus"  # notification
METHODS = [DREAM, DREAM_CANCEL]
DEFAULT_IDLE_SECONDS = 300.0
QUIET_EVENTS = frozenset({"text_delta", "tool_execution_started"})  # not sent to the client
MAX_EVENT_TEXT = 1_000  # characters of a tool result or error message in a status


class DreamRunner:
    def __init__(self, server: AgentServer):
        self._server = server
        self._running: dict[Path, asyncio.Task[DreamResult]] = {}
        self._idle: asyncio.TimerHandle | None = None
        self._touched: set[Path] = set()

    # -- options -----------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        raw = self._server.options.dream
        return raw if isinstance(raw, dict) else {}

    def policy(self) -> DreamPolicy:
        from lsp_agent.sessions.dream import DreamPolicy

        opts, base = self._options(), DreamPolicy()
        return DreamPolicy(min_hours=float(opts.get("minHours", base.min_hours)),
                           min_sessions=int(opts.get("minSessions", base.min_sessions)),
                           max_turns=int(opts.get("maxTurns", base.max_turns)),
                           max_tokens=int(opts.get("maxTokens", base.max_tokens)),
                           max_seconds=float(opts.get("maxSeconds", base.max_seconds)))

    def _automatic(self) -> bool:
        return self._options().get("enabled", True) is not False

    # -- runs --------------------------------------------------------------------------------

    def dream_for(self, workspace: Path) -> Dream:
        from lsp_agent.sessions.dream import Dream

        server = self._server
        store = server.manager.store
        if store is None:
            raise JsonRpcInvalidRequest("sessions are not saved by this server: Dream has "
                                        "nothing to read")
        memory, _ = project_memory(server, from_fs_path(str(workspace)))
        service = server.manager.factory.model_service(server.manager.settings)
        dream = Dream(memory, store.layout.project(workspace), service, self.policy(),
                      report=lambda update: self._notify(workspace, "running", update))
        dream.events = lambda event: self._agent_event(workspace, dream.phase, event)
        return dream

    async def start(self, workspace: Path, force: bool) -> dict[str, Any]:
        if workspace in self._running:
            return {"started": False, "reason": "Dream is already running for this workspace"}
        dream = self.dream_for(workspace)
        why, _sessions, _last = await asyncio.to_thread(dream.gate, force)
        if why is not None:
            return {"started": False, "reason": why}
        dream.secret_files = await asyncio.to_thread(self._secret_files, workspace)
        task = asyncio.ensure_future(self._run(workspace, dream, force))
        self._running[workspace] = task
        task.add_done_callback(lambda _t: self._running.pop(workspace, None))
        return {"started": True}

    async def _run(self, workspace: Path, dream: Dream, force: bool) -> DreamResult:
        self._notify(workspace, "running", {"phase": "gates"})
        try:
            result = await dream.run(force)
        except asyncio.CancelledError:
            from lsp_agent.sessions.dream import DreamResult

            result = DreamResult("cancelled", "stopped by the user or the server's shutdown")
            self._notify(workspace, result.status, result.wire())
            raise
        self._notify(workspace, result.status, result.wire())
        return result

    def _secret_files(self, workspace: Path) -> list[str]:
        """The project's secret-file patterns: the Dream agent's reads follow them too."""
        from lsp_agent.permissions import settings as st

        return st.load(workspace, self._server.manager.factory.safety_options).secret_files

    def _agent_event(self, workspace: Path, phase: str, event: ev.AgentEvent) -> None:
        if event.type in QUIET_EVENTS:
            return
        wire = event.wire()
        for key in ("content", "message"):
            if isinstance(wire.get(key), str) and len(wire[key]) > MAX_EVENT_TEXT:
                wire[key] = wire[key][:MAX_EVENT_TEXT] + " [...]"
        self._notify(workspace, "running", {**({"phase": phase} if phase else {}),
                                            "event": wire})

    async def cancel(self, workspace: Path) -> bool:
        task = self._running.get(workspace)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def cancel_all(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        for workspace in list(self._running):
            await self.cancel(workspace)

    def _notify(self, workspace: Path, status: str, detail: dict[str, Any]) -> None:
        self._server.protocol.notify(DREAM_STATUS, {
            "workspaceUri": from_fs_path(str(workspace)) or "", **detail, "status": status})

    # -- running on its own ------------------------------------------------------------------

    def on_event(self, event: ev.AgentEvent) -> None:
        """A turn ended: (re)arm the idle timer; when it fires with no turn running, each
        workspace that had turns is checked against the gates."""
        if not isinstance(event, ev.TurnEnded) or not self._automatic():
            return
        try:
            session = self._server.manager.get(event.session_id or "")
        except Exception:
            return
        self._touched.add(session.workspace)
        if self._idle is not None:
            self._idle.cancel()
        idle = float(self._options().get("idleSeconds", DEFAULT_IDLE_SECONDS))
        self._idle = asyncio.get_running_loop().call_later(idle, self._idle_fired)

    def _idle_fired(self) -> None:
        self._idle = None
        if any(s.busy for s in self._server.manager.all()):
            return  # the next turn's end re-arms the timer
        touched, self._touched = self._touched, set()
        for workspace in touched:
            task = asyncio.ensure_future(self._start_quietly(workspace))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _start_quietly(self, workspace: Path) -> None:
        try:
            await self.start(workspace, force=False)
        except Exception as exc:  # auto memory off, no saved sessions: nothing to do
            log.info("Dream not started for %s: %s", workspace, exc)


def register(server: AgentServer) -> None:
    @server.feature(DREAM)
    async def dream(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.DreamParams, params)
        return await ls.dreams.start(workspace_of(ls, args.workspace_uri), args.force)

    @server.feature(DREAM_CANCEL)
    async def dream_cancel(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryParams, params)
        return {"cancelled": await ls.dreams.cancel(workspace_of(ls, args.workspace_uri))}
