"""The two tools only the Dream agent has (sessions/dream_agent.py).

- ``DreamPhase``: the agent says which of the four phases it starts (orient, gather,
  consolidate, prune); the server reports it as ``agent/dreamStatus``. A declared phase, not a
  guessed one: the model knows what it is doing, the tool calls alone do not say it.
- ``Memory`` for Dream: the session's Memory tool on the Dream's staging copy of the memory
  folder, plus ``index`` (the whole new MEMORY.md, refused over its limits) for the re-index.
Both touch only the Dream's own state (``access = "session"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.context.auto_memory import TYPES, AutoMemory, MemoryRefused
from lsp_agent.tools.base import Tool, ToolContext, ToolError
from lsp_agent.tools.memory import MemoryInput, MemoryTool

Phase = Literal["orient", "gather", "consolidate", "prune"]
PHASES: tuple[Phase, ...] = ("orient", "gather", "consolidate", "prune")


class PhaseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phase: Phase = Field(description="The phase you start now.")


class DreamPhase(Tool):
    name = "DreamPhase"
    description = ("Say which phase you start: orient, gather, consolidate, prune (in that "
                   "order; the user sees it).")
    input_model = PhaseInput
    access = "session"
    time_limit = 10.0

    def __init__(self, report: Callable[[str], None]):
        self.report = report

    async def call(self, args: PhaseInput, ctx: ToolContext) -> str:
        self.report(args.phase)
        return f"Phase {args.phase} started."


class DreamMemoryInput(BaseModel):
    action: Literal["list", "read", "write", "delete", "index"]
    name: str = ""
    description: str = Field(default="", max_length=300)
    type: str = Field(default="", description="|".join(TYPES))
    content: str = Field(default="", description="write: the topic's text; index: the whole "
                                                 "new MEMORY.md")


class DreamMemoryTool(Tool):
    name = MemoryTool.name
    description = ("The memory copy you consolidate: list; read NAME; write NAME (the whole "
                   "topic: description, type, content; its index line follows); delete NAME; "
                   "index (content: the whole new MEMORY.md, at most 200 lines / 25 KB). "
                   "Secrets are masked.")
    input_model = DreamMemoryInput
    access = "session"  # the staging copy only, by name
    max_result_chars = MemoryTool.max_result_chars

    def __init__(self, memory: AutoMemory):
        self.memory = memory
        self.inner = MemoryTool(memory)  # the session's checks and messages
        self._lock = asyncio.Lock()  # the index action too: one write at a time

    async def call(self, args: DreamMemoryInput, ctx: ToolContext) -> str:
        async with self._lock:
            if args.action != "index":
                return await self.inner.call(MemoryInput.model_validate(args.model_dump()), ctx)
            return await self._index(args.content.strip())

    async def _index(self, text: str) -> str:
        try:
            masked = await asyncio.to_thread(self.memory.write_index,
                                             f"{text}\n" if text else "")
        except MemoryRefused as exc:
            raise ToolError(str(exc)) from None
        note = f" {masked} secret-looking value(s) were masked." if masked else ""
        return f"Saved MEMORY.md ({len(text.splitlines())} lines).{note}"
