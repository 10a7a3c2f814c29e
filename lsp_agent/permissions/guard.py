"""Everything that stands between a validated tool call and its execution, in one place:
PreToolUse hooks (which may change the input), the deny-first verdict, and PostToolUse hooks.
The agent loop asks the user when the verdict says so; it knows nothing of hooks or rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from lsp_agent.permissions.hooks import MAX_INPUT_FIELD, HookOutcome, Hooks
from lsp_agent.permissions.policy import Gated, PermissionGate, Verdict

Resolve = Callable[[str], Path]


class Tool(Gated, Protocol):
    """What the guard needs of a tool: the gate's view, and its input model (a hook may
    rewrite the input, which is validated again)."""

    @property
    def input_model(self) -> Any: ...


@dataclass
class Screened:
    """A call after the PreToolUse hooks and the gate."""

    verdict: Verdict
    args: BaseModel  # possibly rewritten by a hook
    path: Path | None  # the resolved path the verdict was about
    input_changed: bool = False
    notes: list[str] = field(default_factory=list)  # hook context for the model


@dataclass
class ToolGuard:
    gate: PermissionGate
    hooks: Hooks | None = None

    async def screen(self, tool: Tool, args: BaseModel, resolve: Resolve) -> Screened:
        path = _path_of(tool, args, resolve)
        hook, args = await self._pre_tool_hooks(tool, args, path)
        changed = hook is not None and hook.updated_input is not None
        if changed:  # the hook's input is judged afresh: its path may be another one
            path = _path_of(tool, args, resolve)
        notes = [f"PreToolUse hook: {c}" for c in hook.context] if hook else []
        if tool.subject(args).access == "shell":  # may walk folders and ask git what it shows
            verdict = await asyncio.to_thread(self.gate.evaluate, tool, args, path, hook)
        else:
            verdict = self.gate.evaluate(tool, args, path, hook)
        return Screened(verdict, args, path, changed, notes)

    async def after(self, tool: Tool, args: BaseModel, content: str, is_error: bool) -> list[str]:
        """PostToolUse hooks (PostToolUseFailure when the call failed): notes to append to
        the result the model sees."""
        event = "PostToolUseFailure" if is_error else "PostToolUse"
        if self.hooks is None or not self.hooks.has(event):
            return []
        tool_input = args.model_dump(exclude_none=True)
        outcome = await self.hooks.run(event, {
            "tool_name": tool.name, "tool_input": tool_input,
            **({"error": content[:MAX_INPUT_FIELD], "is_interrupt": False} if is_error else
               {"tool_response": {"content": content[:MAX_INPUT_FIELD], "is_error": False}}),
            "permission_mode": self.gate.mode}, tool.name, tool_input, tool.subject(args))
        notes = [f"{event} hook: {c}" for c in outcome.context]
        if outcome.decision == "block":
            notes.append(f"{event} hook: {outcome.reason}")
        return notes

    async def _pre_tool_hooks(self, tool: Tool, args: BaseModel,
                              path: Path | None) -> tuple[HookOutcome | None, BaseModel]:
        """Run PreToolUse hooks, after deny rules: a denied call never reaches them."""
        if self.hooks is None or not self.hooks.has("PreToolUse"):
            return None, args
        if self.gate.denied_by_rule(tool, args, path) is not None:
            return None, args
        tool_input = args.model_dump(exclude_none=True)
        outcome = await self.hooks.run("PreToolUse", {
            "tool_name": tool.name, "tool_input": tool_input,
            "permission_mode": self.gate.mode}, tool.name, tool_input, tool.subject(args))
        if outcome.updated_input is not None:
            try:
                args = tool.input_model.model_validate({**tool_input, **outcome.updated_input})
            except ValidationError as exc:
                outcome.decision = "deny"
                outcome.reason = f"the hook's updatedInput is invalid: {exc.errors()[:1]}"
        return outcome, args


def _path_of(tool: Tool, args: BaseModel, resolve: Resolve) -> Path | None:
    raw = tool.subject(args).path
    return resolve(raw) if raw else None
