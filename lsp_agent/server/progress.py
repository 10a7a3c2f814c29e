"""Work-done progress for running turns: title, the current tool, cancellable from the editor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

    from lsp_agent.types import events as ev
else:  # the event models load with the first event (types/lazy.py)
    from lsp_agent.types.lazy import events as ev

log = logging.getLogger(__name__)

Value = lsp.WorkDoneProgressReport | lsp.WorkDoneProgressEnd


class TurnProgress:
    """One work-done progress per turn. Each turn's values go through one queue and one task,
    so they reach the editor in the order the events happened: a report never follows the
    end, even when the end is queued before the editor answered the create request."""

    def __init__(self, ls: LanguageServer):
        self._ls = ls
        self._token_of: dict[str, str] = {}
        self._session_of: dict[str, str] = {}
        self._queue_of: dict[str, asyncio.Queue[Value]] = {}
        self._pumps: set[asyncio.Future[None]] = set()

    def session_for(self, token: int | str) -> str | None:
        return self._session_of.get(str(token))

    def _supported(self) -> bool:
        try:
            window = self._ls.client_capabilities.window
        except (AttributeError, RuntimeError):
            return False
        return bool(window and window.work_done_progress)

    def on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.TurnStarted):
            if self._supported():
                self._begin(event)
        elif event.session_id in self._token_of:
            if isinstance(event, ev.ToolExecutionStarted):
                self._send(event.session_id, lsp.WorkDoneProgressReport(
                    message=f"running {event.name}", cancellable=True))
            elif isinstance(event, ev.ProposalCreated) and not event.auto_apply:
                self._send(event.session_id, lsp.WorkDoneProgressReport(
                    message="waiting for your review", cancellable=True))
            elif isinstance(event, ev.TurnEnded):
                self._send(event.session_id, lsp.WorkDoneProgressEnd(
                    message=f"finished: {event.stop_reason}"))
                self._token_of.pop(event.session_id, None)

    def _begin(self, event: ev.TurnStarted) -> None:
        token = f"lsp-agent/{event.session_id}/{event.seq}"
        self._token_of[event.session_id] = token
        self._session_of[token] = event.session_id
        queue: asyncio.Queue[Value] = asyncio.Queue()
        self._queue_of[token] = queue
        title = event.prompt.splitlines()[0][:60] if event.prompt else "working"
        pump = asyncio.ensure_future(self._pump(token, title, queue))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)

    def _send(self, session_id: str, value: Value) -> None:
        token = self._token_of.get(session_id)
        if token is not None:
            self._queue_of[token].put_nowait(value)

    async def _pump(self, token: str, title: str, queue: asyncio.Queue[Value]) -> None:
        """Create the progress, then send its values in order until the end."""
        try:
            created = await self._create(token, title)
            while True:
                value = await queue.get()
                if created:
                    self._notify(token, value)
                if isinstance(value, lsp.WorkDoneProgressEnd):
                    return
        finally:
            self._session_of.pop(token, None)
            self._queue_of.pop(token, None)

    async def _create(self, token: str, title: str) -> bool:
        try:
            await asyncio.wait_for(self._ls.work_done_progress.create_async(token), 10)
        except Exception as exc:  # the client may refuse or never answer: progress is optional
            log.info("work done progress not available: %s", exc)
            return False
        self._ls.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(
            title=f"lsp-agent: {title}", cancellable=True, message="thinking"))
        return True

    def _notify(self, token: str, value: Value) -> None:
        progress = self._ls.work_done_progress
        with contextlib.suppress(Exception):  # a client gone meanwhile: nothing to tell
            if isinstance(value, lsp.WorkDoneProgressEnd):
                progress.end(token, value)
            elif isinstance(value, lsp.WorkDoneProgressReport):
                progress.report(token, value)
