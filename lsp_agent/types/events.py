"""Typed events streamed by the agent loop.

Every front end (LSP server, CLI, tests) consumes the same stream. Events are a pydantic
discriminated union on ``type`` and serialise to JSON with camelCase keys, the shape that goes
out in ``agent/event`` notifications.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from lsp_agent.types.wire import Wire  # also re-exported from here, its home before


class EventBase(Wire):
    session_id: str = ""
    seq: int = 0
    ts: float = Field(default_factory=time.time)
    # Set on the events of a subagent (docs/delegation.md): which child, started by which
    # Agent tool call of its parent. Absent on the main agent's events.
    agent_id: str | None = None
    parent_tool_use_id: str | None = None


class Usage(Wire):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
        )


class TurnStarted(EventBase):
    type: Literal["turn_started"] = "turn_started"
    prompt: str
    # "stop_hook": a Stop hook did not let the previous turn end; its reason is the prompt.
    trigger: Literal["stop_hook"] | None = None


class ModelRequest(EventBase):
    """One request to the model within a turn (a turn makes one per tool round)."""

    type: Literal["model_request"] = "model_request"
    model: str
    round: int


class TextDelta(EventBase):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ToolCallStarted(EventBase):
    """Emitted as soon as a tool_use block starts streaming, before its input is known."""

    type: Literal["tool_call_started"] = "tool_call_started"
    tool_use_id: str
    name: str


class ToolInputComplete(EventBase):
    type: Literal["tool_input_complete"] = "tool_input_complete"
    tool_use_id: str
    name: str
    input: dict[str, Any]


class ToolExecutionStarted(EventBase):
    type: Literal["tool_execution_started"] = "tool_execution_started"
    tool_use_id: str
    name: str


class ToolResult(EventBase):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    name: str
    content: str
    is_error: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0


class PermissionAsked(EventBase):
    type: Literal["permission_asked"] = "permission_asked"
    tool_use_id: str
    tool: str
    input: dict[str, Any]
    reason: str


class PermissionDecided(EventBase):
    type: Literal["permission_decided"] = "permission_decided"
    tool_use_id: str
    tool: str
    decision: Literal["allow", "deny"]
    source: Literal["rule", "mode", "user", "timeout", "error", "hook", "safety", "auto"]
    message: str | None = None


class AutoDecision(EventBase):
    """Auto mode's classifier judged a call that would have asked: ``allow`` runs it, ``deny``
    refuses it (the reason goes to the model), ``ask`` puts it to the user (also when the
    classifier failed: ``error`` says how). ``cached``: an identical call's earlier decision."""

    type: Literal["auto_decision"] = "auto_decision"
    tool_use_id: str
    tool: str
    decision: Literal["allow", "deny", "ask"]
    reason: str
    cached: bool = False
    error: str | None = None
    usage: Usage | None = None  # the classifier request's tokens (none when cached or failed)
    call_key: str | None = None  # digest of (tool, input): identical calls share it
    model: str | None = None  # the classifier model that answered (none when it failed)


class HunkView(Wire):
    id: str
    header: str
    diff: str


class FileChangeView(Wire):
    uri: str
    path: str
    is_new: bool
    is_deleted: bool = False  # accepting it deletes the file (a worktree agent deleted it)
    version: int | None = None
    diff: str
    hunks: list[HunkView]


class ProposalCreated(EventBase):
    type: Literal["proposal_created"] = "proposal_created"
    proposal_id: str
    tool_use_id: str
    files: list[FileChangeView]
    auto_apply: bool = False
    # A subagent's proposal (its edit, or the changes of its git worktree) names the child
    # besides ``agentId``: the name it was given (or its type) and its task's description.
    agent_name: str | None = None
    agent_description: str | None = None


ResolvedStatus = Literal["accepted", "partially_accepted", "rejected", "conflict", "cancelled",
                         "failed"]


class ProposalResolved(EventBase):
    type: Literal["proposal_resolved"] = "proposal_resolved"
    proposal_id: str
    status: ResolvedStatus
    accepted: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    feedback: str | None = None


class UsageReport(EventBase):
    type: Literal["usage"] = "usage"
    model: str
    usage: Usage


class Retrying(EventBase):
    type: Literal["retrying"] = "retrying"
    attempt: int
    reason: str
    delay_seconds: float


class ModelFallback(EventBase):
    type: Literal["model_fallback"] = "model_fallback"
    from_model: str
    to_model: str
    reason: str


class TurnEnded(EventBase):
    type: Literal["turn_ended"] = "turn_ended"
    stop_reason: Literal["end_turn", "max_turns", "cancelled", "error", "refusal"]
    usage: Usage
    rounds: int


class ErrorEvent(EventBase):
    type: Literal["error"] = "error"
    kind: str
    message: str
    recoverable: bool = False


class ModelCost(Wire):
    model: str
    usage: Usage
    usd: float = 0.0
    cache_savings_usd: float = 0.0
    priced: bool = True  # False: the model is not in the price table (usd is 0)


class SessionCost(Wire):
    usd: float = 0.0
    cache_savings_usd: float = 0.0
    by_model: list[ModelCost] = Field(default_factory=list)


class CostReport(EventBase):
    """Sent just before ``turn_ended``: what the turn and the whole session cost so far."""

    type: Literal["cost"] = "cost"
    turn: SessionCost
    session: SessionCost


class ContextPressure(EventBase):
    """The context window filled past (or fell back below) a threshold."""

    type: Literal["context_pressure"] = "context_pressure"
    level: Literal["ok", "warning", "critical"]
    used_tokens: int
    window_tokens: int
    ratio: float


class CompactBoundary(EventBase):
    """The history was shortened: old tool results cleared, or earlier turns summarised."""

    type: Literal["compact_boundary"] = "compact_boundary"
    strategy: Literal["clear_tool_results", "summary"]
    trigger: Literal["auto", "manual", "prompt_too_long"]
    tokens_before: int
    tokens_after: int
    cleared_tool_results: int = 0


class TodoView(Wire):
    content: str
    status: Literal["pending", "in_progress", "completed"]
    active_form: str | None = None


class TodosUpdated(EventBase):
    """The agent replaced its todo list (the plan of the work), sent in full each time."""

    type: Literal["todos_updated"] = "todos_updated"
    todos: list[TodoView]


class TaskView(Wire):
    id: str
    subject: str
    description: str = ""
    status: Literal["pending", "in_progress", "completed"]
    owner: str | None = None
    blocked_by: list[str] = Field(default_factory=list)
    active_form: str | None = None


class TaskListUpdated(EventBase):
    """The shared task list changed (TaskCreate, TaskUpdate): the whole list each time."""

    type: Literal["task_list_updated"] = "task_list_updated"
    tasks: list[TaskView]


class SubagentStarted(EventBase):
    """A child agent started (an Agent tool call); its events carry ``agent_id``."""

    type: Literal["subagent_started"] = "subagent_started"
    agent_type: str
    description: str
    name: str | None = None
    model: str


class WorktreeView(Wire):
    """An isolated child's git worktree when it ended: kept (its changes committed on the
    branch) or removed (no change)."""

    path: str
    branch: str
    base: str
    kept: bool
    commit: str | None = None
    files_changed: int = 0


class SubagentEnded(EventBase):
    """A child agent ended; its usage and cost are part of the parent's turn."""

    type: Literal["subagent_ended"] = "subagent_ended"
    agent_type: str
    stop_reason: Literal["end_turn", "max_turns", "cancelled", "error", "refusal"]
    usage: Usage
    rounds: int
    usd: float = 0.0
    worktree: WorktreeView | None = None  # isolation "worktree" only


class BackgroundTaskEnded(EventBase):
    """A background shell started with ``run_in_background`` ended (or was stopped)."""

    type: Literal["background_task_ended"] = "background_task_ended"
    task_id: str
    status: Literal["completed", "failed", "stopped", "expired"]
    exit_code: int | None = None


AgentEvent = Annotated[
    TurnStarted
    | ModelRequest
    | TextDelta
    | ToolCallStarted
    | ToolInputComplete
    | ToolExecutionStarted
    | ToolResult
    | PermissionAsked
    | PermissionDecided
    | AutoDecision
    | ProposalCreated
    | ProposalResolved
    | UsageReport
    | Retrying
    | ModelFallback
    | TurnEnded
    | ErrorEvent
    | CostReport
    | ContextPressure
    | CompactBoundary
    | TodosUpdated
    | SubagentStarted
    | SubagentEnded
    | BackgroundTaskEnded
    | TaskListUpdated,
    Field(discriminator="type"),
]


@functools.cache
def complete_models() -> int:
    """Build the validators and serializers of every Wire model now (they are deferred to
    first use); for a process about to be forked for each run. Returns how many."""
    todo, done = [Wire], 0
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__pydantic_complete__:
            done += bool(cls.model_rebuild(force=True))
    return done


@functools.cache
def event_adapter() -> TypeAdapter[AgentEvent]:
    # Built at first use, not at import: the union's validator is ~1/10 s the server does not
    # need before its first response (nor ever, since it only writes events). Once: built per
    # call, it cost a client that much CPU per event.
    return TypeAdapter[AgentEvent](AgentEvent)


def parse_event(data: dict[str, Any]) -> AgentEvent:
    """Rebuild a typed event from its wire form (used by clients and tests)."""
    return event_adapter().validate_python(data)
