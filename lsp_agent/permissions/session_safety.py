"""Everything that keeps one session safe, assembled from its workspace's settings files:
the permission gate, the hooks and the sandbox; plus the prompt-level hooks of a turn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions import hook_trust
from lsp_agent.permissions import hooks as hk
from lsp_agent.permissions import settings as st
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import MODES, Asker, PermissionAnswer

log = logging.getLogger(__name__)
MAX_STOP_CONTINUATIONS = 3  # per prompt: Stop hooks cannot keep a turn going for ever
MAX_REASON_CHARS = 10_000
SESSION_END_LIMIT = 10.0  # seconds all SessionEnd hooks together may hold up closing
IDLE_ENV = "LSP_AGENT_IDLE_NOTIFY_SECONDS"
DEFAULT_IDLE_SECONDS = 60.0  # an idle Notification after this long waiting for a prompt


@dataclass
class SessionSafety:
    gate: PermissionGate
    hooks: hk.Hooks
    sandbox: Sandbox
    warnings: list[str] = field(default_factory=list)
    # Project hooks waiting for the user's approval (lsp_agent/permissions/hook_trust.py).
    pending_hooks: hook_trust.PendingHooks = field(
        default_factory=lambda: hook_trust.PendingHooks([], []))
    # SessionStart's source for the next turn (startup, resume, clear, compact); None: ran.
    start_source: str | None = "startup"
    asker: Asker | None = None  # the session's, for the project hooks' approval
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _idle: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, workspace: Path, mode: str, readable: list[Path],
              options: dict[str, Any] | None, session_id: str) -> SessionSafety:
        settings = st.load(workspace, options)
        ready, pending = hook_trust.split(settings.hooks, settings.approved_hooks)
        table, hook_warnings = hk.parse_config(ready)
        hook_warnings += hk.parse_config(pending.sets)[1]
        if mode == "default" and settings.default_mode in MODES:
            mode = settings.default_mode
        gate = PermissionGate(workspace, mode, readable, settings=settings)  # type: ignore[arg-type]
        sandbox = Sandbox(SandboxPolicy.from_settings(settings.sandbox), workspace)
        warnings = settings.warnings + hook_warnings
        if not sandbox.active():
            warnings.append(sandbox.status())
        for warning in warnings:
            log.warning("session %s: %s", session_id, warning)
        hooks = hk.Hooks(table, workspace, session_id, sandbox.policy.env)
        return cls(gate, hooks, sandbox, warnings, pending)

    async def before_turn(self, blocks: list[dict[str, Any]],
                          text: str) -> tuple[list[dict[str, Any]], str | None]:
        """SessionStart (first turn) and UserPromptSubmit hooks: (prompt blocks with added
        context, the reason when a hook blocked the prompt)."""
        self.disarm_idle()
        if self.pending_hooks.sets:
            await self._approve_project_hooks()
        context: list[str] = []
        if self.start_source is not None:
            source, self.start_source = self.start_source, None
            started = await self.hooks.run("SessionStart", {"source": source})
            context += started.context
        submitted = await self.hooks.run("UserPromptSubmit", {
            "prompt": text, "permission_mode": self.gate.mode})
        if submitted.decision in {"block", "deny"}:
            return blocks, submitted.reason or "a UserPromptSubmit hook blocked the prompt"
        context += submitted.context
        if context:
            blocks = [*blocks, {"type": "text", "text": "\n\n".join(
                f"<hook-context>\n{c}\n</hook-context>" for c in context)}]
        return blocks, None

    async def before_compact(self, trigger: str,
                             instructions: str | None) -> tuple[str | None, str | None]:
        """PreCompact hooks: (context to add to the summary instructions, refusal reason)."""
        if not self.hooks.has("PreCompact"):
            return None, None
        outcome = await self.hooks.run("PreCompact", {
            "trigger": trigger, "custom_instructions": instructions or ""})
        if outcome.decision in {"block", "deny"}:
            return None, outcome.reason or "blocked by a PreCompact hook"
        return ("\n\n".join(outcome.context) or None), None

    async def after_turn(self, stop_reason: str, stop_hook_active: bool = False) -> str | None:
        """Stop hooks, told that the turn ended: the reason to continue it when a hook blocks
        the end of a normal turn (``end_turn``), else None. ``stop_hook_active``: this turn
        already continues because of a Stop hook (hooks use it to avoid endless loops)."""
        if not self.hooks.has("Stop"):
            return None
        outcome = await self.hooks.run("Stop", {
            "stop_reason": stop_reason, "stop_hook_active": stop_hook_active,
            "permission_mode": self.gate.mode})
        for message in outcome.messages:
            log.info("Stop hook: %s", message)
        # {"continue": false} means "stop now": it overrides another hook's block.
        if outcome.stop or outcome.decision != "block" or stop_reason != "end_turn":
            return None
        return outcome.reason or "A Stop hook asked you to continue without giving a reason."


    async def _approve_project_hooks(self) -> None:
        """Ask once whether the project's hooks may run; they run from now on if so."""
        pending, self.pending_hooks = self.pending_hooks, hook_trust.PendingHooks([], [])
        table, _ = hk.parse_config(pending.sets)
        if not any(table.values()):
            return
        if self.asker is None:
            log.warning("project hooks not run: no one to ask for their approval")
            return
        try:
            answer = await self.asker(hook_trust.approval_question(
                pending, table, self.hooks.session_id))
        except Exception:  # an editor that cannot ask: the hooks stay off
            log.exception("asking about the project's hooks failed")
            return
        if answer.decision != "allow":
            log.info("the user declined the project's hooks")
            return
        self.hooks.add(table)
        if answer.remember in ("project", "user"):
            with contextlib.suppress(OSError, ValueError):
                hook_trust.record_approval(self.hooks.workspace, pending.fingerprints)

    # -- lifecycle hooks ---------------------------------------------------------------------

    async def session_end(self, reason: str = "other") -> None:
        """SessionEnd hooks, bounded: closing a session never waits long for them."""
        self.disarm_idle()
        for task in list(self._background):
            task.cancel()
        if not self.hooks.has("SessionEnd"):
            return
        try:
            await asyncio.wait_for(self.hooks.run("SessionEnd", {"reason": reason}),
                                   SESSION_END_LIMIT)
        except TimeoutError:
            log.warning("SessionEnd hooks took longer than %g s; stopped", SESSION_END_LIMIT)

    def notify(self, message: str, kind: str) -> None:
        """Notification hooks, in the background (they never hold up what they announce)."""
        if not self.hooks.has("Notification"):
            return
        task = asyncio.ensure_future(self._notify(message, kind))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _notify(self, message: str, kind: str) -> None:
        try:
            await self.hooks.run("Notification", {"message": message,
                                                  "notification_type": kind})
        except Exception:
            log.exception("Notification hook failed")

    def notifying(self, asker: Asker | None) -> Asker | None:
        """``asker`` that first fires a ``permission_prompt`` Notification."""
        if asker is None:
            return None

        async def ask(asked: ev.PermissionAsked) -> PermissionAnswer:
            self.notify(f"lsp-agent needs your permission to use {asked.tool}",
                        "permission_prompt")
            return await asker(asked)

        return ask

    def arm_idle(self) -> None:
        """After a turn: an ``idle_prompt`` Notification if no prompt comes for a while."""
        self.disarm_idle()
        if self.hooks.has("Notification"):
            self._idle = asyncio.ensure_future(self._idle_after(_idle_seconds()))

    def disarm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _idle_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._idle = None
        await self._notify("lsp-agent is waiting for your input", "idle_prompt")


def _idle_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def stop_hook_prompt(reason: str) -> dict[str, Any]:
    """The user message that continues a turn a Stop hook did not let end."""
    return {"type": "text", "text": (
        "<stop-hook-feedback>\nA Stop hook (a check the user configured to run when you "
        "finish) did not let the turn end. Address this, then finish again:\n"
        f"{reason[:MAX_REASON_CHARS]}\n</stop-hook-feedback>")}
