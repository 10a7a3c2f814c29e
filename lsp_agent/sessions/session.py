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
from typing import Any

from lsp_agent.agent.coordinator import (
    COORDINATOR_PROMPT,
    TEAM_TOOLS,
    coordinator_tools,
    make_scratch,
)
from lsp_agent.agent.hook_judge import HookJudge
from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.agent.subagents import AgentTool, Delegation, label_event
from lsp_agent.agent.teams import SendMessage
from lsp_agent.context.agents import load_catalog
from lsp_agent.context.auto_memory import MemoryRefused, auto_memory_for, memory_layer
from lsp_agent.context.layers import system_layers
from lsp_agent.context.manager import ContextManager, ContextPolicy
from lsp_agent.context.memory import MemoryLoader
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.session_safety import (
    MAX_STOP_CONTINUATIONS,
    SessionSafety,
    stop_hook_prompt,
)
from lsp_agent.sessions import commands
from lsp_agent.sessions.context import prompt_blocks
from lsp_agent.sessions.extensions import session_extensions
from lsp_agent.sessions.proposals import EditApplier, ProposalBook, ProposalHost
from lsp_agent.sessions.recorder import SessionRecorder
from lsp_agent.sessions.sidechain import open_sidechain
from lsp_agent.store import Redactor
from lsp_agent.tools.background import BackgroundTask, BackgroundTasks
from lsp_agent.tools.base import ToolContext, ToolPool
from lsp_agent.tools.memory import MemoryTool
from lsp_agent.tools.pool import DEFERRED_TOOLS, session_pool
from lsp_agent.tools.task_list import TaskBoard, TaskItem
from lsp_agent.tools.todos import TodoItem, TodoList
from lsp_agent.types import events as ev
from lsp_agent.types.editor import EditorContext
from lsp_agent.types.permissions import Asker, Mode
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DocumentSource
from lsp_agent.workspace.worktrees import worktrees_for

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
    context: ContextPolicy = field(default_factory=ContextPolicy.from_env)
    user_memory_dirs: list[Path] | None = None  # None: the user's config folders
    # Settings given by the editor or the command line ({"permissions", "sandbox", "hooks"}).
    safety_options: dict[str, Any] | None = None
    # Coordinator mode (agent/coordinator.py): the agent only plans and delegates.
    coordinator: bool = False


class Session:
    def __init__(
        self,
        config: SessionConfig,
        *,
        model: ModelService,
        tools: ToolPool,
        documents: DocumentSource,
        diagnostics: DiagnosticsStore,
        applier: EditApplier,
        sink: EventSink,
        asker: Asker | None,
        code_intel: Any = None,
        session_id: str | None = None,
        recorder: SessionRecorder | None = None,
    ):
        self.id = session_id or uuid.uuid4().hex[:12]
        self.config = config
        self.workspace = config.workspace
        self._sink = sink
        self._seq = 0
        self._turn: asyncio.Task[ev.TurnEnded] | None = None
        self._stopping: asyncio.Future[str | None] | None = None  # Stop hooks running
        self._cancel_requested = False
        self.processes = ProcessGroups()
        self.todos = TodoList(on_change=self._todos_changed)
        self.tasks = BackgroundTasks(on_end=self._background_task_ended)
        self.task_board = TaskBoard(on_change=self._task_list_changed)
        # Oversized tool results: with the session's other files when it is saved, so the
        # retention policy deletes them with it.
        self.results_dir = (
            recorder.store.layout.session_dir(config.workspace, self.id) / "tool-results"
            if recorder is not None
            else config.state_dir / "sessions" / self.id / "tool-results")
        # Coordinator mode's scratchpad: with the session's files, deleted with them.
        self.scratch = self.results_dir.with_name("scratch") if config.coordinator else None
        readable = [self.results_dir, *([self.scratch] if self.scratch else [])]
        self.safety = SessionSafety.build(config.workspace, config.mode, readable,
                                          config.safety_options, self.id)
        self.gate = self.safety.gate
        asker = self.safety.asker = self.safety.notifying(asker)  # Notification hooks
        self.safety.hooks.judge = HookJudge(model)  # prompt hooks' small model
        self.documents = documents
        self.applier = applier
        self.diagnostics = diagnostics
        self.code_intel = code_intel
        # The transcript: None when sessions are not saved (tests, --no-persist).
        self.recorder = recorder
        self.proposals = ProposalBook(ProposalHost(
            self.id, config.workspace, documents, self.emit, lambda: self.gate.mode,
            file_history=recorder), applier)
        from lsp_agent.tools.results import finalize_output

        # Delegation (docs/delegation.md): the Agent tool and what children share.
        self.delegation = Delegation(
            model=model, gate=self.gate, asker=asker, emit=self.emit, tools=tools,
            system=self._system, tool_context=self._tool_context,
            new_context=self._child_context, session_id=self.id, hooks=self.safety.hooks,
            finalize=finalize_output,
            sidechain=lambda agent_id, kind, prompt, about: open_sidechain(
                recorder, agent_id, kind, prompt, about),
            catalog=load_catalog(config.workspace, [*tools.names(), AgentTool.name]),
            workspace=config.workspace, worktrees=worktrees_for(config.state_dir),
            scratch=self.scratch)
        agent_tool = self.agent_tool = AgentTool(self.delegation)
        # Auto memory (docs/autonomy.md): its tool only when it is on.
        self.auto_memory, memory_warnings = auto_memory_for(
            config.state_dir, config.workspace, config.safety_options,
            recorder.store.redactor.text if recorder is not None
            else Redactor.from_environment().text)
        self.safety.warnings.extend(memory_warnings)
        memory_tools = [MemoryTool(self.auto_memory)] if self.auto_memory is not None else []
        own = [*tools, agent_tool, SendMessage(self.delegation), *memory_tools]
        self.tools = session_pool(
            ToolPool(coordinator_tools(own) if config.coordinator else own),
            DEFERRED_TOOLS if config.coordinator else (*DEFERRED_TOOLS, *TEAM_TOOLS))
        self.memory = MemoryLoader(config.workspace, config.user_memory_dirs,
                                   self.gate.file_rules)
        self.context = ContextManager(
            config.context, service=model, workspace=config.workspace, memory=self.memory,
            reader=self._reread_file,
            preserved=self._preserved_through_compaction,
            before_compact=self.safety.before_compact)
        self.agent = Agent(AgentDeps(
            model=model,
            tools=self.tools,
            gate=self.gate,
            system=self._system,
            tool_context=self._tool_context,
            asker=asker,
            finalize=finalize_output,
            session_id=self.id,
            context=self.context,
            hooks=self.safety.hooks,
            notices=self.tasks.notices,
        ))
        agent_tool.owner = self.agent
        self._system_cache: list[dict[str, Any]] | None = None
        if recorder is not None:
            recorder.set_notify(self._persistence_notice)
            recorder.model = self.agent.model
            self.agent.conversation.observer = recorder
        self.extensions = session_extensions(self)  # MCP servers, skills, commands, plugins
        if recorder is not None:  # MCP servers' env values and headers never reach a file
            specs = list(self.extensions.mcp.config.servers.values())
            recorder.store.redactor.add_env(*(s.env for s in specs), *(s.headers for s in specs))

    # -- events ------------------------------------------------------------------------------

    def emit(self, event: ev.AgentEvent) -> ev.AgentEvent:
        self._seq += 1
        event.session_id = self.id
        label_event(event)  # emitted while a subagent runs (its proposals): name the child
        if isinstance(event, ev.CompactBoundary) and event.agent_id is None:
            self.safety.start_source = "compact"  # SessionStart hooks run again, as compact
        event.seq = self._seq
        try:  # the transcript, then the client: a broken consumer must not break the turn
            if self.recorder is not None:
                self.recorder.on_event(event)
        except Exception:
            log.exception("recording the event failed")
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
        if mode != self.gate.mode and self.recorder is not None:
            self.recorder.mode_changed(mode)
        self.gate.mode = mode

    def set_model(self, model: str) -> str:
        """Use ``model`` from the session's next model request on (also within a running turn:
        each request reads it; ``model_request`` and ``usage`` events name the model used)."""
        self.agent.model = model.strip()
        if self.recorder is not None:
            self.recorder.model_changed(self.agent.model)
        return self.agent.model

    @property
    def busy(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def begin(self, text: str, context: EditorContext | None = None) -> asyncio.Task[ev.TurnEnded]:
        """Start a turn now (the session is busy from this call on) and return its task."""
        if self.busy:
            raise SessionBusy(f"session {self.id} is already running a turn")
        if context is not None:
            self.diagnostics.remember(context)
        blocks = prompt_blocks(text, context, self.workspace, self.documents,
                               self.gate.file_rules)
        self._cancel_requested = False
        # Slash commands and extensions see the prompt first (sessions/commands.py).
        self._turn = commands.begin_turn(self, text, context) or \
            asyncio.create_task(self._run(blocks, text, context))
        commands.end_turn(self, self._turn)
        self._turn.add_done_callback(lambda _: self.safety.arm_idle())
        return self._turn

    async def prompt(self, text: str, context: EditorContext | None = None) -> ev.TurnEnded:
        """Run one turn to its end. Cancelling the caller cancels the turn."""
        turn = self.begin(text, context)
        try:
            return await asyncio.shield(turn)
        except asyncio.CancelledError:
            await self.cancel()
            raise

    async def _run(self, blocks: list[dict[str, Any]], text: str = "",
                   context: EditorContext | None = None) -> ev.TurnEnded:
        texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        blocks, blocked = await self.safety.before_turn(blocks, texts[-1] if texts else "")
        if blocked is not None:
            return self._refuse_turn(texts[-1] if texts else "", blocked)
        self.delegation.report_warnings()
        if self.scratch is not None:
            await make_scratch(self.scratch)
        if self.recorder is not None:
            # Open before the prompt is recorded: its entry starts the turn's checkpoint.
            await self.recorder.ready()
            self.recorder.expect_prompt(text, "user", context.wire() if context else None)
            self.recorder.remember_prompt(text)
        continuations = 0
        while True:
            if continuations and self.recorder is not None:
                self.recorder.expect_prompt(str(blocks[0].get("text", "")), "stop_hook", None)
            ended = await self._agent_turn(blocks, continued=continuations > 0)
            reason = await self._stop_hooks(ended, active=continuations > 0)
            if reason is not None and continuations >= MAX_STOP_CONTINUATIONS:
                return self._end_over_stop_limit(ended, reason)
            self.emit(ended)
            if reason is None:
                return ended
            # A Stop hook did not let the turn end: a new turn answers its reason.
            continuations += 1
            blocks = [stop_hook_prompt(reason)]

    async def _agent_turn(self, blocks: list[dict[str, Any]], *,
                          continued: bool) -> ev.TurnEnded:
        """Run the agent, emitting its events except TurnEnded (the Stop hooks come first)."""
        request = self.context.current_request
        ended: ev.TurnEnded | None = None
        async for event in self.agent.run_turn(blocks):
            if isinstance(event, ev.TurnEnded):
                ended = event
                continue
            if continued and isinstance(event, ev.TurnStarted):
                event.trigger = "stop_hook"
                # A hook's reason is not the user's request: compaction keeps the user's.
                self.context.current_request = request
            self.emit(event)
        assert ended is not None
        return ended

    async def _stop_hooks(self, ended: ev.TurnEnded, *, active: bool) -> str | None:
        """The reason a Stop hook gives to continue; None to let the turn end (always after
        a cancel: a cancel also stops a Stop hook that is running)."""
        if self._cancel_requested:
            return None
        self._stopping = asyncio.ensure_future(self.safety.after_turn(ended.stop_reason, active))
        try:
            reason = await self._stopping
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return None
        finally:
            self._stopping = None
        return None if self._cancel_requested else reason

    def _end_over_stop_limit(self, ended: ev.TurnEnded, reason: str) -> ev.TurnEnded:
        self.emit(ev.ErrorEvent(kind="stop_hook_limit", message=(
            f"A Stop hook asked to continue after {MAX_STOP_CONTINUATIONS} continuations "
            f"already; stopping. Its reason: {reason[:1000]}")))
        final = ev.TurnEnded(stop_reason="error", usage=ended.usage, rounds=ended.rounds)
        self.emit(final)
        return final

    def _refuse_turn(self, prompt: str, reason: str) -> ev.TurnEnded:
        """A UserPromptSubmit hook blocked the prompt: the turn ends before the model."""
        self.emit(ev.TurnStarted(prompt=prompt[:2000]))
        self.emit(ev.ErrorEvent(kind="hook_blocked",
                                message=f"A hook blocked the prompt: {reason}"))
        ended = ev.TurnEnded(stop_reason="error", usage=ev.Usage(), rounds=0)
        self.emit(ended)
        return ended

    async def cancel(self) -> bool:
        """Stop the running turn and wait until it has settled; False when none was running."""
        turn = self._turn
        if turn is None or turn.done():
            return False
        self._cancel_requested = True
        self.tasks.kill_all()  # stopped (not failed): background commands go with the turn
        self.processes.kill_all()
        self.proposals.cancel_pending()
        self.agent.cancel()
        self.delegation.cancel_children()
        if self._stopping is not None:
            self._stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(turn), 10)
        return True

    # -- the context window ------------------------------------------------------------------

    async def compact(self, instructions: str | None = None) -> ev.CompactBoundary | None:
        """Summarise the conversation now (between turns); None when there was nothing to
        summarise or the model failed (an ``error`` event says why)."""
        if self.busy:
            raise SessionBusy(f"session {self.id} is running a turn; compact after it ends")
        return await self.context.compact(self.agent.window(), self.emit, trigger="manual",
                                          instructions=instructions)

    async def context_report(self) -> dict[str, Any]:
        """Token breakdown of what the next request would send, and the session's cost."""
        return await self.context.breakdown(self.agent.window())

    def _preserved_through_compaction(self) -> list[str]:
        kept = [todos] if (todos := self.todos.preserved()) else []
        pending = self.proposals.pending_ids
        if pending:
            kept.append(f"Proposals still waiting for the user's review: {', '.join(pending)}.")
        return kept

    def _background_task_ended(self, task: BackgroundTask) -> None:
        self.emit(ev.BackgroundTaskEnded(task_id=task.id, status=task.end_status,
                                         exit_code=task.exit_code))

    def _task_list_changed(self, items: list[TaskItem]) -> None:
        self.emit(ev.TaskListUpdated(tasks=[ev.TaskView(**t.model_dump(exclude={"created_by"}))
                                            for t in items]))

    def restore_task_list(self, saved: list[dict[str, Any]]) -> None:
        """The shared task list read back from the transcript (a resume)."""
        items = []
        for raw in saved:
            try:  # saved as on the wire (camelCase)
                items.append(TaskItem.model_validate(ev.TaskView.model_validate(raw).model_dump()))
            except ValueError:
                log.warning("skipping an unreadable task of session %s: %r", self.id, raw)
        self.task_board.restore(items)

    def _todos_changed(self, items: list[TodoItem]) -> None:
        self.emit(ev.TodosUpdated(todos=[ev.TodoView(**item.model_dump()) for item in items]))

    # -- what the agent sees -----------------------------------------------------------------

    def _system(self) -> list[dict[str, Any]]:
        # Computed once per session so the prefix stays byte-identical (cache hits).
        if self._system_cache is None:
            self._system_cache = system_layers(self.workspace, self.memory.initial())
            if self.scratch is not None:  # the coordinator's instructions follow the main ones
                first = self._system_cache[0]
                self._system_cache[0] = {**first, "text": first["text"] + "\n\n"
                                         + COORDINATOR_PROMPT.format(scratch=self.scratch)}
            if self.auto_memory is not None:  # after the cached prefix (context/auto_memory.py)
                try:
                    self._system_cache.append(memory_layer(self.auto_memory))
                except (OSError, MemoryRefused) as exc:
                    log.warning("auto memory of %s is not loaded: %s", self.workspace, exc)
            self._system_cache += self.extensions.style_blocks()  # a style goes after memory
        return self._system_cache

    def _child_context(self) -> ContextManager:
        """A subagent's own context management (window, compaction, cost of its turn)."""
        return ContextManager(self.config.context, service=self.agent.deps.model,
                              workspace=self.workspace, memory=self.memory,
                              reader=self._reread_file)

    def _reread_file(self, path: Path) -> str:
        """A file re-read into the context after a compaction: never a secret (a denied Read
        of .env is among the files the conversation used)."""
        if self.gate.file_rules.is_secret(path):
            raise ValueError(f"{path} is a secret file; it is only read when the user agrees")
        return self.documents.snapshot(path).text

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
            sandbox=self.safety.sandbox,
            todos=self.todos,
            tools=self.tools,
            file_rules=self.gate.file_rules,
            file_history=self.recorder,
            tasks=self.tasks,
            task_board=self.task_board,
        )

    # -- persistence -------------------------------------------------------------------------

    def _persistence_notice(self, message: str) -> None:
        self.emit(ev.ErrorEvent(kind="persistence", message=message, recoverable=True))

    def restore(self, messages: list[dict[str, Any]], todos: list[dict[str, Any]],
                cost_by_model: dict[str, Any], first_prompt: str | None, *,
                prompts: list[str] | None = None,
                auto_decisions: list[dict[str, Any]] | None = None) -> None:
        """State read back from a transcript (a resume): the history as the model last saw
        it, the plan, what the session has cost so far, the user's recent prompts and auto
        mode's decisions (its classifier goes on with both). Nothing is re-recorded."""
        self.agent.conversation.messages[:] = messages
        self.todos.restore(self._saved_todos(todos))
        for model, row in cost_by_model.items():
            try:  # saved as on the wire (camelCase); either spelling is read
                usage = ev.Usage.model_validate(row.get("usage") or {})
            except ValueError:
                log.warning("skipping unreadable usage of %s in session %s", model, self.id)
                continue
            self.context.session_cost.add(model, usage)
        if first_prompt:
            self.context.original_request = first_prompt
        self.agent.recent_prompts = [p for p in prompts or [] if p.strip()][-5:]
        for entry in auto_decisions or []:
            if not entry.get("error") and isinstance(entry.get("callKey"), str):
                self.agent.auto.restore(entry["callKey"], str(entry.get("decision")),
                                        str(entry.get("reason", "")))
        self.safety.start_source = "resume"

    def restore_conversation(self, messages: list[dict[str, Any]],
                             todos: list[dict[str, Any]]) -> None:
        """The history after a rewind of the conversation (the todos as they were then)."""
        self.agent.conversation.messages[:] = messages
        self.todos.replace(self._saved_todos(todos))  # the client is told of the change

    def clear_conversation(self) -> None:
        """Start afresh (``/clear``): the history is emptied in place (the transcript's
        observer stays) and the transcript records it, so a resume starts afresh too."""
        self.agent.conversation.messages.clear()
        self.context.original_request = None
        self.safety.start_source = "clear"
        if self.recorder is not None:
            self.recorder.cleared()
        self.todos.replace([])

    def _saved_todos(self, todos: list[dict[str, Any]]) -> list[TodoItem]:
        items = []
        for raw in todos:
            try:
                items.append(TodoItem.model_validate(raw))
            except ValueError:
                log.warning("skipping an unreadable todo of session %s: %r", self.id, raw)
        return items

    async def close(self) -> None:
        """End the session: stop its turn, then flush and close its transcript."""
        await self.cancel()
        await self.safety.session_end()
        self.tasks.kill_all()  # background commands end with their session
        await self.delegation.close()  # children's transcripts
        await self.extensions.close()  # its MCP servers stop with it
        if self.recorder is not None:
            await self.recorder.close()
