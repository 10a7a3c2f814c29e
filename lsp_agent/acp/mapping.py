"""Our event stream as ACP ``session/update``s: tables and pure functions, no I/O.

One ``UpdateMapper`` per session remembers what a tool call needs across its events (its
title, its diff content) so that each ``tool_call_update`` carries the whole picture; ACP
replaces a tool call's ``content`` with each update that sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
)
from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    Cost,
    FileEditToolCallContent,
    SessionMode,
    SessionModeState,
    StopReason,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    ToolKind,
    Usage,
    UsageUpdate,
)

from lsp_agent.types import events as ev
from lsp_agent.types.permissions import MODES, Mode

Update = (AgentMessageChunk | AgentThoughtChunk | ToolCallStart | ToolCallProgress
          | AgentPlanUpdate | UsageUpdate)

# What kind of work each tool does, as ACP clients show it (icons, grouping).
TOOL_KINDS: dict[str, ToolKind] = {
    "Read": "read", "Edit": "edit", "Write": "edit", "Glob": "search", "Grep": "search",
    "Bash": "execute", "TodoWrite": "think", "ToolSearch": "search", "Definition": "search",
    "References": "search", "Hover": "read", "DocumentSymbols": "search",
    "WorkspaceSymbols": "search", "Diagnostics": "read",
}

# How a tool call is titled from its input: the argument that says what it does.
TITLE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "Read": ("path",), "Edit": ("path",), "Write": ("path",), "Glob": ("pattern",),
    "Grep": ("pattern",), "Bash": ("description", "command"), "Definition": ("symbol", "path"),
    "References": ("symbol", "path"), "Hover": ("symbol", "path"), "DocumentSymbols": ("path",),
    "WorkspaceSymbols": ("query",), "Diagnostics": ("path",),
}
FIXED_TITLES = {"TodoWrite": "Update the plan"}
MAX_TITLE_CHARS = 120
MAX_RESULT_CHARS = 20_000  # a tool's output as the user sees it; the model got it whole

# Our turn endings as ACP stop reasons; "error" is answered as a JSON-RPC error instead.
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn", "max_turns": "max_turn_requests", "cancelled": "cancelled",
    "refusal": "refusal",
}

# Our permission modes as ACP session modes.
MODE_TEXTS: dict[Mode, tuple[str, str]] = {
    "default": ("Default", "Ask before commands and edits; edits are shown as diffs to approve."),
    "acceptEdits": ("Accept edits", "Apply edits without asking; still ask before commands."),
    "plan": ("Plan", "Read-only: the agent investigates and plans, and changes nothing."),
    "dontAsk": ("Don't ask", "Never ask: what is not allowed by a rule is denied."),
    "bypassPermissions": ("Bypass permissions",
                          "Allow everything except what is refused in every mode."),
    "auto": ("Auto", "A classifier model decides what would ask; it can never lift a refusal."),
}


def mode_state(current: Mode) -> SessionModeState:
    return SessionModeState(current_mode_id=current, available_modes=[
        SessionMode(id=mode, name=MODE_TEXTS[mode][0], description=MODE_TEXTS[mode][1])
        for mode in MODES])


def tool_title(name: str, arguments: dict[str, Any] | None) -> str:
    if name in FIXED_TITLES:
        return FIXED_TITLES[name]
    for key in TITLE_ARGUMENTS.get(name, ()):
        value = (arguments or {}).get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            if len(text) > MAX_TITLE_CHARS:
                text = text[: MAX_TITLE_CHARS - 1] + "\u2026"
            return f"{name} {text}"
    return name


def tool_locations(workspace: Path, arguments: dict[str, Any] | None
                   ) -> list[ToolCallLocation] | None:
    """Where a tool call works, as absolute paths (ACP wants them absolute)."""
    raw = (arguments or {}).get("path")
    if not isinstance(raw, str) or not raw.strip():
        return None
    line = next((v for k in ("line", "offset") if isinstance(v := (arguments or {}).get(k), int)
                 and v > 0), None)
    return [ToolCallLocation(path=str(workspace / raw), line=line)]


def prompt_usage(u: ev.Usage) -> Usage:
    """A turn's tokens as ``session/prompt`` answers them."""
    return Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                 cached_read_tokens=u.cache_read_input_tokens,
                 cached_write_tokens=u.cache_creation_input_tokens,
                 total_tokens=u.input_tokens + u.output_tokens + u.cache_read_input_tokens
                 + u.cache_creation_input_tokens)


def stop_reason(ended: ev.TurnEnded) -> StopReason | None:
    """The ACP stop reason; None for a turn that ended in an error."""
    return STOP_REASONS.get(ended.stop_reason)


@dataclass
class _ToolCall:
    name: str
    title: str
    arguments: dict[str, Any] | None = None
    diffs: list[FileEditToolCallContent] = field(default_factory=list)


@dataclass
class UpdateMapper:
    """The ACP updates of one session's events."""

    workspace: Path
    window_tokens: int
    _calls: dict[str, _ToolCall] = field(default_factory=dict)
    _used_tokens: int = 0
    _cost: Cost | None = None

    def updates(self, event: ev.AgentEvent) -> list[Update]:
        handler = _HANDLERS.get(type(event))
        return handler(self, event) if handler is not None else []

    # -- tool calls ----------------------------------------------------------------------------

    def tool_call_update(self, tool_use_id: str, **fields: Any) -> ToolCallProgress:
        return ToolCallProgress(session_update="tool_call_update", tool_call_id=tool_use_id,
                                **fields)

    def permission_subject(self, asked: ev.PermissionAsked) -> ToolCallUpdate:
        """The tool call a permission request is about, with the reason it asks."""
        return ToolCallUpdate(
            tool_call_id=asked.tool_use_id, title=tool_title(asked.tool, asked.input),
            kind=TOOL_KINDS.get(asked.tool, "other"), status="pending", raw_input=asked.input,
            locations=tool_locations(self.workspace, asked.input),
            content=[tool_content(text_block(asked.reason))])

    def show_diffs(self, tool_use_id: str, diffs: list[FileEditToolCallContent]) -> ToolCallUpdate:
        """The tool call with the diffs it proposes (kept for its later updates)."""
        call = self._calls.setdefault(tool_use_id, _ToolCall("Edit", "Edit"))
        call.diffs = diffs
        return ToolCallUpdate(
            tool_call_id=tool_use_id, title=call.title, kind=TOOL_KINDS.get(call.name, "edit"),
            content=list(diffs),
            locations=[ToolCallLocation(path=d.path) for d in diffs])

    def _started(self, event: ev.ToolCallStarted) -> list[Update]:
        self._calls[event.tool_use_id] = _ToolCall(event.name, event.name)
        return [start_tool_call(event.tool_use_id, event.name,
                                kind=TOOL_KINDS.get(event.name, "other"), status="pending")]

    def _input(self, event: ev.ToolInputComplete) -> list[Update]:
        title = tool_title(event.name, event.input)
        self._calls[event.tool_use_id] = _ToolCall(event.name, title, event.input)
        return [self.tool_call_update(
            event.tool_use_id, title=title, raw_input=event.input,
            locations=tool_locations(self.workspace, event.input))]

    def _executing(self, event: ev.ToolExecutionStarted) -> list[Update]:
        return [self.tool_call_update(event.tool_use_id, status="in_progress")]

    def _result(self, event: ev.ToolResult) -> list[Update]:
        call = self._calls.pop(event.tool_use_id, None)
        text = event.content
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + f"\n\u2026 ({len(event.content):,} characters)"
        content: list[Any] = [*(call.diffs if call else []), tool_content(text_block(text))]
        return [self.tool_call_update(event.tool_use_id,
                                      status="failed" if event.is_error else "completed",
                                      content=content)]

    def _auto_applied(self, event: ev.ProposalCreated) -> list[Update]:
        """Edits applied without review (acceptEdits): the unified diff, for the record. Those
        waiting for review are shown whole by the front end, which has their texts."""
        if not event.auto_apply:
            return []
        diff = "\n".join(f.diff for f in event.files)
        return [self.tool_call_update(
            event.tool_use_id, content=[tool_content(text_block(f"```diff\n{diff}\n```"))],
            locations=[ToolCallLocation(path=f.path) for f in event.files])]

    # -- the rest ------------------------------------------------------------------------------

    def _text(self, event: ev.TextDelta) -> list[Update]:
        return [update_agent_message_text(event.text)]

    def _plan(self, event: ev.TodosUpdated) -> list[Update]:
        return [plan_from([t.model_dump() for t in event.todos])]

    def _usage(self, event: ev.UsageReport) -> list[Update]:
        u = event.usage
        self._used_tokens = (u.input_tokens + u.cache_read_input_tokens
                             + u.cache_creation_input_tokens + u.output_tokens)
        return [self._usage_update()]

    def _cost_report(self, event: ev.CostReport) -> list[Update]:
        self._cost = Cost(amount=round(event.session.usd, 6), currency="USD")
        return [self._usage_update()]

    def _usage_update(self) -> UsageUpdate:
        return UsageUpdate(session_update="usage_update", used=self._used_tokens,
                           size=self.window_tokens, cost=self._cost)

    def _error(self, event: ev.ErrorEvent) -> list[Update]:
        return [update_agent_message_text(f"\n\n[lsp-agent: {event.kind}] {event.message}\n")]

    def _note(self, text: str) -> list[Update]:
        return [update_agent_thought_text(text)]


_HANDLERS: dict[type, Callable[[UpdateMapper, Any], list[Update]]] = {
    ev.TextDelta: UpdateMapper._text,
    ev.ToolCallStarted: UpdateMapper._started,
    ev.ToolInputComplete: UpdateMapper._input,
    ev.ToolExecutionStarted: UpdateMapper._executing,
    ev.ToolResult: UpdateMapper._result,
    ev.ProposalCreated: UpdateMapper._auto_applied,
    ev.TodosUpdated: UpdateMapper._plan,
    ev.UsageReport: UpdateMapper._usage,
    ev.CostReport: UpdateMapper._cost_report,
    ev.ErrorEvent: UpdateMapper._error,
    ev.Retrying: lambda m, e: m._note(
        f"Retrying the model request (attempt {e.attempt}, in {e.delay_seconds:.1f} s): "
        f"{e.reason}\n"),
    ev.ModelFallback: lambda m, e: m._note(
        f"Switched from {e.from_model} to {e.to_model}: {e.reason}\n"),
    ev.CompactBoundary: lambda m, e: m._note(
        f"Context compacted ({e.strategy}): {e.tokens_before:,} -> {e.tokens_after:,} "
        "tokens\n"),
}


PLAN_STATUSES = frozenset({"pending", "in_progress", "completed"})


def plan_from(todos: list[dict[str, Any]]) -> AgentPlanUpdate:
    """The todo list as an ACP plan (sent whole each time, as ACP wants)."""
    return update_plan([
        plan_entry(str(t.get("content", "")),
                   status=t["status"] if t.get("status") in PLAN_STATUSES else "pending")
        for t in todos])


def diff_contents(files: list[tuple[Path, str | None, str]]) -> list[FileEditToolCallContent]:
    """ACP ``diff`` contents for whole-file changes: (absolute path, old text, new text)."""
    return [tool_diff_content(str(path), new, old) for path, old, new in files]
