"""Deny-first permission decisions for tool calls.

Order: mode refusals, then paths outside the workspace, then what the mode allows, then rules
remembered for this session, then the user. Edits are allowed to *propose* in every mode but
plan: the review of the proposal is the user's approval, unless ``acceptEdits`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from lsp_agent.tools.base import Tool

Mode = Literal["default", "plan", "acceptEdits", "dontAsk", "bypassPermissions"]
MODES: tuple[Mode, ...] = ("default", "plan", "acceptEdits", "dontAsk", "bypassPermissions")
EDIT_TOOLS = frozenset({"Edit", "Write"})


@dataclass(frozen=True)
class Verdict:
    action: Literal["allow", "deny", "ask"]
    reason: str
    source: Literal["rule", "mode", "user", "timeout", "error"] = "mode"


def rule_for(tool: str, target: str | None) -> str:
    return f"{tool}({target})" if target else tool


@dataclass
class PermissionGate:
    workspace: Path
    mode: Mode = "default"
    readable_outside: list[Path] = field(default_factory=list)
    session_rules: set[str] = field(default_factory=set)

    def evaluate(self, tool: Tool, args: BaseModel, resolved_path: Path | None) -> Verdict:
        read_only = tool.is_read_only(args)
        if self.mode == "plan" and not read_only:
            return Verdict(
                "deny",
                f"Plan mode is on: {tool.name} is not available. Only read-only tools may run; "
                "describe the change in your plan instead.",
            )
        if self.mode == "bypassPermissions":
            return Verdict("allow", "bypassPermissions mode")
        target = tool.permission_target(args)
        if rule_for(tool.name, target) in self.session_rules or tool.name in self.session_rules:
            return Verdict("allow", "allowed for this session", "rule")
        if resolved_path is not None and not self._inside(resolved_path, read_only):
            return self._ask_or_deny(f"{resolved_path} is outside the workspace {self.workspace}")
        if read_only:
            return Verdict("allow", "read-only")
        if tool.name in EDIT_TOOLS:
            return Verdict("allow", "edits are proposals reviewed by the user")
        return self._ask_or_deny(f"{tool.name} can change the system: {target or tool.name}")

    def remember(self, tool: Tool, args: BaseModel) -> str:
        rule = rule_for(tool.name, tool.permission_target(args))
        self.session_rules.add(rule)
        return rule

    def _ask_or_deny(self, reason: str) -> Verdict:
        if self.mode == "dontAsk":
            return Verdict("deny", f"{reason}; no rule allows it and dontAsk mode never prompts")
        return Verdict("ask", reason)

    def _inside(self, path: Path, read_only: bool) -> bool:
        roots = [self.workspace] + (self.readable_outside if read_only else [])
        real = path.resolve()
        return any(real.is_relative_to(root.resolve()) for root in roots)
