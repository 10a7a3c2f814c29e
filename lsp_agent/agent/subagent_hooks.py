"""SubagentStart and SubagentStop hooks, fired around a child agent's run (subagents.py).

SubagentStart's plain stdout or ``additionalContext`` is added to the child's first message.
SubagentStop is told how the child ended; it cannot keep the child going (a block is logged):
the parent already has the child's result to act on.
"""

from __future__ import annotations

import logging
from typing import Any

from lsp_agent.permissions.hooks import Hooks

log = logging.getLogger(__name__)


async def subagent_start(hooks: Hooks | None, agent_id: str,
                         agent_type: str) -> list[dict[str, Any]]:
    """Blocks to add to the child's prompt (hook context), if any."""
    if hooks is None or not hooks.has("SubagentStart"):
        return []
    outcome = await hooks.run("SubagentStart", {"agent_id": agent_id, "agent_type": agent_type})
    return [{"type": "text", "text": f"<hook-context>\n{c}\n</hook-context>"}
            for c in outcome.context]


async def subagent_stop(hooks: Hooks | None, agent_id: str, agent_type: str,
                        stop_reason: str, transcript: str | None = None) -> None:
    if hooks is None or not hooks.has("SubagentStop"):
        return
    outcome = await hooks.run("SubagentStop", {
        "agent_id": agent_id, "agent_type": agent_type, "stop_reason": stop_reason,
        "stop_hook_active": False, "agent_transcript_path": transcript})
    if outcome.decision == "block":
        log.info("a SubagentStop hook's block is not applied (%s)", outcome.reason[:500])
