"""The system prompt in layers, ordered for the prompt cache.

The API caches a prompt in the order tools, system, messages. So:

1. the static layer (role, rules, tool guidance) is byte-identical across turns and sessions and
   carries a cache breakpoint: tools + static system are one shared cached prefix;
2. the environment layer (workspace root, OS, git branch and short status, date) and
3. the memory layer (AGENTS.md / CLAUDE.md) are computed once per session, so they stay
   byte-identical for the session and are cached by the breakpoint on the newest message.

Nested memory files found later go into the conversation, never into the system prompt, so
loading them does not invalidate the cached prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsp_agent.context.memory import MemoryFile, render_memory
from lsp_agent.context.prompt import STATIC_SYSTEM, dynamic_system

CACHE = {"type": "ephemeral"}
MEMORY_HEADER = (
    "The user keeps standing instructions in memory files. Follow them; they override the "
    "defaults above.\n\n"
)


def static_layer() -> dict[str, Any]:
    return {"type": "text", "text": STATIC_SYSTEM, "cache_control": CACHE}


def environment_layer(root: Path) -> dict[str, Any]:
    return {"type": "text", "text": dynamic_system(root)}


def memory_layer(files: list[MemoryFile], root: Path) -> dict[str, Any] | None:
    if not files:
        return None
    return {"type": "text", "text": MEMORY_HEADER + render_memory(files, root)}


def system_layers(root: Path, memory: list[MemoryFile]) -> list[dict[str, Any]]:
    blocks = [static_layer(), environment_layer(root)]
    layer = memory_layer(memory, root)
    if layer is not None:
        blocks.append(layer)
    return blocks


def nested_memory_block(files: list[MemoryFile], root: Path) -> dict[str, Any]:
    """Nested memory as a user-message text block, placed after the tool results."""
    return {"type": "text", "text": "<memory>\n" + render_memory(files, root) + "\n</memory>"}
