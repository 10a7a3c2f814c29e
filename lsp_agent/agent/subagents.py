"""Delegation: the Agent tool runs a child agent and returns only its final answer.

A child is the same agent loop (``Agent``) with a fresh conversation, its own context manager
and its own tool pool, sharing the session's model service, permission gate, hooks, asker and
review flow. Its events go to the session's client tagged with the child's ``agent_id`` and the
``parent_tool_use_id`` of the Agent call that started it; its usage and cost are added to the
parent's turn. Nothing of its intermediate tool output enters the parent's conversation: the
tool result is the child's last message plus one usage line.

Several Agent calls of one response run concurrently (the Agent tool is concurrency safe), at
most ``max_parallel`` children per session at a time. Cancelling the parent's turn cancels the
tool calls, and so every child (and their children). Children at ``max_depth`` get no Agent
tool: delegation does not recurse past it.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.agent.coordinator import WORKER_NOTE, worker_context
from lsp_agent.agent.isolation import WorktreeWriter, isolated_context, isolated_gate
from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.agent.subagent_hooks import subagent_start, subagent_stop
from lsp_agent.agent.worktree_return import Propose, bring_back, seed
from lsp_agent.context.agents import READ_ONLY, AgentCatalog, AgentType
from lsp_agent.context.conversation import ConversationObserver
from lsp_agent.context.manager import ContextManager
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.hooks import Hooks
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.sandbox import Sandbox
from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolPool
from lsp_agent.types import events as ev
from lsp_agent.types.edits import FileEdit
from lsp_agent.types.permissions import Asker, Mode, PermissionAnswer
from lsp_agent.workspace.worktrees import AgentWorktree, Finished, WorktreeError, Worktrees

AGENT_TOOL = "Agent"
DEFAULT_MAX_DEPTH = 1  # the main agent is depth 0: its children cannot delegate further
DEFAULT_MAX_PARALLEL = 4  # children running at once per session; more wait their turn
MAX_KEPT_AGENTS = 32  # ended children whose conversation SendMessage can continue
MAX_INBOX_TURNS = 5  # turns a child runs on for messages that came while it was finishing
# Never offered to a child: the session's plan is the main agent's (a child's TodoWrite would
# replace it), and a child's pool has every tool loaded (nothing to search for).
NOT_FOR_CHILDREN = frozenset({"TodoWrite", "ToolSearch", AGENT_TOOL})
MODEL_ALIASES = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-5",
                 "opus": "claude-opus-4-1"}

@dataclass
class ChildLabel:
    """Who a child is, for the events emitted on its behalf outside its own stream."""

    agent_id: str
    parent_tool_use_id: str
    name: str
    description: str
    proposals: list[str] = field(default_factory=list)  # ids of its proposals, as made


# The child whose task is running: events emitted on its behalf outside its own stream (its
# proposals) are labelled with it (``label_event``).
CURRENT_CHILD: contextvars.ContextVar[ChildLabel | None] = contextvars.ContextVar(
    "lsp_agent_current_child", default=None)


def label_event(event: ev.AgentEvent) -> None:
    """Tag an event emitted while a child runs (a proposal of its edit) with that child."""
    child = CURRENT_CHILD.get()
    if child is None or event.agent_id is not None:
        return
    event.agent_id, event.parent_tool_use_id = child.agent_id, child.parent_tool_use_id
    if isinstance(event, ev.ProposalCreated):
        event.agent_name, event.agent_description = child.name, child.description
        child.proposals.append(event.proposal_id)


class Sidechain(ConversationObserver, Protocol):
    """A child's own transcript (sessions/sidechain.py)."""

    model: str

    def on_event(self, event: ev.AgentEvent) -> None: ...

    def expect_prompt(self, text: str, origin: str, editor_context: Any) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Delegation:
    """What every agent of one session shares with the children it starts."""

    model: ModelService
    gate: PermissionGate
    asker: Asker | None
    emit: Callable[[ev.AgentEvent], Any]  # the session's: stamps, records, sends
    tools: ToolPool  # every tool of the session; children choose from these
    system: Callable[[], list[dict[str, Any]]]  # the session's layers (environment, memory)
    tool_context: Callable[[str], ToolContext]
    new_context: Callable[[], ContextManager]
    catalog: AgentCatalog
    session_id: str = ""
    hooks: Hooks | None = None
    finalize: Callable[[Tool, str | ToolOutput, ToolContext], Awaitable[ToolOutput]] | None = None
    # A child's sidechain transcript (None: not saved): agent id, type, prompt, who it is.
    sidechain: Callable[[str, AgentType, str, dict[str, Any]], Sidechain | None] | None = None
    max_depth: int = DEFAULT_MAX_DEPTH
    max_parallel: int = DEFAULT_MAX_PARALLEL
    workspace: Path | None = None  # the session's (isolated children get a worktree of it)
    worktrees: Worktrees | None = None  # None: isolation is not available
    scratch: Path | None = None  # coordinator mode's scratchpad, which children may write
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)
    _running: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)
    # Every child of the session by agent id, newest last, for SendMessage (agent/teams.py):
    # its conversation is kept while the session lives (the oldest ended ones beyond
    # MAX_KEPT_AGENTS are forgotten).
    agents: dict[str, Child] = field(default_factory=dict, repr=False)
    _closing: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)
    _pools: dict[tuple[AgentType, int], ToolPool] = field(default_factory=dict, repr=False)

    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
        return self._slots

    def cancel_children(self) -> None:
        """Cancel every running child at once (the parent's own cancel reaches them only
        after the tool call it waits on has settled)."""
        for task in list(self._running):
            task.cancel()

    def keep(self, child: Child) -> None:
        self.agents[child.agent_id] = child
        ended = [c for c in self.agents.values() if not c.running]
        for old in ended[: max(0, len(self.agents) - MAX_KEPT_AGENTS)]:
            del self.agents[old.agent_id]
            if old.sidechain is not None:
                self._closing.add(asyncio.ensure_future(old.sidechain.close()))

    def find(self, name_or_id: str) -> Child | None:
        """A kept child by agent id, else the newest one with that name."""
        if name_or_id in self.agents:
            return self.agents[name_or_id]
        named = [c for c in self.agents.values() if c.args.name == name_or_id]
        return named[-1] if named else None

    async def close(self) -> None:
        """The session ends: cancel the children and close their transcripts."""
        self.cancel_children()
        closing = [c.sidechain.close() for c in self.agents.values() if c.sidechain is not None]
        await asyncio.gather(*closing, *self._closing, return_exceptions=True)
        self.agents.clear()

    def report_warnings(self) -> None:
        """Say once what was wrong with the custom agent files."""
        for warning in self.catalog.warnings:
            self.emit(ev.ErrorEvent(kind="custom_agent", recoverable=True,
                                    message=f"Custom agent skipped or changed: {warning}"))
        self.catalog.warnings.clear()


class AgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=200,
                             description="A short (3-5 word) description of the task.")
    prompt: str = Field(min_length=1, description=(
        "The task for the agent, complete in itself: it sees nothing of this conversation."))
    subagent_type: str = Field(default="general-purpose",
                               description="The type of agent to use (listed above).")
    model: str | None = Field(default=None, description=(
        "Optional model for the agent: an alias (haiku, sonnet, opus) or a model id; "
        "by default the agent type's, else yours."))
    name: str | None = Field(default=None, max_length=64,
                             description="Optional name shown for the agent.")
    run_in_background: bool = Field(default=False, description=(
        "Return at once with a task id and let the agent work beside you; read its report "
        "with TaskOutput (you are told when it ends)."))
    isolation: Literal["worktree"] | None = Field(default=None, description=(
        "\"worktree\": it works in a new git worktree (HEAD plus the workspace's uncommitted "
        "changes, its own branch); when it ends its changes come back as one proposal for "
        "the user to review."))
    keep_worktree: bool = Field(default=False, description=(
        "With isolation \"worktree\": keep the worktree and its branch after its changes "
        "came back (only when the user asked for it)."))


class AgentTool(Tool):
    name = AGENT_TOOL
    description = (
        "Start a subagent for a task that needs several steps of searching, reading or work "
        "whose details you do not need to keep: it works with a fresh context and its own "
        "tools and returns only its final report. Give it a complete task in `prompt`. Start "
        "several in one response to run them in parallel. Available agent types:")
    input_model = AgentInput
    access = "session"  # the child's own tool calls are judged one by one
    max_result_chars = 40_000
    time_limit = None  # bounded by the child's turn limit; a cancel stops it

    def __init__(self, delegation: Delegation, depth: int = 0):
        self.delegation = delegation
        self.depth = depth
        self.owner: Agent | None = None  # the agent whose pool holds this tool (set after)

    def api_schema(self) -> dict[str, Any]:
        schema = super().api_schema()
        listing = "\n".join(f"- {t.name}: {t.description}"
                            for t in self.delegation.catalog.types.values())
        return {**schema, "description": f"{self.description}\n{listing}"}

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return True  # children run side by side; their own calls are gated and ordered

    async def call(self, args: AgentInput, ctx: ToolContext) -> ToolOutput:
        catalog = self.delegation.catalog
        agent_type = catalog.get(args.subagent_type)
        if agent_type is None:
            raise ToolError(f"Unknown subagent_type {args.subagent_type!r}. Valid types: "
                            + ", ".join(catalog.names()))
        if args.run_in_background:
            if ctx.tasks is None:
                raise ToolError("Background agents are not available in this session.")
            ctx.tasks.check_room()
        agent_id = "agent-" + uuid.uuid4().hex[:12]
        worktree = None
        if args.isolation or agent_type.isolation:
            worktree = await self._worktree(agent_id, args, ctx)
        child = Child(self, agent_type, args, ctx.tool_use_id, agent_id, worktree)
        child.running = True  # from now on SendMessage queues for it
        self.delegation.keep(child)
        if args.run_in_background:
            assert ctx.tasks is not None
            task = ctx.tasks.adopt_agent(self._run(child, ctx), child.label, args.description)
            return ToolOutput(f"Started the {child.label} agent ({child.agent_id}) in the "
                              f"background as task {task.id}. Read its report with TaskOutput; "
                              "you will be told when it ends.")
        return await self._run(child, ctx)

    async def _run(self, child: Child, ctx: ToolContext) -> ToolOutput:
        output = await self._in_slot(child)
        if child.worktree is None:
            return output
        d = self.delegation
        assert d.worktrees is not None and d.workspace is not None
        report = await bring_back(d.worktrees, child.worktree, child.worktree_end, d.workspace,
                                  ctx.documents, ctx.file_rules, child.args.keep_worktree,
                                  child.proposer(ctx))
        return ToolOutput(output.content + report, is_error=output.is_error,
                          images=output.images)

    async def _worktree(self, agent_id: str, args: AgentInput,
                        ctx: ToolContext) -> AgentWorktree:
        d = self.delegation
        if d.worktrees is None or d.workspace is None:
            raise ToolError("Worktree isolation is not available in this session: call Agent "
                            "without isolation.")
        try:
            record = await d.worktrees.create(d.workspace, agent_id, d.session_id,
                                              args.description)
        except WorktreeError as exc:
            raise ToolError(f"Cannot isolate the agent: {exc}. Nothing was started; call "
                            "Agent without isolation to work in the workspace itself.") from None
        try:
            await seed(d.worktrees, record, ctx.file_rules)
        except (WorktreeError, OSError) as exc:
            await asyncio.shield(d.worktrees.drop(record))
            raise ToolError(f"Cannot isolate the agent: the workspace's uncommitted changes "
                            f"could not be copied into its worktree ({exc}). Nothing was "
                            "started.") from None
        return record

    async def _in_slot(self, child: Child) -> ToolOutput:
        try:
            async with self.delegation.slots():
                return await child.run()
        finally:  # cancelled before it ran: its (unchanged) worktree goes
            child.running = False
            if child.worktree is not None and child.worktree_end is None:
                await asyncio.shield(child.end_worktree())

    def child_pool(self, agent_type: AgentType) -> ToolPool:
        """The tools a child of this type gets: the session's, filtered by the type; an Agent
        tool of its own only below the depth limit. A pool without one is shared by every
        child of the type (made once: its schemas cost milliseconds of the event loop, which
        children started together would otherwise take turns for)."""
        key = (agent_type, self.depth)
        shared = self.delegation._pools.get(key)
        if shared is not None:
            return shared
        pool = self._new_child_pool(agent_type)
        if not any(isinstance(t, AgentTool) for t in pool):
            self.delegation._pools[key] = pool
        return pool

    def _new_child_pool(self, agent_type: AgentType) -> ToolPool:
        tools = [t for t in self.delegation.tools if t.name not in NOT_FOR_CHILDREN]
        allowed = agent_type.tools
        if allowed is not None and READ_ONLY in allowed:
            tools = [t for t in tools if t.read_only]
        elif allowed is not None:
            tools = [t for t in tools if t.name in allowed]
        tools = [t for t in tools if t.name not in agent_type.disallowed]
        may_delegate = (self.depth + 1 < self.delegation.max_depth
                        and (allowed is None or AGENT_TOOL in allowed)
                        and AGENT_TOOL not in agent_type.disallowed)
        if may_delegate:
            tools.append(AgentTool(self.delegation, self.depth + 1))
        return ToolPool(tools)


class Child:
    """One run of a subagent, from its start to the tool result its parent gets."""

    ENDED_EARLY: ClassVar[dict[str, str]] = {
        "max_turns": "it reached its limit of {rounds} rounds",
        "cancelled": "it was cancelled",
        "refusal": "the model refused the task",
        "error": "it failed",
    }

    def __init__(self, tool: AgentTool, agent_type: AgentType, args: AgentInput,
                 parent_tool_use_id: str, agent_id: str | None = None,
                 worktree: AgentWorktree | None = None, sidechain: Sidechain | None = None):
        self.tool, self.type, self.args = tool, agent_type, args
        self.delegation = tool.delegation
        self.parent_tool_use_id = parent_tool_use_id
        self.agent_id = agent_id or "agent-" + uuid.uuid4().hex[:12]
        self.label = args.name or agent_type.name
        self.errors: list[str] = []
        self.sidechain: Sidechain | None = sidechain  # given: a resumed child's, going on
        self.turn_ended: ev.TurnEnded | None = None
        self.worktree = worktree
        self.worktree_end: Finished | str | None = None  # how it ended (str: what failed)
        self.running = False
        self.runs = 0
        self.inbox: list[str] = []  # SendMessage's messages, read at its next step
        self.writer = (WorktreeWriter(worktree.root, f"branch {worktree.branch}",
                                      after=" They go to the user as one proposal when you "
                                      "are done.")
                       if worktree is not None else None)
        self.agent = self._build()

    def _build(self) -> Agent:
        d = self.delegation
        pool = self.tool.child_pool(self.type)
        gate = child_gate(d.gate, self.type.permission_mode)
        if d.scratch is not None:
            gate = dataclasses.replace(gate, readable_outside=[*gate.readable_outside, d.scratch],
                                       writable_outside=[*gate.writable_outside, d.scratch])
        if self.worktree is not None:
            gate = isolated_gate(gate, self.worktree.root)
            if not self._sandboxed():
                gate = dataclasses.replace(gate, shell_asks=unconfined_shell(self.worktree))
        agent = Agent(AgentDeps(
            model=d.model, tools=pool, gate=gate,
            system=self._system,
            tool_context=self._tool_context, asker=self._asker(), finalize=d.finalize,
            session_id=d.session_id, hooks=d.hooks, context=d.new_context(),
            notices=self._read_inbox))
        parent_model = self.tool.owner.model if self.tool.owner is not None else agent.model
        wanted = self.args.model or self.type.model
        if wanted is None and self.type.model_setting:  # Explore: a cheaper model by default
            wanted = getattr(d.model.settings, self.type.model_setting, None)
        agent.model = resolve_model(wanted, parent_model)
        if self.type.max_turns:
            agent.max_rounds = min(agent.max_rounds, self.type.max_turns)
        for tool in pool:
            if isinstance(tool, AgentTool):
                tool.owner = agent
        if self.sidechain is None and d.sidechain is not None:
            self.sidechain = d.sidechain(self.agent_id, self.type, self.args.prompt, {
                "agentType": self.type.name, "name": self.args.name,
                "description": self.args.description, "isolated": self.worktree is not None})
        if self.sidechain is not None:
            agent.conversation.observer = self.sidechain
            self.sidechain.model = agent.model
        return agent

    def _sandboxed(self) -> bool:
        """Whether the child's shell commands run in a working sandbox (then only its
        worktree is writable to them)."""
        sandbox = self.delegation.tool_context("").sandbox
        return isinstance(sandbox, Sandbox) and sandbox.active()

    def _system(self) -> list[dict[str, Any]]:
        # The agent's prompt replaces the main agent's; environment and memory stay.
        prompt = [{"type": "text", "text": self.type.prompt}]
        if self.worktree is not None:
            prompt.append({"type": "text", "text": worktree_note(self.worktree)})
        if self.delegation.scratch is not None:
            prompt.append({"type": "text",
                           "text": WORKER_NOTE.format(scratch=self.delegation.scratch)})
        return [*prompt, *self.delegation.system()[1:]]

    def _tool_context(self, tool_use_id: str) -> ToolContext:
        ctx = dataclasses.replace(self.delegation.tool_context(tool_use_id), tools=None,
                                  agent_name=self.label)
        if self.worktree is not None and self.writer is not None:
            ctx = isolated_context(ctx, self.worktree.root, self.writer)
        if self.delegation.scratch is not None:
            ctx = worker_context(ctx, self.delegation.scratch)
        return ctx

    def _asker(self) -> Asker | None:
        ask = self.delegation.asker
        if ask is None:
            return None

        async def ask_naming_the_child(asked: ev.PermissionAsked) -> PermissionAnswer:
            self._tag(asked)
            asked.reason = f"[subagent {self.label}: {self.args.description}] {asked.reason}"
            return await ask(asked)

        return ask_naming_the_child

    def _tag(self, event: ev.AgentEvent) -> None:
        event.agent_id, event.parent_tool_use_id = self.agent_id, self.parent_tool_use_id

    def _emit(self, event: ev.AgentEvent) -> None:
        self._tag(event)
        self.delegation.emit(event)

    async def run(self, message: str | None = None) -> ToolOutput:
        """The child's first turn (its prompt), or with ``message`` a new turn of an ended
        child (SendMessage). Messages that arrive while it finishes get turns of their own."""
        self.running = True
        self.delegation.keep(self)
        self._emit(ev.SubagentStarted(agent_type=self.type.name, description=self.args.description,
                                      name=self.args.name, model=self.agent.model))
        token = CURRENT_CHILD.set(ChildLabel(self.agent_id, self.parent_tool_use_id, self.label,
                                             self.args.description))
        task = asyncio.current_task()
        running = self.delegation._running
        if task is not None:
            running.add(task)
        total, rounds = ev.Usage(), 0
        try:
            text = message if message is not None else self.args.prompt
            for _ in range(MAX_INBOX_TURNS + 1):
                if self.runs and self.sidechain is not None:
                    self.sidechain.expect_prompt(text, "user", None)
                prompt: list[dict[str, Any]] = [{"type": "text", "text": text}]
                if not self.runs:  # SubagentStart hooks add context to the first turn only
                    prompt += await subagent_start(self.delegation.hooks, self.agent_id,
                                                   self.type.name)
                self.runs += 1
                self.turn_ended = None
                await self.agent.run_turn_into(prompt, self._forward)
                if self.turn_ended is not None:
                    total, rounds = total + self.turn_ended.usage, rounds + self.turn_ended.rounds
                if not self.inbox or self.turn_ended is None or \
                        self.turn_ended.stop_reason != "end_turn":
                    break
                text = "\n".join(self._read_inbox())
        finally:
            self.running = False
            CURRENT_CHILD.reset(token)
            if task is not None:
                running.discard(task)
            if self.sidechain is not None:
                await asyncio.shield(self.sidechain.flush())
            if self.worktree is not None and self.worktree_end is None:
                await asyncio.shield(self.end_worktree())
        ended = self.turn_ended or ev.TurnEnded(stop_reason="error", usage=ev.Usage(), rounds=0)
        ended = ev.TurnEnded(stop_reason=ended.stop_reason, usage=total, rounds=rounds)
        self._emit(ev.SubagentEnded(
            agent_type=self.type.name, stop_reason=ended.stop_reason, usage=ended.usage,
            rounds=ended.rounds, usd=self.agent.deps.context.turn_cost().turn.usd,
            worktree=self._worktree_view()))
        if task is not None and task.cancelling():
            raise asyncio.CancelledError  # the parent's call was cancelled: it answers it
        await subagent_stop(self.delegation.hooks, self.agent_id, self.type.name,
                            ended.stop_reason)
        return self._result(ended)

    @classmethod
    def resumed(cls, tool: AgentTool, agent_type: AgentType, agent_id: str, args: AgentInput,
                messages: list[dict[str, Any]], sidechain: Sidechain | None) -> Child:
        """A child of a resumed session, its conversation read back from its transcript
        (SendMessage continues it)."""
        child = cls(tool, agent_type, args, "", agent_id, sidechain=sidechain)
        child.agent.conversation.messages[:] = messages
        child.runs = 1  # its first turn (and its SubagentStart hooks) happened before
        return child

    def _read_inbox(self) -> list[str]:
        messages = [f"<message from=\"main agent\">\n{m}\n</message>" for m in self.inbox]
        self.inbox.clear()
        return messages

    async def end_worktree(self) -> None:
        """Remove the worktree when unchanged, else commit its changes on its branch."""
        assert self.worktree is not None and self.delegation.worktrees is not None
        message = f"lsp-agent: {self.args.description} ({self.label}, {self.agent_id})"
        try:
            self.worktree_end = await self.delegation.worktrees.finish(self.worktree, message)
        except WorktreeError as exc:
            self.worktree_end = str(exc)

    def _worktree_view(self) -> ev.WorktreeView | None:
        wt, end = self.worktree, self.worktree_end
        if wt is None:
            return None
        kept = not isinstance(end, Finished) or end.kept
        return ev.WorktreeView(path=wt.path, branch=wt.branch, base=wt.base, kept=kept,
                               commit=end.commit if isinstance(end, Finished) else None,
                               files_changed=len(end.files) if isinstance(end, Finished) else 0)

    def proposer(self, ctx: ToolContext) -> Propose:
        """Propose edits on this child's behalf in the parent's review flow (``ctx`` is the
        parent's Agent call), labelled with the child."""

        async def propose(edits: list[FileEdit]) -> tuple[str, list[str]]:
            label = ChildLabel(self.agent_id, self.parent_tool_use_id, self.label,
                               self.args.description)
            token = CURRENT_CHILD.set(label)
            try:
                outcome = await ctx.proposals.propose(ctx.tool_use_id, edits)
            finally:
                CURRENT_CHILD.reset(token)
            return outcome, label.proposals

        return propose

    def _forward(self, event: ev.AgentEvent) -> None:
        """Send a child's event on to the client; the turn's start, end and cost are the
        parent's to report (SubagentStarted / SubagentEnded say them for the child)."""
        if self.sidechain is not None:
            self.sidechain.on_event(event)
        if isinstance(event, ev.TurnEnded):
            self.turn_ended = event
            return
        if isinstance(event, ev.TurnStarted | ev.CostReport):
            return
        if isinstance(event, ev.UsageReport) and self.tool.owner is not None:
            self.tool.owner.add_child_usage(event.model, event.usage)
        if isinstance(event, ev.ErrorEvent):
            self.errors.append(event.message)
        self._emit(event)

    def _result(self, ended: ev.TurnEnded) -> ToolOutput:
        text = final_text(self.agent.conversation.messages)
        u = ended.usage
        usage = (f"[agentId: {self.agent_id} ({self.label}); usage: {u.input_tokens} input, "
                 f"{u.output_tokens} output tokens; {ended.rounds} rounds]")
        if ended.stop_reason == "end_turn":
            return ToolOutput(f"{text or '(the agent gave no answer)'}\n\n{usage}")
        why = self.ENDED_EARLY.get(ended.stop_reason, ended.stop_reason).format(
            rounds=ended.rounds)
        details = "".join(f"\n{e}" for e in self.errors[-3:])
        partial = f"\nIts last message:\n{text}" if text else ""
        return ToolOutput(f"The {self.label} agent did not finish: {why}.{details}{partial}"
                          f"\n\n{usage}", is_error=True)


# An agent file's permissionMode may make its child stricter than the parent, never more
# permissive: the file comes with the repository, and a repository cannot grant itself the
# right to run commands unasked. The user's own choice of acceptEdits or bypassPermissions for
# the session (and plan mode) wins, as in the seeds.
USER_CHOICE_WINS = frozenset({"acceptEdits", "bypassPermissions", "plan"})
AGENT_MAY_CHOOSE = frozenset({"default", "dontAsk", "plan"})


def child_mode(parent: Mode, wanted: Mode | None) -> Mode:
    if parent in USER_CHOICE_WINS or wanted is None or wanted not in AGENT_MAY_CHOOSE:
        return parent
    return wanted


def child_gate(gate: PermissionGate, wanted: Mode | None) -> PermissionGate:
    """The session's gate (its rules and remembered answers are shared) in the child's mode,
    fixed when the child starts."""
    mode = child_mode(gate.mode, wanted)
    return gate if mode == gate.mode else dataclasses.replace(gate, mode=mode)


def resolve_model(wanted: str | None, parent_model: str) -> str:
    """``inherit``/None: the parent's model; an alias: its model id; else the id as given."""
    if not wanted or wanted.strip() == "inherit":
        return parent_model
    return MODEL_ALIASES.get(wanted.strip().lower(), wanted.strip())


def worktree_note(worktree: AgentWorktree) -> str:
    return (f"You work in an isolated git worktree: your working folder is {worktree.root} "
            f"(branch {worktree.branch}: HEAD plus the workspace's uncommitted changes, as "
            f"commit {worktree.base[:12]}), not the workspace named below. Use paths relative "
            "to it. Your edits are written there at once; you cannot write outside it. When "
            "you finish, all your changes go to the user as one proposal to review.")


def unconfined_shell(worktree: AgentWorktree) -> str:
    return (f"this agent works in the git worktree {worktree.path}, but no sandbox keeps its "
            "shell commands there (bubblewrap is unavailable or off): a command could change "
            "files outside it, so each one is asked")


def final_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last assistant message (what the child answered)."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return "".join(b.get("text", "") for b in message.get("content", [])
                           if b.get("type") == "text").strip()
    return ""
