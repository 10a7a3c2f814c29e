"""User hooks: commands run on agent events, configured in the settings files.

The configuration shape is Claude Code's::

    "hooks": {"PreToolUse": [{"matcher": "Bash|Edit", "hooks": [
        {"type": "command", "command": "./check.sh", "timeout": 30}]}]}

``matcher`` is a regular expression over the tool name (``""`` or ``"*"``: every tool), or a
permission rule such as ``Bash(git push:*)`` or ``Edit(src/**)``. The hook gets the event as
JSON on stdin. Exit code 2 blocks (its stderr goes to the model); other non-zero codes are
reported and ignored; on exit 0 a JSON object on stdout may decide (see ``HookOutcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions.rules import Rule, RuleError
from lsp_agent.procs.environment import EnvPolicy, command_env
from lsp_agent.procs.lifetime import guarded
from lsp_agent.types.permissions import Subject

log = logging.getLogger(__name__)
EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SessionStart", "PreCompact")
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 600.0
MAX_OUTPUT = 64_000  # bytes kept of a hook's stdout and stderr each
MAX_INPUT_FIELD = 100_000  # characters of a tool result passed to PostToolUse


@dataclass
class HookCommand:
    command: str
    timeout: float
    source: str


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
        if not isinstance(hook, dict) or hook.get("type", "command") != "command" \
                or not isinstance(hook.get("command"), str):
            warnings.append(f"{source}: hooks.{event}: only {{'type': 'command', 'command': "
                            "...}} hooks are supported; one ignored")
            continue
        timeout = hook.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, int | float) or timeout <= 0:
            timeout = DEFAULT_TIMEOUT
        commands.append(HookCommand(hook["command"], min(float(timeout), MAX_TIMEOUT), source))
    return Matcher(str(entry.get("matcher") or ""), commands)


class Hooks:
    def __init__(self, table: dict[str, list[Matcher]], workspace: Path, session_id: str = "",
                 env_policy: EnvPolicy | None = None):
        self.table, self.workspace, self.session_id = table, workspace, session_id
        self.env_policy = env_policy  # the settings' hideEnv/passEnv

    def has(self, event: str) -> bool:
        return bool(self.table.get(event))

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
                outcome.merge(await self._run_one(event, command, data))
        return outcome

    async def _run_one(self, event: str, hook: HookCommand, data: dict[str, Any]) -> HookOutcome:
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


def interpret_stdout(event: str, stdout: str) -> HookOutcome:
    text = stdout.strip()
    if not text.startswith("{"):
        # Plain stdout of prompt and session hooks is context for the model.
        if text and event in {"UserPromptSubmit", "SessionStart", "PreCompact"}:
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
