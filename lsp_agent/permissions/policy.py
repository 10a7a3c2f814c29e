"""Deny-first permission decisions for tool calls.

One ladder for every tool, first match wins: the mode's refusals (plan), deny rules,
refusals no mode lifts (catastrophic shell patterns), the PreToolUse hooks' denial, questions no
mode lifts (protected paths, secrets, places outside the workspace), the hooks' allow, then the
concerns of the call (ask rules, dangerous shell patterns, commands that change the system,
tools that reach outside), which allow rules and the mode may settle. What a call touches comes
from the tool itself (``Tool.subject``): the gate never looks at tool names, so a new tool, an
MCP tool included, is judged by what it declares. In ``auto`` mode an ask for an ordinary concern
(source ``mode``) is first put to a classifier (agent/auto_mode.py); every verdict above it
stands. Edits are allowed to *propose* in ``default``, ``acceptEdits`` and ``auto``: the review
of the proposal is the user's approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from lsp_agent.permissions import paths, shell_safety
from lsp_agent.permissions.hooks import HookOutcome
from lsp_agent.permissions.restriction import Restriction
from lsp_agent.permissions.rules import Rule
from lsp_agent.permissions.secrets import FileRules, file_rules
from lsp_agent.permissions.settings import (
    Settings,
    local_settings_path,
    own_settings_files,
    record_rule,
    user_settings_path,
)
from lsp_agent.permissions.shell_analysis import Analysis, Command, analyze
from lsp_agent.permissions.shell_secrets import secret_concerns
from lsp_agent.types.permissions import Mode, Scope, Subject

READ_ONLY_ACCESS = frozenset({"read", "session"})  # calls that may run in plan mode
# Wrappers judged by the command they run (which is in the analysis on its own).
_TRANSPARENT = frozenset({"env", "nice", "nohup", "time", "timeout", "stdbuf", "command",
                          "builtin", "ionice", "alias", "eval"})


@dataclass(frozen=True)
class Verdict:
    action: Literal["allow", "deny", "ask"]
    reason: str
    source: Literal["rule", "mode", "user", "timeout", "error", "hook", "safety"] = "mode"
    # A known danger (shell_safety's tables: a forced push, a hard reset, a download piped
    # into a shell...): auto mode's classifier may deny it or ask, never allow it.
    danger: bool = False


class Gated(Protocol):
    """What the gate needs of a tool: its name (for rules) and what a call touches."""

    @property
    def name(self) -> str: ...

    def subject(self, args: Any) -> Subject: ...


@dataclass(frozen=True)
class _Judgement:
    """What the gate found about one call, before rules and the mode settle it."""

    refused: str | None = None  # refused in every mode
    immune: list[str] = field(default_factory=list)  # asked in every mode
    concerns: list[str] = field(default_factory=list)  # asked unless allowed or the mode says so
    allowed: Verdict | None = None  # how a call without concerns is allowed
    danger: bool = False  # a concern comes from the tables of known dangers


def rule_for(tool: str, target: str | None) -> str:
    return f"{tool}({target})" if target else tool


@dataclass
class PermissionGate:
    workspace: Path
    mode: Mode = "default"
    readable_outside: list[Path] = field(default_factory=list)
    session_rules: set[str] = field(default_factory=set)
    settings: Settings = field(default_factory=Settings)
    restriction: Restriction | None = None  # a turn limited to some tools (/commit)
    # Writes outside the workspace are refused instead of asked (an isolated subagent's
    # workspace is its git worktree, which it must not leave).
    confined: bool = False
    # Folders outside the workspace that may be written (a coordinator's scratchpad).
    writable_outside: list[Path] = field(default_factory=list)
    # Set: every shell command asks the user with this reason, whatever the rules and mode
    # (denied in dontAsk): an isolated subagent without a sandbox, whose commands the OS does
    # not keep inside its worktree.
    shell_asks: str | None = None

    @property
    def file_rules(self) -> FileRules:
        """The secret and protected tables, with the settings' additions (cached)."""
        return file_rules(tuple(self.settings.secret_files),
                          tuple(self.settings.protected_files) + own_settings_files())

    # -- the decision --------------------------------------------------------------------------

    def evaluate(self, tool: Gated, args: Any, resolved_path: Path | None,
                 hook: HookOutcome | None = None) -> Verdict:
        subject = tool.subject(args)
        if self.mode == "plan" and subject.access not in READ_ONLY_ACCESS:
            return Verdict("deny", f"Plan mode is on: {tool.name} is not available. Only "
                           "read-only tools may run; describe the change in your plan instead.")
        if denied := self._denied_by_rule(tool.name, subject, resolved_path):
            return denied
        if self.restriction and (outside := self.restriction.refusal(tool.name, subject)):
            return Verdict("deny", outside, "rule")
        judged = self._judge(tool.name, subject, resolved_path)
        if judged.refused:
            return Verdict("deny", f"refused in every mode: {judged.refused}", "safety")
        if hook is not None and hook.decision == "deny":
            return Verdict("deny", f"blocked by a hook: {hook.reason}", "hook")
        if judged.immune:
            return self._ask_or_deny("; ".join(judged.immune), immune=True)
        if hook is not None and hook.decision == "allow":
            return Verdict("allow", f"allowed by a hook {hook.reason}".strip(), "hook")
        concerns = ([f"a hook asks: {hook.reason}"] if hook is not None
                    and hook.decision == "ask" else []) + judged.concerns
        if not concerns:
            return judged.allowed or Verdict("allow", "nothing to ask")
        verdict = self._ask_or_deny("; ".join(dict.fromkeys(concerns)))
        if verdict.action == "ask" and judged.danger:
            verdict = Verdict("ask", verdict.reason, verdict.source, danger=True)
        if verdict.action == "ask" and hook is not None and hook.decision == "ask":
            return Verdict("ask", verdict.reason, "hook")  # the hook wants the user, not auto mode
        return verdict

    def denied_by_rule(self, tool: Gated, args: Any,
                       resolved_path: Path | None) -> Verdict | None:
        """The deny-rule verdict alone (checked before hooks run)."""
        return self._denied_by_rule(tool.name, tool.subject(args), resolved_path)

    def _denied_by_rule(self, name: str, subject: Subject, path: Path | None) -> Verdict | None:
        if subject.access == "shell":
            rule = self._first(self.settings.deny, name, subject,
                               analysis=analyze(subject.command or ""))
        else:
            rule = self._first(self.settings.deny, name, subject, path=path)
        return Verdict("deny", f"denied by the rule {rule} ({rule.source} settings)", "rule") \
            if rule else None

    def _judge(self, name: str, subject: Subject, path: Path | None) -> _Judgement:
        if subject.access == "shell":
            return self._judge_shell(name, subject)
        return self._judge_tool(name, subject, path)

    # -- file and other tools ------------------------------------------------------------------

    def _judge_tool(self, name: str, subject: Subject, path: Path | None) -> _Judgement:
        read_only = subject.access in READ_ONLY_ACCESS
        allowed_by_rule = self._first(self._allow_rules(), name, subject, path=path)
        if path is not None and (concern := self._path_concern(path, read_only, allowed_by_rule)):
            if self.confined and not read_only and not paths.is_inside(path, self._write_roots()):
                return _Judgement(refused=f"{concern} (this agent may write only there)")
            return _Judgement(immune=[concern])
        if rule := self._first(self.settings.ask, name, subject, path=path):
            return _Judgement(concerns=[f"the rule {rule} asks for {name}"])
        if allowed_by_rule:
            return _Judgement(allowed=Verdict("allow", f"allowed by the rule {allowed_by_rule}",
                                              "rule"))
        if self.mode == "bypassPermissions":
            return _Judgement(allowed=Verdict("allow", "bypassPermissions mode"))
        if read_only:
            return _Judgement(allowed=Verdict("allow", "read-only"))
        if subject.access == "write" and self.mode in {"default", "acceptEdits", "auto"}:
            return _Judgement(allowed=Verdict("allow", "edits are proposals reviewed by the user"))
        verb = "can change the system" if subject.access == "write" else "reaches outside"
        return _Judgement(concerns=[f"{name} {verb}: {subject.shown or name}"])

    def _path_concern(self, path: Path, read_only: bool, allowed: Rule | None) -> str | None:
        real = paths.real(path)
        if why := paths.process_secret_reason(str(real)):
            return why  # before "outside the workspace": the user must see what it holds
        if not read_only:
            if not paths.is_inside(real, self._write_roots(), resolved=True):
                return f"{path} is outside the workspace {self.workspace}"
            return paths.protected_reason(real, self.file_rules)
        if not paths.is_inside(real, self._read_roots(), resolved=True) and allowed is None:
            return f"{path} is outside the workspace {self.workspace}"
        return paths.secret_reason(path, self.file_rules)

    # -- shell commands ------------------------------------------------------------------------

    def _judge_shell(self, name: str, subject: Subject) -> _Judgement:
        command = subject.command or ""
        analysis = analyze(command)
        if shell_safety.is_fork_bomb(command):
            return _Judgement(refused="a fork bomb")
        for cmd in analysis.commands:
            if why := shell_safety.catastrophic(cmd):
                return _Judgement(refused=why)
        rules = self.file_rules
        immune = [c for r in analysis.redirects for c in
                  shell_safety.redirect_concerns(r, self.workspace, self._read_roots(), rules)]
        immune += [c for cmd in analysis.commands for c in
                   shell_safety.named_write_concerns(cmd, self.workspace, self._write_roots(),
                                                     rules)]
        # Reading a secret file asks in every mode, as it does for Read; so does naming a
        # process's environment or memory (the server's holds its API key).
        immune += [c for cmd in analysis.commands
                   for c in secret_concerns(cmd, self.workspace, rules)]
        immune += [why for why in shell_safety.process_secret_reads(analysis)
                   if not any(why in earlier for earlier in immune)]
        if self.shell_asks:
            immune.append(self.shell_asks)
        if immune:
            return _Judgement(immune=list(dict.fromkeys(immune)))
        danger = bool(shell_safety.analysis_dangers(analysis)) or any(
            shell_safety.dangers(cmd, self.workspace) for cmd in analysis.commands)
        return _Judgement(concerns=self._shell_reasons(name, subject, analysis), allowed=Verdict(
            "allow", "every command is read-only or allowed by a rule", "rule"), danger=danger)

    def _shell_reasons(self, name: str, subject: Subject, analysis: Analysis) -> list[str]:
        reasons = list(analysis.problems) + shell_safety.analysis_dangers(analysis)
        allow = self._allow_rules()
        for cmd in analysis.commands:
            if rule := self._first(self.settings.ask, name, subject, command=cmd):
                reasons.append(f"the rule {rule} asks for {cmd.text()}")
                continue
            reasons += shell_safety.dangers(cmd, self.workspace)
            if self._first(allow, name, subject, command=cmd):
                continue
            reasons += self._command_concerns(cmd)
        if shell_safety.writes_inside_workspace(analysis) and self.mode in {"default", "auto"} \
                and not all(self._first(allow, name, subject, command=c)
                            for c in analysis.commands):
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

    # -- rules ---------------------------------------------------------------------------------

    def _allow_rules(self) -> list[Rule]:
        session = [Rule.parse(text, "session", self.workspace) for text in self.session_rules]
        return self.settings.allow + session

    def _first(self, rules: list[Rule], name: str, subject: Subject, *, path: Path | None = None,
               command: Command | None = None, analysis: Analysis | None = None) -> Rule | None:
        for rule in rules:
            if not rule.applies_to(name, subject.access):
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
            elif rule.pattern is None or (subject.target is not None
                                          and rule.matches_command(subject.target)):
                return rule
        return None

    def _write_roots(self) -> list[Path]:
        return [self.workspace, *self.writable_outside]

    def _read_roots(self) -> list[Path]:
        return [self.workspace, *self.readable_outside, *self.settings.additional_directories]

    def _ask_or_deny(self, reason: str, immune: bool = False) -> Verdict:
        if self.mode == "dontAsk":
            return Verdict("deny", f"{reason}; no rule allows it and dontAsk mode never prompts")
        if self.mode == "bypassPermissions" and not immune:
            return Verdict("allow", "bypassPermissions mode")
        return Verdict("ask", reason, "safety" if immune else "mode")

    # -- remembering answers -------------------------------------------------------------------

    def rules_for(self, tool: Gated, args: Any, resolved_path: Path | None) -> list[str]:
        """The rules that would have allowed this call: one per command that asked."""
        subject = tool.subject(args)
        if subject.access == "shell":
            analysis = analyze(subject.command or "")
            texts = [c.text() for c in analysis.commands if self._command_concerns(c)
                     or shell_safety.dangers(c, self.workspace)]
            return [f"{tool.name}({t})" for t in dict.fromkeys(texts)] or \
                [f"{tool.name}({analysis.source})"]
        if resolved_path is not None:
            real = paths.real(resolved_path)
            if paths.is_inside(real, [self.workspace]):
                return [rule_for(tool.name, str(real.relative_to(paths.real(self.workspace))))]
            return [rule_for(tool.name, "/" + str(real))]
        return [rule_for(tool.name, subject.target)]

    def remember(self, tool: Gated, args: Any, scope: Scope = "session",
                 resolved_path: Path | None = None) -> list[str]:
        """Allow calls like this one from now on: for the session, or recorded in the local
        project settings (``project``) or the user settings (``user``)."""
        subject = tool.subject(args)
        if resolved_path is None and subject.path:
            resolved_path = self.workspace / subject.path
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
