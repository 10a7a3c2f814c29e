"""The ACP agent: ACP requests in, session calls out; session events out as ``session/update``.

Handlers stay short: the mapping of events is in mapping.py, the client's file system in
client_io.py. Permission questions become ``session/request_permission``; an edit waiting for
review becomes one too, with its ``diff`` content, and the answer is the review (nothing is
written before it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, cast

from acp import PROTOCOL_VERSION, RequestError, update_agent_message_text
from acp.helpers import update_available_commands, update_current_mode
from acp.schema import (
    AgentCapabilities,
    AvailableCommand,
    AvailableCommandInput,
    ClientCapabilities,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionListCapabilities,
    SetSessionModeResponse,
    ToolCallUpdate,
    UnstructuredCommandInput,
)

from lsp_agent import __version__
from lsp_agent.acp import saved
from lsp_agent.acp.client_io import CURRENT_SESSION, ClientDocuments, ClientFs, ClientWriter
from lsp_agent.acp.mapping import (
    UpdateMapper,
    diff_contents,
    mode_state,
    prompt_usage,
    stop_reason,
)
from lsp_agent.acp.prompt import prompt_text
from lsp_agent.acp.replay import replay
from lsp_agent.model.client import ModelSettings
from lsp_agent.sessions.manager import SessionManager, UnknownSession
from lsp_agent.sessions.proposals import UnknownProposal
from lsp_agent.sessions.session import Session, SessionBusy
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import MODES, Mode, PermissionAnswer

log = logging.getLogger(__name__)

INVALID_PARAMS = saved.INVALID_PARAMS
INVALID_REQUEST = saved.INVALID_REQUEST

# session/request_permission for a tool call: option id -> our answer.
TOOL_OPTIONS = [
    PermissionOption(option_id="allow", name="Allow once", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Always allow in this session",
                     kind="allow_always"),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
]
TOOL_ANSWERS: dict[str, PermissionAnswer] = {
    "allow": PermissionAnswer("allow"),
    "allow_always": PermissionAnswer("allow", remember=True),  # a session rule
    "reject": PermissionAnswer("deny", message="The user rejected it in the editor."),
}
# ... and for an edit under review: option id -> (accept, reject, mode to switch to).
EDIT_OPTIONS = [
    PermissionOption(option_id="apply", name="Apply this edit", kind="allow_once"),
    PermissionOption(option_id="apply_always", name="Apply, and accept edits from now on",
                     kind="allow_always"),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
]
EDIT_ANSWERS: dict[str, tuple[Any, Any, Mode | None]] = {
    "apply": ("all", [], None),
    "apply_always": ("all", [], "acceptEdits"),
    "reject": ([], "all", None),
}
COMMANDS = [
    AvailableCommand(name="compact", description="Summarise the conversation to free context",
                     input=AvailableCommandInput(root=UnstructuredCommandInput(
                         hint="what the summary should keep (optional)"))),
]


def _error(code: int, message: str) -> RequestError:
    return RequestError(code, message)


class AcpAgent:
    """One ACP connection: its sessions, their event streams, and the client's answers."""

    def __init__(self, settings: ModelSettings, state_dir: Path, default_mode: Mode = "default"):
        self.fs = ClientFs(session_for=self._session_holding)
        self.default_mode: Mode = default_mode
        self.manager = SessionManager(
            settings=settings, documents=ClientDocuments(self.fs), applier=ClientWriter(self.fs),
            sink=self._on_event, asker=self._ask, state_dir=state_dir,
            code_intel_for=self._code_intel_for)
        self.conn: Any = None
        self._mappers: dict[str, UpdateMapper] = {}
        self._errors: dict[str, str] = {}  # the last error of each session's turn
        self._reviews: dict[str, set[asyncio.Task[None]]] = {}
        self._intel: dict[Path, Any] = {}
        self._outbox: asyncio.Queue[tuple[str, Any]] | None = None
        self._pump: asyncio.Task[None] | None = None

    def on_connect(self, conn: Any) -> None:
        self.conn = self.fs.conn = conn

    # -- requests ----------------------------------------------------------------------------

    async def initialize(self, protocol_version: int,
                         client_capabilities: ClientCapabilities | None = None,
                         client_info: Implementation | None = None,
                         **kwargs: Any) -> InitializeResponse:
        fs = client_capabilities.fs if client_capabilities else None
        self.fs.can_read = bool(fs and fs.read_text_file)
        self.fs.can_write = bool(fs and fs.write_text_file)
        log.info("ACP client %s: fs read %s, write %s",
                 client_info.name if client_info else "(unnamed)", self.fs.can_read,
                 self.fs.can_write)
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,  # the only one we speak: the client decides
            agent_capabilities=AgentCapabilities(
                load_session=self.manager.store is not None,
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
                prompt_capabilities=PromptCapabilities(image=False, audio=False,
                                                       embedded_context=True)),
            agent_info=Implementation(name="lsp-agent", title="lsp-agent", version=__version__),
            auth_methods=[])

    async def new_session(self, cwd: str, additional_directories: list[str] | None = None,
                          mcp_servers: list[Any] | None = None,
                          **kwargs: Any) -> NewSessionResponse:
        workspace = await self._workspace(cwd)
        if mcp_servers:
            log.warning("ignoring %d MCP server(s) from the client: not supported over ACP yet",
                        len(mcp_servers))
        session = self.manager.create(workspace, self.default_mode)
        self._mappers[session.id] = UpdateMapper(session.workspace,
                                                 session.config.context.window_tokens)
        self._send(session.id, update_available_commands(COMMANDS))
        return NewSessionResponse(session_id=session.id, modes=mode_state(session.mode))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                           **kwargs: Any) -> LoadSessionResponse:
        """Resume a saved session and replay what the user saw of it, then answer."""
        workspace = await self._workspace(cwd)
        resumed, entries = await saved.resume(self.manager, workspace, session_id,
                                              self.default_mode)
        session = resumed.session
        self._mappers.setdefault(session.id, UpdateMapper(session.workspace,
                                                          session.config.context.window_tokens))
        for update in replay(entries, session.workspace):
            self._send(session.id, update)
        if notes := saved.resume_notes(resumed):
            self._send(session.id, update_agent_message_text(
                "\n[lsp-agent: resumed] " + " ".join(notes) + "\n"))
        self._send(session.id, update_available_commands(COMMANDS))
        await self._flush()  # the whole history before the answer, as ACP asks
        return LoadSessionResponse(modes=mode_state(session.mode))

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None,
                            **kwargs: Any) -> ListSessionsResponse:
        if cwd is None:
            raise _error(INVALID_PARAMS, "session/list needs cwd: sessions are kept per folder")
        return await saved.list_page(self.manager, await self._workspace(cwd), cursor)

    async def _workspace(self, cwd: str) -> Path:
        workspace = Path(cwd)
        if not workspace.is_absolute() or not await asyncio.to_thread(workspace.is_dir):
            raise _error(INVALID_PARAMS, f"cwd must be an existing folder's absolute path: {cwd}")
        return workspace

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        session = self._session(session_id)
        text = prompt_text(prompt, session.gate.file_rules)
        if not text.strip():
            raise _error(INVALID_PARAMS, "the prompt is empty")
        if (command := _command(text)) is not None:
            return await self._run_command(session, *command)
        self._errors.pop(session.id, None)
        token = CURRENT_SESSION.set(session.id)  # the turn's tasks inherit it (fs requests)
        try:
            ended = await session.prompt(text)
        except SessionBusy as exc:
            raise _error(INVALID_REQUEST, f"{exc}; wait for it or cancel it") from None
        finally:
            CURRENT_SESSION.reset(token)
        await self._flush()  # every update of the turn reaches the client before the answer
        reason = stop_reason(ended)
        if reason is None:
            raise _error(-32603, self._errors.pop(session.id, "the turn ended in an error"))
        return PromptResponse(stop_reason=reason, usage=prompt_usage(ended.usage))

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        try:
            session = self.manager.get(session_id)
        except UnknownSession:
            log.warning("session/cancel for an unknown session: %s", session_id)
            return
        for task in self._reviews.pop(session_id, set()):
            task.cancel()  # the client answers its open review with "cancelled"
        await session.cancel()

    async def set_session_mode(self, mode_id: str, session_id: str,
                               **kwargs: Any) -> SetSessionModeResponse:
        session = self._session(session_id)
        if mode_id not in MODES:
            raise _error(INVALID_PARAMS, f"unknown mode {mode_id!r}; one of {', '.join(MODES)}")
        session.set_mode(cast(Mode, mode_id))  # checked just above
        return SetSessionModeResponse()

    async def shutdown(self) -> None:
        await self.manager.close_all()  # turns stop, their processes die, transcripts close
        if self._pump is not None:
            self._pump.cancel()

    # -- slash commands ----------------------------------------------------------------------

    async def _run_command(self, session: Session, name: str, argument: str) -> PromptResponse:
        try:
            boundary = await session.compact(argument or None)
        except SessionBusy as exc:
            raise _error(INVALID_REQUEST, str(exc)) from None
        await self._flush()
        text = ("Nothing to compact." if boundary is None else
                f"Compacted: {boundary.tokens_before:,} -> {boundary.tokens_after:,} tokens.")
        self._send(session.id, update_agent_message_text(text))
        await self._flush()
        return PromptResponse(stop_reason="end_turn")

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, event: ev.AgentEvent) -> None:
        mapper = self._mappers.get(event.session_id)
        if mapper is None:
            return
        if isinstance(event, ev.ErrorEvent):
            self._errors[event.session_id] = event.message
        for update in mapper.updates(event):
            self._send(event.session_id, update)
        if isinstance(event, ev.ProposalCreated) and not event.auto_apply:
            self._track(event.session_id, self._review(event))

    def _send(self, session_id: str, update: Any) -> None:
        if self._outbox is None:
            self._outbox = asyncio.Queue()
            self._pump = asyncio.get_running_loop().create_task(self._deliver(self._outbox))
        self._outbox.put_nowait((session_id, update))

    async def _deliver(self, outbox: asyncio.Queue[tuple[str, Any]]) -> None:
        """Send updates in the order they happened (the sink itself cannot await)."""
        while True:
            session_id, update = await outbox.get()
            try:
                await self.conn.session_update(session_id=session_id, update=update)
            except Exception as exc:  # a client gone: the turn still ends properly
                log.warning("session/update not delivered: %s", exc)
            finally:
                outbox.task_done()

    async def _flush(self) -> None:
        if self._outbox is not None:
            await self._outbox.join()

    def _track(self, session_id: str, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        tasks = self._reviews.setdefault(session_id, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_failure)

    # -- questions to the user ---------------------------------------------------------------

    async def _ask(self, asked: ev.PermissionAsked) -> PermissionAnswer:
        mapper = self._mappers[asked.session_id]
        choice = await self._request(asked.session_id, mapper.permission_subject(asked),
                                     TOOL_OPTIONS)
        if choice is None:
            return PermissionAnswer("deny", message="The user dismissed the question.")
        return TOOL_ANSWERS.get(choice, PermissionAnswer(
            "deny", source="error", message=f"the editor answered an unknown option {choice!r}"))

    async def _review(self, created: ev.ProposalCreated) -> None:
        """Show the proposed files whole as diffs; the answer applies or rejects them."""
        session = self.manager.get(created.session_id)
        proposal = session.proposals.pending(created.proposal_id)
        if proposal is None:
            return
        diffs = diff_contents([(f.path, f.old_text, f.new_text) for f in proposal.files])
        mapper = self._mappers[session.id]
        subject = mapper.show_diffs(created.tool_use_id, diffs)
        self._send(session.id, mapper.tool_call_update(
            created.tool_use_id, content=subject.content, locations=subject.locations))
        choice = await self._request(session.id, subject, EDIT_OPTIONS)
        accept, reject, mode = EDIT_ANSWERS.get(choice or "reject", EDIT_ANSWERS["reject"])
        if mode is not None:
            session.set_mode(mode)
            self._send(session.id, update_current_mode(mode))
        feedback = None if accept else "The user rejected the edit in the editor."
        try:
            await session.proposals.review(created.proposal_id, accept, reject, feedback)
        except UnknownProposal:
            log.info("proposal %s was resolved before its review", created.proposal_id)

    async def _request(self, session_id: str, subject: ToolCallUpdate,
                       options: list[PermissionOption]) -> str | None:
        """Ask the client; the option chosen, or None when cancelled or unanswerable."""
        await self._flush()  # the tool call must exist at the client before the question
        try:
            response = await self.conn.request_permission(
                session_id=session_id, tool_call=subject, options=options)
        except Exception as exc:
            log.warning("session/request_permission failed: %s", exc)
            return None
        outcome = response.outcome
        return outcome.option_id if getattr(outcome, "outcome", "") == "selected" else None

    # -- sessions ----------------------------------------------------------------------------

    def _session(self, session_id: str) -> Session:
        try:
            return self.manager.get(session_id)
        except UnknownSession:
            raise _error(INVALID_PARAMS, f"unknown session: {session_id}") from None

    def _session_holding(self, path: Path) -> str | None:
        holding = [s for s in self.manager.all() if path.is_relative_to(s.workspace)]
        best = max(holding, key=lambda s: len(s.workspace.parts), default=None)
        return best.id if best is not None else None

    def _code_intel_for(self, root: Path) -> Any:
        if root not in self._intel:
            from lsp_agent.code_intel.jedi_intel import JediIntel

            self._intel[root] = JediIntel(root, self.manager.factory.parts.documents)
        return self._intel[root]


def _command(text: str) -> tuple[str, str] | None:
    """A slash command this front end runs itself: (name, argument)."""
    head, _, rest = text.strip().partition(" ")
    if head.startswith("/") and head[1:] in {c.name for c in COMMANDS}:
        return head[1:], rest.strip()
    return None


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ACP review failed", exc_info=task.exception())

