"""Everything that keeps one session safe, assembled from its workspace's settings files:
the permission gate, the hooks and the sandbox; plus the prompt-level hooks of a turn."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions import hooks as hk
from lsp_agent.permissions import settings as st
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy
from lsp_agent.types.permissions import MODES

log = logging.getLogger(__name__)
MAX_STOP_CONTINUATIONS = 3  # per prompt: Stop hooks cannot keep a turn going for ever
MAX_REASON_CHARS = 10_000


@dataclass
class SessionSafety:
    gate: PermissionGate
    hooks: hk.Hooks
    sandbox: Sandbox
    warnings: list[str] = field(default_factory=list)
    _started: bool = False

    @classmethod
    def build(cls, workspace: Path, mode: str, readable: list[Path],
              options: dict[str, Any] | None, session_id: str) -> SessionSafety:
        settings = st.load(workspace, options)
        table, hook_warnings = hk.parse_config(settings.hooks)
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
        return cls(gate, hooks, sandbox, warnings)

    async def before_turn(self, blocks: list[dict[str, Any]],
                          text: str) -> tuple[list[dict[str, Any]], str | None]:
        """SessionStart (first turn) and UserPromptSubmit hooks: (prompt blocks with added
        context, the reason when a hook blocked the prompt)."""
        context: list[str] = []
        if not self._started:
            self._started = True
            started = await self.hooks.run("SessionStart", {"source": "startup"})
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


def stop_hook_prompt(reason: str) -> dict[str, Any]:
    """The user message that continues a turn a Stop hook did not let end."""
    return {"type": "text", "text": (
        "<stop-hook-feedback>\nA Stop hook (a check the user configured to run when you "
        "finish) did not let the turn end. Address this, then finish again:\n"
        f"{reason[:MAX_REASON_CHARS]}\n</stop-hook-feedback>")}
