"""Coordinator mode: the main agent plans and delegates; workers do the work in parallel.

A session started with ``coordinator: true`` gives its own agent only the tools to orchestrate
(Agent, SendMessage, the shared task list, TaskOutput/TaskStop) and to read (Read, Grep, Glob,
diagnostics, code intelligence): it cannot edit or run commands itself. Its prompt asks for
research -> synthesis -> implementation -> verification, with read-only workers in parallel
and writing workers in git worktrees.

Workers share findings through a **scratchpad**: a folder of the session under the state dir
(``<state>/scratch/<session id>``). Every agent of the session may read it; subagents may
also write files there, directly (it is not the user's code: no review), checked at write time
to stay inside it; their shell commands may write it too (a writable path of the sandbox).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from lsp_agent.agent.isolation import WorktreeWriter
from lsp_agent.permissions.sandbox import Sandbox
from lsp_agent.tools.base import ProposalSink, Tool, ToolContext
from lsp_agent.types.edits import FileEdit

# Besides the read-only tools: what the coordinator orchestrates with.
ORCHESTRATION = frozenset({"Agent", "SendMessage", "TaskCreate", "TaskUpdate", "TaskList",
                           "TaskGet", "TaskOutput", "TaskStop", "ToolSearch"})
NOT_FOR_COORDINATOR = frozenset({"TodoWrite"})  # its plan is the shared task list
# Behind ToolSearch in other sessions (they are for teams of agents, and every request would
# carry their schemas); loaded from the start for the coordinator. Children have them loaded.
TEAM_TOOLS = ("SendMessage", "TaskCreate", "TaskGet", "TaskList", "TaskUpdate")

COORDINATOR_PROMPT = """\
# Coordinator mode

You are the coordinator. You do not change files or run commands yourself: you plan, delegate \
to subagents with the Agent tool, follow their work and report to the user. Work in phases:

1. Research: split what must be known into independent questions and start read-only workers \
for them in parallel (several Agent calls in one response, subagent_type Explore, or \
general-purpose when a worker must write its findings).
2. Synthesis: read their reports and the findings they left in the scratchpad; decide what to \
change. Record the work as tasks (TaskCreate, with blockedBy for what must come first).
3. Implementation: start writing workers (general-purpose) with isolation "worktree", one per \
independent change, each with a complete, self-contained prompt naming its task id; they claim \
their task with TaskUpdate. When each ends, its changes come back to the user as one proposal \
to review (you get the outcome, and any conflict, in its result).
4. Verification: start a worker to check the result (tests, review of the changes) and report.

Workers see nothing of this conversation: put everything a worker needs in its prompt. Use \
SendMessage to redirect a running worker or to continue one that finished.

Scratchpad (shared by every agent of this session, read it with Read/Glob; workers write \
their findings there as files): {scratch}
"""

WORKER_NOTE = (
    "Shared scratchpad of this session: {scratch}. Write your findings, notes and results there "
    "as files (Write with an absolute path; shell commands may write there too) for the other "
    "agents, and read what they left (Read, Glob). It is not part of the user's code.")


def scratch_dir(state_dir: Path, session_id: str) -> Path:
    return state_dir / "scratch" / session_id


def coordinator_tools(tools: list[Tool]) -> list[Tool]:
    """The coordinator's own pool: read-only tools and the orchestration tools."""
    return [t for t in tools if t.name not in NOT_FOR_COORDINATOR
            and (t.name in ORCHESTRATION or t.access == "read" or
                 (t.read_only and t.name.startswith("Task")))]


async def make_scratch(path: Path) -> None:
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True, mode=0o700)


class ScratchRouter:
    """A worker's proposal sink: files in the scratchpad are written at once (inside it only,
    re-checked at write time); every other change goes to ``fallback`` (the review flow, or an
    isolated worker's worktree)."""

    def __init__(self, scratch: Path, fallback: ProposalSink):
        self.scratch = scratch
        self.writer = WorktreeWriter(scratch, str(scratch), "the scratchpad", "")
        self.fallback = fallback

    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        inside = [c for c in changes if c.path.is_relative_to(self.scratch)]
        if not inside:
            return await self.fallback.propose(tool_use_id, changes)
        if len(inside) != len(changes):
            return "Not written: write scratchpad files and project files in separate calls."
        return await self.writer.propose(tool_use_id, changes)


def worker_context(ctx: ToolContext, scratch: Path) -> ToolContext:
    """A worker's tool context: the scratchpad writable (files, and shell commands)."""
    sandbox = ctx.sandbox
    if isinstance(sandbox, Sandbox):
        policy = dataclasses.replace(sandbox.policy, writable=[*sandbox.policy.writable, scratch])
        sandbox = dataclasses.replace(sandbox, policy=policy)
    return dataclasses.replace(ctx, proposals=ScratchRouter(scratch, ctx.proposals),
                               sandbox=sandbox)
