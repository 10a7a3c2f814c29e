"""A session: one conversation with the agent in one workspace.

The session owns the running turn, stamps events with its id and a sequence number, kills the
turn's process groups on cancel, and holds the proposals waiting for the user's review.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.agent import events as ev
from lsp_agent.agent.loop import Agent, AgentDeps, Asker
from lsp_agent.agent.prompt import system_blocks
from lsp_agent.model.client import ModelSettings
from lsp_agent.permissions.policy import Mode, PermissionGate
from lsp_agent.sessions.context import EditorContext, prompt_blocks
from lsp_agent.sessions.proposals import EditApplier, ProposalBook
from lsp_agent.tools.base import ToolContext, ToolPool
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

EventSink = Callable[[ev.AgentEvent], None]


class SessionBusy(Exception):
    pass


class ProcessGroups:
    """Process groups started by tools of this session, killed together on cancel."""

    def __init__(self) -> None:
        self._groups: set[int] = set()

    def add(self, pgid: int) -> None:
        self._groups.add(pgid)

    def discard(self, pgid: int) -> None:
        self._groups.discard(pgid)

    def kill_all(self) -> None:
        for pgid in list(self._groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            self._groups.discard(pgid)


@dataclass
class SessionConfig:
    workspace: Path
    settings: ModelSettings
    mode: Mode = "default"
    state_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "lsp-agent")
    shell_timeout: float = 120.0


class Session:
    def __init__(
        self,
        config: SessionConfig,
        *,
        client: anthropic.AsyncAnthropic,
        tools: ToolPool,
        documents: DocumentSource,
        diagnostics: DiagnosticsStore,
        applier: EditApplier,
        sink: EventSink,
        asker: Asker | None,
        code_intel: Any = None,
        session_id: str | None = None,
    ):
        self.id = session_id or uuid.uuid4().hex[:12]
        self.config = config
        self.workspace = config.workspace
        self._sink = sink
        self._seq = 0
        self._turn: asyncio.Task[ev.TurnEnded] | None = None
        self.processes = ProcessGroups()
        self.results_dir = config.state_dir / "sessions" / self.id / "tool-results"
        self.gate = PermissionGate(config.workspace, config.mode, [self.results_dir])
        self.documents = documents
        self.diagnostics = diagnostics
        self.code_intel = code_intel
        self.proposals = ProposalBook(self, applier)
        from lsp_agent.tools.results import finalize_output

        self.agent = Agent(AgentDeps(
            client=client,
            settings=config.settings,
            tools=tools,
            gate=self.gate,
            system=self._system,
            tool_context=self._tool_context,
            asker=asker,
            finalize=finalize_output,
            session_id=self.id,
        ))
        self._system_cache: list[dict[str, Any]] | None = None

    # -- events ------------------------------------------------------------------------------

    def emit(self, event: ev.AgentEvent) -> ev.AgentEvent:
        self._seq += 1
        event.session_id = self.id
        event.seq = self._seq
        try:
            self._sink(event)
        except Exception:  # a broken consumer must not break the turn
            log.exception("event sink failed")
        return event

    # -- turns -------------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.gate.mode

    def set_mode(self, mode: Mode) -> None:
        self.gate.mode = mode

    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def begin(self, text: str, context: EditorContext | None = None) -> asyncio.Task[ev.TurnEnded]:
        """Start a turn now (the session is busy from this call on) and return its task."""
        if self.busy:
            raise SessionBusy(f"session {self.id} is already running a turn")
        if context is not None:
            self.diagnostics.remember(context)
        blocks = prompt_blocks(text, context, self.workspace, self.documents)
        self._turn = asyncio.create_task(self._run(blocks))
        return self._turn

    async def prompt(self, text: str, context: EditorContext | None = None) -> ev.TurnEnded:
        """Run one turn to its end. Cancelling the caller cancels the turn."""
        turn = self.begin(text, context)
        try:
            return await asyncio.shield(turn)
        except asyncio.CancelledError:
            await self.cancel()
            raise

    async def _run(self, blocks: list[dict[str, Any]]) -> ev.TurnEnded:
        ended: ev.TurnEnded | None = None
        async for event in self.agent.run_turn(blocks):
            self.emit(event)
            if isinstance(event, ev.TurnEnded):
                ended = event
        assert ended is not None
        return ended

    async def cancel(self) -> bool:
        """Stop the running turn and wait until it has settled; False when none was running."""
        turn = self._turn
        if turn is None or turn.done():
            return False
        self.processes.kill_all()
        self.proposals.cancel_pending()
        self.agent.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(turn), 10)
        return True

    # -- what the agent sees -----------------------------------------------------------------

    def _system(self) -> list[dict[str, Any]]:
        # Computed once per session so the prefix stays byte-identical (cache hits).
        if self._system_cache is None:
            self._system_cache = system_blocks(self.workspace)
        return self._system_cache

    def _tool_context(self, tool_use_id: str) -> ToolContext:
        return ToolContext(
            workspace=self.workspace,
            documents=self.documents,
            proposals=self.proposals,
            diagnostics=self.diagnostics,
            results_dir=self.results_dir,
            session_id=self.id,
            tool_use_id=tool_use_id,
            code_intel=self.code_intel,
            processes=self.processes,
            shell_timeout=self.config.shell_timeout,
        )
