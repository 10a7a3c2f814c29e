"""Memory: the agent reads and writes its auto memory (context/auto_memory.py).

No permission is asked: the tool writes only inside the project's memory folder in the state
dir, by names it checks itself (no paths), with secrets masked before anything is written. That
is the whole right: the file tools get nothing from it, and the memory folder is outside the
workspace for them as for any other folder.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, Field

from lsp_agent.context.auto_memory import TYPES, AutoMemory, MemoryRefused
from lsp_agent.tools.base import Tool, ToolContext, ToolError

Action = Literal["list", "read", "write", "delete"]


class MemoryInput(BaseModel):
    action: Action
    name: str = ""
    description: str = Field(default="", max_length=300)
    type: str = Field(default="", description="|".join(TYPES))
    content: str = ""


class MemoryTool(Tool):
    name = "Memory"
    # Kept short: it is in every request (the fixed overhead budget, tests/test_context_*).
    description = ("Notes kept between sessions (index MEMORY.md above). Read a topic when "
                   "relevant; write what later sessions should know (no asking). "
                   "No secrets.")
    input_model = MemoryInput
    access = "session"  # the memory folder only, by name: no workspace file, no shell
    max_result_chars = 30_000

    def __init__(self, memory: AutoMemory):
        self.memory = memory
        self._lock = asyncio.Lock()  # one write at a time keeps the index whole

    async def call(self, args: MemoryInput, ctx: ToolContext) -> str:
        try:
            async with self._lock:
                return await asyncio.to_thread(self._run, args)
        except MemoryRefused as exc:
            raise ToolError(str(exc)) from None

    def _run(self, args: MemoryInput) -> str:
        if args.action == "list":
            topics = self.memory.topics()
            if not topics:
                return "The memory holds no topic files yet."
            return "\n".join(f"{t.name} ({t.type}): {t.description}"
                             + (f" [broken frontmatter: {t.problem}]" if t.problem else "")
                             for t in topics)
        if not args.name:
            raise ToolError(f"action {args.action!r} needs a name")
        if args.action == "read":
            return self.memory.read(args.name)
        if args.action == "delete":
            found = self.memory.delete(args.name)
            return f"Deleted {args.name}." if found else f"There is no memory {args.name!r}."
        if not args.content.strip() or not args.description or not args.type:
            raise ToolError(f"write needs description, type (one of {', '.join(TYPES)}) and "
                            "content")
        file, masked = self.memory.write_topic(args.name, args.description, args.type,
                                               args.content)
        note = (f" {masked} secret-looking value(s) were masked: memory never holds secrets."
                if masked else "")
        return f"Saved {file}; its index line is in MEMORY.md.{note}"
