"""SendMessage: talk to a subagent the main agent started, by its name or agent id.

* A child that is running (in the foreground of another call, or in the background) gets the
  message queued: it reads it at its next step, as a user message
  (``<message from="main agent">``); one that was just finishing runs one more turn for it.
* A child that has ended is continued: a new turn of its kept conversation with the message
  as the prompt, run like a foreground Agent call (a slot, events tagged with the child and
  this call), and its new final report is the result.

A child that worked in a git worktree cannot be continued once it ended (its worktree was
removed or committed); start a new agent instead. The children of a resumed session are back
(``sessions/sidechain.py``): their conversations read from their transcripts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.agent.subagents import Delegation
from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolOutput

MAX_MESSAGE = 20_000


class SendMessageInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=100,
                    description="The agent's name (given to Agent) or its agent id.")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE,
                         description="What to tell it: complete in itself.")


class SendMessage(Tool):
    name = "SendMessage"
    description = (
        "Send a message to a subagent you started. Name it by the name you gave it, or its "
        "agent id. A running agent reads it at its next step; an agent that has finished "
        "continues its conversation with the message and answers with a new report.")
    input_model = SendMessageInput
    access = "session"  # the child's own tool calls are judged one by one
    time_limit = None  # a continued child is bounded by its turn limit; a cancel stops it

    def __init__(self, delegation: Delegation):
        self.delegation = delegation

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return True  # continued children run side by side, as Agent calls do

    async def call(self, args: SendMessageInput, ctx: ToolContext) -> ToolOutput:
        child = self.delegation.find(args.to)
        if child is None:
            raise ToolError(f"No agent named {args.to!r}. Agents: {self._known()}")
        if child.running:
            child.inbox.append(args.message)
            return ToolOutput(f"Message queued for {child.label} ({child.agent_id}): it reads "
                              "it at its next step.")
        if child.worktree is not None:
            raise ToolError(f"{child.label} ({child.agent_id}) worked in a git worktree that "
                            "ended with it; start a new agent for more work.")
        child.running = True  # a second message in this response is queued, not a 2nd run
        child.parent_tool_use_id = ctx.tool_use_id
        try:
            async with self.delegation.slots():
                return await child.run(args.message)
        finally:
            child.running = False

    def _known(self) -> str:
        rows: list[Any] = [f"{c.args.name or c.label} ({c.agent_id}, "
                           f"{'running' if c.running else 'ended'})"
                           for c in self.delegation.agents.values()]
        return ", ".join(rows) or "none started yet"
