"""A saved session's history (transcript entries, oldest first) as the ``session/update``s that
``session/load`` replays: pure functions, one per entry type (a table).

What the user saw is replayed: their prompts, the agent's text, each tool call with its input
and result, plans, mode changes, compactions and errors. Bookkeeping (usage, turn ends, titles,
model switches) is not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from acp import (
    start_tool_call,
    text_block,
    tool_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_user_message_text,
)
from acp.helpers import update_current_mode
from acp.schema import ToolCallProgress

from lsp_agent.acp.mapping import (
    MAX_RESULT_CHARS,
    TOOL_KINDS,
    plan_from,
    tool_locations,
    tool_title,
)
from lsp_agent.types.permissions import MODES

Entry = dict[str, Any]


def _user(entry: Entry, workspace: Path) -> list[Any]:
    prompt = str(entry.get("prompt", ""))
    if entry.get("origin", "user") == "user":
        return [update_user_message_text(prompt)]
    return [update_agent_thought_text(f"(continued by a Stop hook: {prompt})\n")]


def _assistant(entry: Entry, workspace: Path) -> list[Any]:
    updates: list[Any] = []
    for block in (entry.get("message") or {}).get("content") or []:
        if block.get("type") == "text" and block.get("text"):
            updates.append(update_agent_message_text(block["text"]))
        elif block.get("type") == "tool_use":
            name, arguments = str(block.get("name", "")), block.get("input") or {}
            updates.append(start_tool_call(
                str(block.get("id", "")), tool_title(name, arguments),
                kind=TOOL_KINDS.get(name, "other"), status="pending", raw_input=arguments,
                locations=tool_locations(workspace, arguments)))
    return updates


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        text = content
    else:
        text = "\n".join(str(b.get("text", "")) for b in content or []
                         if isinstance(b, dict) and b.get("type") == "text")
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "\n\u2026"


def _tool_results(entry: Entry, workspace: Path) -> list[Any]:
    return [ToolCallProgress(
        session_update="tool_call_update", tool_call_id=str(block.get("tool_use_id", "")),
        status="failed" if block.get("is_error") else "completed",
        content=[tool_content(text_block(_result_text(block.get("content"))))])
        for block in (entry.get("message") or {}).get("content") or []
        if block.get("type") == "tool_result"]


def _proposal(entry: Entry, workspace: Path) -> list[Any]:
    diff = "\n".join(str(f.get("diff", "")) for f in entry.get("files") or [])
    if not diff.strip():
        return []
    return [ToolCallProgress(
        session_update="tool_call_update", tool_call_id=str(entry.get("toolUseId", "")),
        content=[tool_content(text_block(f"```diff\n{diff}\n```"))])]


def _mode(entry: Entry, workspace: Path) -> list[Any]:
    mode = entry.get("mode")
    return [update_current_mode(mode)] if mode in MODES else []


def _compacted(entry: Entry, workspace: Path) -> list[Any]:
    return [update_agent_thought_text(
        f"Context compacted ({entry.get('strategy')}): {entry.get('tokensBefore', 0):,} -> "
        f"{entry.get('tokensAfter', 0):,} tokens\n")]


def _system(entry: Entry, workspace: Path) -> list[Any]:
    text = f"\n[lsp-agent: {entry.get('kind')}] {entry.get('message')}\n"
    if entry.get("level") == "error":
        return [update_agent_message_text(text)]
    return [update_agent_thought_text(text)]


def _auto_decision(entry: Entry, workspace: Path) -> list[Any]:
    cached = " (cached)" if entry.get("cached") else ""
    return [update_agent_thought_text(
        f"\n[auto mode: {entry.get('decision')} {entry.get('tool')}{cached}] "
        f"{entry.get('reason')}\n")]


_REPLAYERS: dict[str, Callable[[Entry, Path], list[Any]]] = {
    "user": _user,
    "assistant": _assistant,
    "tool_result": _tool_results,
    "proposal": _proposal,
    "todos": lambda entry, _ws: [plan_from(entry.get("todos") or [])],
    "mode": _mode,
    "compact_boundary": _compacted,
    "system": _system,
    "auto_decision": _auto_decision,
}


def replay(entries: list[Entry], workspace: Path) -> list[Any]:
    """The updates that show ``entries`` (oldest first) again."""
    updates: list[Any] = []
    for entry in entries:
        replayer = _REPLAYERS.get(str(entry.get("type")))
        if replayer is not None:
            updates += replayer(entry, workspace)
    return updates
