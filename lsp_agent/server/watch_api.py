"""The watcher over LSP (docs/autonomy.md, "The watcher"): a saved file runs the configured test
command in the background (debounced); a new failure, within the budget, starts a background
session that prepares a fix as a proposal; the user gets an ``agent/inbox`` item and reviews the
proposal with ``agent/review`` as usual. Nothing is applied on its own.

Triage is deterministic and cheapest first: enabled and not paused, approved (a project's own
watcher), debounced, the command failed, this failure not tried before, the hourly budget not
spent. Every decision goes to the daily log in the state dir.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.uris import to_fs_path

from lsp_agent.permissions.hooks import run_bounded
from lsp_agent.server import protocol as p
from lsp_agent.server.fanout import on_notification
from lsp_agent.server.memory_api import MemoryParams
from lsp_agent.server.session_methods import workspace_of
from lsp_agent.sessions.watch import Approvals, Budget, DailyLog, WatchConfig, failure_key, load
from lsp_agent.types import events as ev

if TYPE_CHECKING:
    from lsp_agent.server.app import AgentServer

log = logging.getLogger(__name__)

INBOX = "agent/inbox"  # notification
INBOX_LIST = "agent/inboxList"
WATCH_STATUS = "agent/watchStatus"
WATCH_APPROVE = "agent/watchApprove"
WATCH_PAUSE = "agent/watchPause"
METHODS = [INBOX_LIST, WATCH_STATUS, WATCH_APPROVE, WATCH_PAUSE]
MAX_OUTPUT_SHOWN = 4_000


class PauseParams(p.Wire):
    paused: bool


class Watcher:
    def __init__(self, server: AgentServer):
        self._server = server
        self.paused = False
        self.inbox: list[dict[str, Any]] = []
        self._timers: dict[Path, asyncio.TimerHandle] = {}
        self._checking: set[Path] = set()
        self._tried: dict[Path, set[str]] = {}
        self._budgets: dict[Path, Budget] = {}
        self._items: dict[str, dict[str, Any]] = {}  # watcher session id -> its inbox item
        self._tasks: set[asyncio.Future[Any]] = set()

    def _state_dir(self) -> Path:
        return self._server.wiring.state_dir()

    def config(self, workspace: Path) -> tuple[WatchConfig | None, list[str]]:
        return load(workspace, self._server.options.watch)

    # -- triggers ----------------------------------------------------------------------------

    def on_save(self, path: Path) -> None:
        if self.paused:
            return
        workspace = self._server.workspace_for(path)
        config, _ = self.config(workspace)
        if config is None or not config.enabled or not config.test_command:
            return
        if not Approvals(self._state_dir()).approved(workspace, config):
            self._log(workspace, event="save", file=str(path), action="none",
                      why="the project's watcher is not approved (agent/watchApprove)")
            return
        if (timer := self._timers.pop(workspace, None)) is not None:
            timer.cancel()  # a save every second runs the command once, after the last
        self._timers[workspace] = asyncio.get_running_loop().call_later(
            config.debounce_seconds, self._fire, workspace, config, path)

    def _fire(self, workspace: Path, config: WatchConfig, path: Path) -> None:
        self._timers.pop(workspace, None)
        task = asyncio.ensure_future(self._check(workspace, config, path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, workspace: Path, config: WatchConfig, saved: Path) -> None:
        if workspace in self._checking or self.paused:
            return  # a run is going on: its result covers this save
        self._checking.add(workspace)
        try:
            await self._triage(workspace, config, saved)
        except Exception:
            log.exception("the watcher failed on %s", workspace)
        finally:
            self._checking.discard(workspace)

    async def _triage(self, workspace: Path, config: WatchConfig, saved: Path) -> None:
        assert config.test_command
        code, out, err = await run_bounded(config.test_command, "", workspace,
                                           config.test_timeout_seconds)
        if code == 0:
            self._log(workspace, event="save", file=str(saved), action="none",
                      why="the test command passed")
            return
        output = (out + ("\n" + err if err else "")).strip()
        key = failure_key(config.test_command, output)
        tried = self._tried.setdefault(workspace, set())
        if key in tried:
            self._log(workspace, event="test_failed", action="none",
                      why="this failure was tried already")
            return
        budget = self._budgets.setdefault(workspace, Budget(config.max_runs_per_hour))
        if not budget.take():
            self._log(workspace, event="test_failed", action="none",
                      why=f"over the budget of {config.max_runs_per_hour} runs per hour")
            return
        tried.add(key)
        self._start_fix(workspace, config, saved, code, output)

    # -- action: a background session prepares the fix -----------------------------------------

    def _start_fix(self, workspace: Path, config: WatchConfig, saved: Path, code: int | None,
                   output: str) -> None:
        session = self._server.manager.create(workspace, config.mode)  # type: ignore[arg-type]
        shown = output[-MAX_OUTPUT_SHOWN:]
        title = f"`{config.test_command}` fails after {saved.name} was saved"
        item = {"id": uuid.uuid4().hex[:12], "kind": "test_failure", "title": title,
                "detail": shown[-500:], "sessionId": session.id, "proposalIds": [],
                "createdAt": time.time()}
        self._items[session.id] = item
        self._log(workspace, event="test_failed", action="fix", session=session.id,
                  exitCode=code)
        prompt = (f"The watcher ran the test command `{config.test_command}` after "
                  f"{saved.name} was saved, and it failed"
                  f"{f' (exit code {code})' if code is not None else ' (timed out)'}. Its "
                  f"output ends with:\n\n```\n{shown}\n```\n\nFind the cause and prepare a fix. "
                  "Your edits are proposals the user reviews later; nobody is watching this "
                  "session, so do not ask questions.")
        session.begin(prompt)

    def on_event(self, event: ev.AgentEvent) -> None:
        item = self._items.get(event.session_id or "")
        if item is None:
            return
        if isinstance(event, ev.ProposalCreated):
            item["proposalIds"].append(event.proposal_id)
            if item not in self.inbox:
                self.inbox.append(item)
            self._server.protocol.notify(INBOX, {"item": item})
        elif isinstance(event, ev.TurnEnded) and not item["proposalIds"]:
            self._items.pop(event.session_id or "", None)  # nothing to review: no item

    # -- helpers -----------------------------------------------------------------------------

    def _log(self, workspace: Path, **record: Any) -> None:
        try:
            DailyLog(self._state_dir(), workspace).write(**record)
        except OSError as exc:
            log.warning("the watcher's log cannot be written: %s", exc)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()


def register(server: AgentServer) -> None:
    def on_save(params: lsp.DidSaveTextDocumentParams) -> None:
        fs = to_fs_path(params.text_document.uri)
        if fs:
            server.watcher.on_save(Path(fs))

    on_notification(server, lsp.TEXT_DOCUMENT_DID_SAVE, on_save)

    @server.feature(INBOX_LIST)
    def inbox_list(ls: AgentServer, params: Any) -> dict[str, Any]:
        return {"items": list(ls.watcher.inbox)}

    @server.feature(WATCH_STATUS)
    async def status(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(MemoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        config, warnings = ls.watcher.config(workspace)
        approved = config is not None and await asyncio.to_thread(
            Approvals(ls.watcher._state_dir()).approved, workspace, config)
        return {"enabled": bool(config and config.enabled), "paused": ls.watcher.paused,
                "testCommand": config.test_command if config else None,
                "source": config.source if config else None,
                "approved": approved, "warnings": warnings}

    @server.feature(WATCH_APPROVE)
    async def approve(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(MemoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        config, _ = ls.watcher.config(workspace)
        if config is None:
            raise JsonRpcInvalidRequest("this workspace has no watcher settings to approve")
        await asyncio.to_thread(Approvals(ls.watcher._state_dir()).approve, workspace, config)
        return {"approved": True, "testCommand": config.test_command}

    @server.feature(WATCH_PAUSE)
    def pause(ls: AgentServer, params: Any) -> dict[str, Any]:
        ls.watcher.paused = p.parse(PauseParams, params).paused
        return {"paused": ls.watcher.paused}

