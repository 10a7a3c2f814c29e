"""Work-done progress for running turns: title, the current tool, cancellable from the editor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from lsp_agent.types import events as ev

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


class TurnProgress:
    def __init__(self, ls: LanguageServer):
        self._ls = ls
        self._token_of: dict[str, str] = {}
        self._session_of: dict[str, str] = {}
        self._ready: dict[str, asyncio.Future[bool]] = {}
        self._sending: set[asyncio.Future[None]] = set()

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
                    message=f"finished: {event.stop_reason}"), last=True)

    def _begin(self, event: ev.TurnStarted) -> None:
        token = f"lsp-agent/{event.session_id}/{event.seq}"
        self._token_of[event.session_id] = token
        self._session_of[token] = event.session_id
        title = event.prompt.splitlines()[0][:60] if event.prompt else "working"
        self._ready[token] = asyncio.ensure_future(self._create(token, title))

    async def _create(self, token: str, title: str) -> bool:
        try:
            await asyncio.wait_for(self._ls.work_done_progress.create_async(token), 10)
        except Exception as exc:  # the client may refuse or never answer: progress is optional
            log.info("work done progress not available: %s", exc)
            return False
        self._ls.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(
            title=f"lsp-agent: {title}", cancellable=True, message="thinking"))
        return True

    def _send(self, session_id: str, value: object, last: bool = False) -> None:
        token = self._token_of.get(session_id)
        if token is None:
            return
        ready = self._ready[token]
        if last:
            self._token_of.pop(session_id, None)

        async def send() -> None:
            if not await ready:
                return
            if isinstance(value, lsp.WorkDoneProgressEnd):
                self._ls.work_done_progress.end(token, value)
                self._session_of.pop(token, None)
                self._ready.pop(token, None)
            elif isinstance(value, lsp.WorkDoneProgressReport):
                with contextlib.suppress(Exception):
                    self._ls.work_done_progress.report(token, value)

        task = asyncio.ensure_future(send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
