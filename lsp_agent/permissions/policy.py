"""Deny-first permission decisions for tool calls.

Order: the mode's refusals (plan), deny rules, bypass-immune denials (catastrophic shell
patterns), the PreToolUse hooks' denial, bypass-immune questions (protected paths, places
outside the workspace), the hooks' allow/ask, ask rules, dangerous shell patterns, allow rules,
and finally the mode. Edits are allowed to *propose* in ``default`` and ``acceptEdits``: the
review of the proposal is the user's approval, unless ``acceptEdits`` applies them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from lsp_agent.permissions import paths, shell_safety
from lsp_agent.permissions.hooks import HookOutcome
from lsp_agent.permissions.rules import WRITE_TOOLS, Rule
from lsp_agent.permissions.settings import (
    Settings,
    local_settings_path,
    record_rule,
    user_settings_path,
)
from lsp_agent.permissions.shell_analysis import Analysis, Command, analyze
from lsp_agent.tools.base import Tool

Mode = Literal["default", "plan", "acceptEdits", "dontAsk", "bypassPermissions"]
MODES: tuple[Mode, ...] = ("default", "plan", "acceptEdits", "dontAsk", "bypassPermissions")
EDIT_TOOLS = WRITE_TOOLS
Scope = Literal["session", "project", "user"]
# Wrappers judged by the command they run (which is in the analysis on its own).
_TRANSPARENT = frozenset({"env", "nice", "nohup", "time", "timeout", "stdbuf", "command",
                          "builtin", "ionice", "alias", "eval"})


@dataclass(frozen=True)
class Verdict:
    action: Literal["allow", "deny", "ask"]
    reason: str
    source: Literal["rule", "mode", "user", "timeout", "error", "hook", "safety"] = "mode"


def rule_for(tool: str, target: str | None) -> str:
    return f"{tool}({target})" if target else tool


@dataclass
class PermissionGate:
    workspace: Path
    mode: Mode = "default"
    readable_outside: list[Path] = field(default_factory=list)
    session_rules: set[str] = field(default_factory=set)
    settings: Settings = field(default_factory=Settings)

    # -- the decision --------------------------------------------------------------------------

    def evaluate(self, tool: Tool, args: BaseModel, resolved_path: Path | None,
                 hook: HookOutcome | None = None) -> Verdict:
        read_only = tool.is_read_only(args)
        if self.mode == "plan" and not read_only:
            return Verdict("deny", f"Plan mode is on: {tool.name} is not available. Only "
                           "read-only tools may run; describe the change in your plan instead.")
        if tool.name == "Bash":
            return self._shell(str(getattr(args, "command", "")), hook)
        return self._tool(tool, args, resolved_path, read_only, hook)

    def denied_by_rule(self, tool: Tool, args: BaseModel,
                       resolved_path: Path | None) -> Verdict | None:
        """The deny-rule verdict alone (checked before hooks run)."""
        if tool.name == "Bash":
            analysis = analyze(str(getattr(args, "command", "")))
            rule = self._first(self.settings.deny, "Bash", analysis=analysis)
        else:
            rule = self._first(self.settings.deny, tool.name, path=resolved_path)
        return Verdict("deny", f"denied by the rule {rule} ({rule.source} settings)", "rule") \
            if rule else None

    # -- file and other tools ------------------------------------------------------------------

    def _tool(self, tool: Tool, args: BaseModel, path: Path | None, read_only: bool,
              hook: HookOutcome | None) -> Verdict:
        name = tool.name
        if rule := self._first(self.settings.deny, name, path=path):
            return Verdict("deny", f"denied by the rule {rule} ({rule.source} settings)", "rule")
        if hook is not None and hook.decision == "deny":
            return Verdict("deny", f"blocked by a hook: {hook.reason}", "hook")
        allowed_by_rule = self._first(self._allow_rules(), name, path=path)
        if path is not None and (concern := self._path_concern(path, read_only, allowed_by_rule)):
            return self._ask_or_deny(concern, immune=True)
        if hook is not None and hook.decision in {"allow", "ask"}:
            if hook.decision == "allow":
                return Verdict("allow", f"allowed by a hook {hook.reason}".strip(), "hook")
            return self._ask_or_deny(f"a hook asks: {hook.reason}")
        if rule := self._first(self.settings.ask, name, path=path):
            return self._ask_or_deny(f"the rule {rule} asks for {name}")
        if allowed_by_rule:
            return Verdict("allow", f"allowed by the rule {allowed_by_rule}", "rule")
        if self.mode == "bypassPermissions":
            return Verdict("allow", "bypassPermissions mode")
        if read_only:
            return Verdict("allow", "read-only")
        if name in EDIT_TOOLS and self.mode in {"default", "acceptEdits"}:
            return Verdict("allow", "edits are proposals reviewed by the user")
        target = tool.permission_target(args)
        return self._ask_or_deny(f"{name} can change the system: {target or name}")

    def _path_concern(self, path: Path, read_only: bool, allowed: Rule | None) -> str | None:
        real = paths.real(path)
        if why := paths.process_secret_reason(str(real)):
            return why  # before "outside the workspace": the user must see what it holds
        if not read_only:
            if not paths.is_inside(real, [self.workspace]):
                return f"{path} is outside the workspace {self.workspace}"
            return paths.protected_reason(real)
        if not paths.is_inside(real, self._read_roots()) and allowed is None:
            return f"{path} is outside the workspace {self.workspace}"
        return paths.secret_reason(real)

    # -- shell commands ------------------------------------------------------------------------

    def _shell(self, command: str, hook: HookOutcome | None) -> Verdict:
        analysis = analyze(command)
        if rule := self._first(self.settings.deny, "Bash", analysis=analysis):
            return Verdict("deny", f"denied by the rule {rule} ({rule.source} settings)", "rule")
        if shell_safety.is_fork_bomb(command):
            return Verdict("deny", "refused in every mode: a fork bomb", "safety")
        for cmd in analysis.commands:
            if why := shell_safety.catastrophic(cmd):
                return Verdict("deny", f"refused in every mode: {why}", "safety")
        if hook is not None and hook.decision == "deny":
            return Verdict("deny", f"blocked by a hook: {hook.reason}", "hook")
        immune = [c for r in analysis.redirects
                  for c in shell_safety.redirect_concerns(r, self.workspace, self._read_roots())]
        immune += [why for why in shell_safety.process_secret_reads(analysis)
                   if not any(why in earlier for earlier in immune)]
        if immune:
            return self._ask_or_deny("; ".join(immune), immune=True)
        if hook is not None and hook.decision == "allow":
            return Verdict("allow", f"allowed by a hook {hook.reason}".strip(), "hook")
        reasons = self._shell_reasons(analysis)
        if hook is not None and hook.decision == "ask":
            reasons.insert(0, f"a hook asks: {hook.reason}")
        if not reasons:
            return Verdict("allow", "every command is read-only or allowed by a rule", "rule")
        if self.mode == "bypassPermissions" and not self._asked_by_rule(analysis):
            return Verdict("allow", "bypassPermissions mode")
        return self._ask_or_deny("; ".join(dict.fromkeys(reasons)))

    def _shell_reasons(self, analysis: Analysis) -> list[str]:
        reasons = list(analysis.problems) + shell_safety.analysis_dangers(analysis)
        allow = self._allow_rules()
        for cmd in analysis.commands:
            if rule := self._first(self.settings.ask, "Bash", command=cmd):
                reasons.append(f"the rule {rule} asks for {cmd.text()}")
                continue
            reasons += shell_safety.dangers(cmd, self.workspace)
            if self._first(allow, "Bash", command=cmd):
                continue
            reasons += self._command_concerns(cmd)
        if shell_safety.writes_inside_workspace(analysis) and self.mode == "default" \
                and not all(self._first(allow, "Bash", command=c) for c in analysis.commands):
            reasons.append("the command writes files (redirection)")
        return reasons

    def _command_concerns(self, cmd: Command) -> list[str]:
        if cmd.name is None:
            return [f"the program name is computed at run time: {cmd.argv[0].text}"]
        if cmd.name in _TRANSPARENT and cmd.args and not cmd.env:
            return []  # the command it runs is judged on its own
        if cmd.name in shell_safety.SHELLS and _runs_string(cmd):
            return []
        if not shell_safety.is_read_only(cmd):
            if cmd.args_from_input and shell_safety.is_read_only(
                    Command(cmd.argv, cmd.env, cmd.via)):
                return [f"{cmd.text()} gets its arguments only at run time ({cmd.via})"]
            return [f"{cmd.text()} can change the system"]
        return shell_safety.path_concerns(cmd, self.workspace, self._read_roots())

    def _asked_by_rule(self, analysis: Analysis) -> bool:
        return any(self._first(self.settings.ask, "Bash", command=c) for c in analysis.commands)

    # -- rules ---------------------------------------------------------------------------------

    def _allow_rules(self) -> list[Rule]:
        session = [Rule.parse(text, "session", self.workspace) for text in self.session_rules]
        return self.settings.allow + session

    def _first(self, rules: list[Rule], tool: str, *, path: Path | None = None,
               command: Command | None = None, analysis: Analysis | None = None) -> Rule | None:
        for rule in rules:
            if not rule.applies_to(tool):
                continue
            if analysis is not None:
                texts = [analysis.source] + [c.text() for c in analysis.commands]
                if any(rule.matches_command(t) for t in texts):
                    return rule
            elif command is not None:
                if rule.matches_command(command.text()):
                    return rule
            elif path is not None:
                if rule.matches_path(paths.real(path), self.workspace) or \
                        rule.matches_path(path, self.workspace):
                    return rule
            elif rule.pattern is None:
                return rule
        return None

    def _read_roots(self) -> list[Path]:
        return [self.workspace, *self.readable_outside, *self.settings.additional_directories]

    def _ask_or_deny(self, reason: str, immune: bool = False) -> Verdict:
        if self.mode == "dontAsk":
            return Verdict("deny", f"{reason}; no rule allows it and dontAsk mode never prompts")
        if self.mode == "bypassPermissions" and not immune:
            return Verdict("allow", "bypassPermissions mode")
        return Verdict("ask", reason, "safety" if immune else "mode")

    # -- remembering answers -------------------------------------------------------------------

    def rules_for(self, tool: Tool, args: BaseModel, resolved_path: Path | None) -> list[str]:
        """The rules that would have allowed this call: one per command that asked."""
        if tool.name == "Bash":
            analysis = analyze(str(getattr(args, "command", "")))
            texts = [c.text() for c in analysis.commands if self._command_concerns(c)
                     or shell_safety.dangers(c, self.workspace)]
            return [f"Bash({t})" for t in dict.fromkeys(texts)] or \
                [f"Bash({analysis.source})"]
        if resolved_path is not None:
            real = paths.real(resolved_path)
            if paths.is_inside(real, [self.workspace]):
                return [rule_for(tool.name, str(real.relative_to(paths.real(self.workspace))))]
            return [rule_for(tool.name, "/" + str(real))]
        return [rule_for(tool.name, tool.permission_target(args))]

    def remember(self, tool: Tool, args: BaseModel, scope: Scope = "session",
                 resolved_path: Path | None = None) -> list[str]:
        """Allow calls like this one from now on: for the session, or recorded in the local
        project settings (``project``) or the user settings (``user``)."""
        if resolved_path is None and isinstance(getattr(args, "path", None), str):
            resolved_path = self.workspace / args.path  # type: ignore[attr-defined]
        rules = self.rules_for(tool, args, resolved_path)
        self.session_rules.update(rules)
        if scope in {"project", "user"}:
            target = local_settings_path(self.workspace) if scope == "project" \
                else user_settings_path()
            for rule in rules:
                record_rule(target, rule)
        return rules


def _runs_string(cmd: Command) -> bool:
    return any((w.value or "").startswith("-") and "c" in (w.value or "")[1:]
               and not (w.value or "").startswith("--") for w in cmd.args)
