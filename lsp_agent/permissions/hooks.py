"""User hooks: commands run on agent events, configured in the settings files.

The configuration shape is Claude Code's::

    "hooks": {"PreToolUse": [{"matcher": "Bash|Edit", "hooks": [
        {"type": "command", "command": "./check.sh", "timeout": 30}]}]}

``matcher`` is a regular expression over the tool name (``""`` or ``"*"``: every tool), or a
permission rule such as ``Bash(git push:*)`` or ``Edit(src/**)``. The hook gets the event as
JSON on stdin. Exit code 2 blocks (its stderr goes to the model); other non-zero codes are
reported and ignored; on exit 0 a JSON object on stdout may decide (see ``HookOutcome``).
Besides ``command``, hooks of type ``http`` (POST the input to a URL) and ``prompt`` (a small
model judges) run through lsp_agent/permissions/hook_kinds.py; their answers are read like a
command's stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions.rules import Rule, RuleError
from lsp_agent.procs.environment import EnvPolicy, command_env
from lsp_agent.procs.lifetime import guarded
from lsp_agent.types.permissions import Subject

log = logging.getLogger(__name__)
EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit", "Stop",
          "SessionStart", "SessionEnd", "PreCompact", "Notification", "SubagentStart",
          "SubagentStop")
HOOK_TYPES = ("command", "http", "prompt")
# Events whose plain stdout (or additionalContext) is context for the model.
CONTEXT_EVENTS = frozenset({"UserPromptSubmit", "SessionStart", "PreCompact", "SubagentStart"})
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 600.0
MAX_OUTPUT = 64_000  # bytes kept of a hook's stdout and stderr each
MAX_INPUT_FIELD = 100_000  # characters of a tool result passed to PostToolUse


@dataclass
class HookCommand:
    """One hook of any type (the name predates the other types)."""

    command: str  # the command line (command), the URL (http) or the prompt (prompt)
    timeout: float
    source: str
    kind: str = "command"  # command, http, prompt
    headers: dict[str, str] = field(default_factory=dict)  # http
    allowed_env_vars: tuple[str, ...] = ()  # http: the only ${VAR}s expanded in headers
    model: str | None = None  # prompt: the model that judges (default: the small model)
    condition: str | None = None  # ``if``: a permission rule the tool call must match
    once: bool = False  # run once per session, then never again
    status_message: str | None = None

    @property
    def shown(self) -> str:
        """What the user is told the hook does (never its headers: they may hold secrets)."""
        text = self.command if len(self.command) <= 200 else self.command[:200] + "..."
        return {"http": f"POST {text}", "prompt": f"ask a model: {text}"}.get(self.kind, text)


@dataclass
class Matcher:
    text: str
    commands: list[HookCommand]

    def matches(self, tool: str | None, tool_input: dict[str, Any], workspace: Path,
                subject: Subject | None = None) -> bool:
        if tool is None or self.text in {"", "*"}:
            return True
        if "(" in self.text:
            try:
                rule = Rule.parse(self.text, "hook", workspace)
            except RuleError:
                return False
            subject = subject or _subject_from_input(tool_input)
            if not rule.applies_to(tool, subject.access):
                return False
            if subject.access == "shell":
                return rule.matches_command(subject.command or "")
            target = subject.path
            if rule.pattern is None or not isinstance(target, str):
                return rule.pattern is None
            return rule.matches_path(workspace / target if not target.startswith("/")
                                     else Path(target), workspace)
        try:
            return re.fullmatch(self.text, tool) is not None
        except re.error:
            return self.text == tool


def _subject_from_input(tool_input: dict[str, Any]) -> Subject:
    """For callers that have no tool at hand: what the input's fields say it touches."""
    command = tool_input.get("command")
    if isinstance(command, str):
        return Subject("shell", command=command)
    path = tool_input.get("path") or tool_input.get("file_path")
    return Subject("external", path=path if isinstance(path, str) else None)


@dataclass
class HookOutcome:
    """What the hooks of one event decided, merged (deny beats ask beats allow)."""

    # allow, deny, ask (PreToolUse); block (others: for Stop, "do not end the turn yet")
    decision: str | None = None
    reason: str = ""
    updated_input: dict[str, Any] | None = None
    context: list[str] = field(default_factory=list)  # added to what the model sees
    stop: bool = False  # {"continue": false}
    messages: list[str] = field(default_factory=list)  # for the user / the log

    def merge(self, other: HookOutcome) -> None:
        order = {None: 0, "allow": 1, "ask": 2, "block": 3, "deny": 3}
        if order[other.decision] > order[self.decision]:
            self.decision, self.reason = other.decision, other.reason
        if other.updated_input is not None:
            self.updated_input = other.updated_input
        self.context += other.context
        self.stop = self.stop or other.stop
        self.messages += other.messages


def parse_config(hook_sets: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, list[Matcher]],
                                                                         list[str]]:
    """Matchers per event from the settings' ``hooks`` objects; plus warnings."""
    table: dict[str, list[Matcher]] = {e: [] for e in EVENTS}
    warnings: list[str] = []
    for source, config in hook_sets:
        for event, entries in config.items():
            if event not in table:
                warnings.append(f"{source}: unknown hook event {event!r}; ignored")
                continue
            if not isinstance(entries, list):
                warnings.append(f"{source}: hooks.{event} must be a list; ignored")
                continue
            for entry in entries:
                matcher = _matcher(entry, source, event, warnings)
                if matcher is not None:
                    table[event].append(matcher)
    return table, warnings


def _matcher(entry: Any, source: str, event: str, warnings: list[str]) -> Matcher | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("hooks"), list):
        warnings.append(f"{source}: hooks.{event} entries need a 'hooks' list; ignored")
        return None
    commands = []
    for hook in entry["hooks"]:
        parsed = _hook(hook, source)
        if isinstance(parsed, str):
            warnings.append(f"{source}: hooks.{event}: {parsed}; one ignored")
        else:
            commands.append(parsed)
    return Matcher(str(entry.get("matcher") or ""), commands)


# The field that carries each type's main value.
_MAIN_FIELD = {"command": "command", "http": "url", "prompt": "prompt"}


def _hook(hook: Any, source: str) -> HookCommand | str:
    """One hook entry, or why it is ignored."""
    kind = hook.get("type", "command") if isinstance(hook, dict) else None
    if kind not in _MAIN_FIELD:
        return f"hook type {kind!r} is not supported (only {', '.join(HOOK_TYPES)})"
    main = hook.get(_MAIN_FIELD[kind])
    if not isinstance(main, str) or not main.strip():
        return f"a {kind} hook needs a string {_MAIN_FIELD[kind]!r}"
    if kind == "http" and not re.match(r"https?://", main):
        return f"an http hook's url must start with http:// or https:// ({main[:100]!r})"
    timeout = hook.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or timeout <= 0:
        timeout = DEFAULT_TIMEOUT
    headers = hook.get("headers") if isinstance(hook.get("headers"), dict) else {}
    allowed = hook.get("allowedEnvVars") if isinstance(hook.get("allowedEnvVars"), list) else []
    condition = hook.get("if")
    return HookCommand(
        main, min(float(timeout), MAX_TIMEOUT), source, kind,
        headers={str(k): str(v) for k, v in headers.items()},
        allowed_env_vars=tuple(str(v) for v in allowed),
        model=hook.get("model") if isinstance(hook.get("model"), str) else None,
        condition=condition if isinstance(condition, str) and condition.strip() else None,
        once=hook.get("once") is True,
        status_message=hook.get("statusMessage") if isinstance(
            hook.get("statusMessage"), str) else None)


class Hooks:
    def __init__(self, table: dict[str, list[Matcher]], workspace: Path, session_id: str = "",
                 env_policy: EnvPolicy | None = None):
        self.table, self.workspace, self.session_id = table, workspace, session_id
        self.env_policy = env_policy  # the settings' hideEnv/passEnv
        # prompt hooks: (prompt, model or None) -> the model's answer text. Set by
        # the session (lsp_agent/agent/hook_judge.py); without it prompt hooks are skipped.
        self.judge: Judge | None = None
        self._done_once: set[int] = set()  # ids of ``once`` hooks that ran

    def has(self, event: str) -> bool:
        return bool(self.table.get(event))

    def add(self, table: dict[str, list[Matcher]]) -> None:
        """More hooks (approved project hooks, plugins' hooks), after those already here."""
        for event, matchers in table.items():
            self.table.setdefault(event, []).extend(matchers)

    async def run(self, event: str, payload: dict[str, Any], tool: str | None = None,
                  tool_input: dict[str, Any] | None = None,
                  subject: Subject | None = None) -> HookOutcome:
        outcome = HookOutcome()
        data = {"session_id": self.session_id, "cwd": str(self.workspace),
                "hook_event_name": event, **payload}
        for matcher in self.table.get(event, []):
            if not matcher.matches(tool, tool_input or {}, self.workspace, subject):
                continue
            for command in matcher.commands:
                if not self._due(command, tool, tool_input, subject):
                    continue
                outcome.merge(await self._run_one(event, command, data))
        return outcome

    def _due(self, hook: HookCommand, tool: str | None, tool_input: dict[str, Any] | None,
             subject: Subject | None) -> bool:
        """The ``once`` and ``if`` filters (``if``: a permission rule, for tool events)."""
        if hook.once and id(hook) in self._done_once:
            return False
        if hook.condition is not None and tool is not None and not Matcher(
                hook.condition, []).matches(tool, tool_input or {}, self.workspace, subject):
            return False
        if hook.once:
            self._done_once.add(id(hook))
        return True

    async def _run_one(self, event: str, hook: HookCommand, data: dict[str, Any]) -> HookOutcome:
        if hook.status_message:
            log.info("hook %s: %s", event, hook.status_message)
        if hook.kind != "command":
            from lsp_agent.permissions.hook_kinds import run_http, run_prompt

            if hook.kind == "http":
                return await run_http(event, hook, data)
            return await run_prompt(event, hook, data, self.judge)
        try:
            code, out, err = await run_bounded(hook.command, json.dumps(data), self.workspace,
                                               hook.timeout, self.env_policy)
        except OSError as exc:
            return HookOutcome(messages=[f"hook {hook.command!r} could not start: {exc}"])
        if code is None:
            return HookOutcome(messages=[f"hook {hook.command!r} timed out after "
                                         f"{hook.timeout:g} s and was stopped"])
        if code == 2:
            reason = err.strip() or f"blocked by the hook {hook.command!r}"
            return HookOutcome(decision="deny" if event == "PreToolUse" else "block",
                               reason=reason)
        if code != 0:
            log.warning("hook %r exited with %s: %s", hook.command, code, err.strip()[:500])
            return HookOutcome(messages=[f"hook {hook.command!r} failed (exit {code})"])
        return interpret_stdout(event, out)


Judge = Callable[[str, "str | None"], Awaitable[str]]


def interpret_stdout(event: str, stdout: str) -> HookOutcome:
    text = stdout.strip()
    if not text.startswith("{"):
        # Plain stdout of prompt and session hooks is context for the model.
        if text and event in CONTEXT_EVENTS:
            return HookOutcome(context=[text])
        return HookOutcome()
    try:
        data = json.loads(text)
    except ValueError:
        return HookOutcome(messages=["a hook printed JSON that does not parse; ignored"])
    if not isinstance(data, dict):
        return HookOutcome()
    outcome = HookOutcome(stop=data.get("continue") is False)
    if outcome.stop:
        outcome.decision = "deny" if event == "PreToolUse" else "block"
        outcome.reason = str(data.get("stopReason") or "a hook stopped the turn")
    if data.get("decision") in {"block", "approve", "allow", "deny"}:  # older, flat shape
        flat = {"approve": "allow", "block": "deny"}.get(data["decision"], data["decision"])
        outcome.decision = flat if event == "PreToolUse" else (
            "block" if flat == "deny" else None)
        outcome.reason = str(data.get("reason") or "")
    specific = data.get("hookSpecificOutput")
    if isinstance(specific, dict):
        decision = specific.get("permissionDecision")
        if event == "PreToolUse" and decision in {"allow", "deny", "ask"}:
            outcome.decision = decision
            outcome.reason = str(specific.get("permissionDecisionReason") or "")
        if isinstance(specific.get("updatedInput"), dict):
            outcome.updated_input = specific["updatedInput"]
        if isinstance(specific.get("additionalContext"), str):
            outcome.context.append(specific["additionalContext"])
    if isinstance(data.get("systemMessage"), str):
        outcome.messages.append(data["systemMessage"])
    return outcome


async def run_bounded(
    command: str, stdin: str, cwd: Path, limit: float, env_policy: EnvPolicy | None = None
) -> tuple[int | None, str, str]:
    """Run ``command`` with bash; (exit code or None on timeout, stdout, stderr), capped.

    Like Bash commands: the cleaned environment, its own process group, and under the guard,
    so that nothing it starts outlives the server (lsp_agent/procs/lifetime.py)."""
    argv, life_fds = guarded(["bash", "-c", command])
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True, env=command_env(env_policy), pass_fds=life_fds)
    try:
        out, err = await asyncio.wait_for(_communicate(proc, stdin.encode()), limit)
    except TimeoutError:
        _kill(proc.pid)
        await _reap(proc)
        return None, "", ""
    except asyncio.CancelledError:
        _kill(proc.pid)
        await _reap(proc)
        raise
    return proc.returncode, out, err


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait (briefly) until the killed hook is gone and its pipes are closed: a process left
    running has its transport closed by the garbage collector after the event loop ended,
    which fails ("Event loop is closed")."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 2)


async def _communicate(proc: asyncio.subprocess.Process, data: bytes) -> tuple[str, str]:
    assert proc.stdin and proc.stdout and proc.stderr
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()
    out, err = await asyncio.gather(_read_capped(proc.stdout), _read_capped(proc.stderr))
    await proc.wait()
    return out, err


async def _read_capped(stream: asyncio.StreamReader) -> str:
    kept = bytearray()
    while chunk := await stream.read(65_536):
        if len(kept) < MAX_OUTPUT:
            kept += chunk[: MAX_OUTPUT - len(kept)]
    return kept.decode("utf-8", "replace")


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
