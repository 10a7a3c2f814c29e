"""The shared task list: TaskCreate, TaskUpdate, TaskList and TaskGet.

One list per session, shared by the main agent and every subagent (they get the same
``TaskBoard`` through their tool context), so workers can claim work: a task has a subject, a
description, a status, an owner (the agent working on it) and dependencies (``blockedBy``). It
differs from TodoWrite (the main agent's own checklist, replaced whole) in that tasks are
changed one by one, by any agent, and carry owners and dependencies; TaskOutput and TaskStop
are about background commands, not these tasks.

Every change is checked and applied without an await in between (one event loop), so two
agents never both claim a task: the second is told who has it. The session shows the list to
the client (``task_list_updated``, the whole list each time) and records it in the transcript,
so a resumed session has it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.tools.base import Tool, ToolContext, ToolError

MAX_TASKS = 200
MAX_SUBJECT = 200
MAX_DESCRIPTION = 4000

Status = Literal["pending", "in_progress", "completed"]
MAIN_AGENT = "main"  # the owner name of the session's own agent


class TaskItem(BaseModel):
    id: str
    subject: str
    description: str = ""
    status: Status = "pending"
    owner: str | None = None
    blocked_by: list[str] = Field(default_factory=list)
    active_form: str | None = None
    created_by: str | None = None

    def line(self, board: TaskBoard) -> str:
        parts = [f"#{self.id} [{self.status}] {self.subject}"]
        if self.owner:
            parts.append(f"(owner: {self.owner})")
        open_blockers = board.open_blockers(self)
        if open_blockers:
            parts.append("blocked by " + ", ".join(f"#{b}" for b in open_blockers))
        return " ".join(parts)


class TaskBoard:
    """One session's task list; ``on_change`` gets the whole list after every change."""

    def __init__(self, on_change: Callable[[list[TaskItem]], None] | None = None):
        self.items: dict[str, TaskItem] = {}
        self._next = 1
        self._on_change = on_change

    def restore(self, items: list[TaskItem]) -> None:
        """The list as saved (a resumed session): no change to report."""
        self.items = {t.id: t for t in items}
        numbers = [int(t.id) for t in items if t.id.isdigit()]
        self._next = max(numbers, default=0) + 1

    def get(self, task_id: str) -> TaskItem:
        task = self.items.get(task_id.lstrip("#"))
        if task is None:
            known = ", ".join(f"#{t}" for t in self.items) or "none"
            raise ToolError(f"No task #{task_id.lstrip('#')}. Tasks: {known}")
        return task

    def open_blockers(self, task: TaskItem) -> list[str]:
        return [b for b in task.blocked_by
                if b in self.items and self.items[b].status != "completed"]

    def create(self, subject: str, description: str, blocked_by: list[str],
               active_form: str | None, creator: str | None) -> TaskItem:
        if len(self.items) >= MAX_TASKS:
            raise ToolError(f"The task list is full ({MAX_TASKS} tasks); delete finished ones "
                            "with TaskUpdate status \"deleted\".")
        for blocker in blocked_by:
            self.get(blocker)
        task = TaskItem(id=str(self._next), subject=subject, description=description,
                        blocked_by=[b.lstrip("#") for b in blocked_by],
                        active_form=active_form, created_by=creator)
        self._next += 1
        self.items[task.id] = task
        self._changed()
        return task

    def update(self, args: TaskUpdateInput, agent: str) -> str:
        task = self.get(args.task_id)
        if agent != MAIN_AGENT and task.owner not in (None, agent):
            raise ToolError(f"Task #{task.id} is claimed by {task.owner}: leave it to them "
                            "(the main agent can reassign it).")
        if args.status == "deleted":
            del self.items[task.id]
            for other in self.items.values():
                other.blocked_by = [b for b in other.blocked_by if b != task.id]
            self._changed()
            return f"Deleted task #{task.id}."
        changed = task.model_copy(deep=True)
        if args.owner is not None:
            changed.owner = args.owner or None  # "" releases the task
        elif args.status == "in_progress" and changed.owner is None:
            changed.owner = agent  # starting a task claims it
        for blocker in args.add_blocked_by:
            if self.get(blocker).id == task.id:
                raise ToolError("A task cannot block itself.")
            if blocker.lstrip("#") not in changed.blocked_by:
                changed.blocked_by.append(blocker.lstrip("#"))
        changed.blocked_by = [b for b in changed.blocked_by
                              if b not in {r.lstrip("#") for r in args.remove_blocked_by}]
        if args.status is not None:
            if args.status == "in_progress" and (waiting := self.open_blockers(changed)):
                raise ToolError(f"Task #{task.id} is blocked by "
                                + ", ".join(f"#{b}" for b in waiting) + ": finish those first.")
            changed.status = args.status
        for name in ("subject", "description", "active_form"):
            value = getattr(args, name)
            if value is not None:
                setattr(changed, name, value)
        self.items[task.id] = changed
        self._changed()
        return f"Updated task #{task.id}: {changed.line(self)}"

    def listing(self) -> str:
        if not self.items:
            return "The task list is empty."
        return "\n".join(t.line(self) for t in self.items.values())

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(list(self.items.values()))


class TaskCreateInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    subject: str = Field(min_length=1, max_length=MAX_SUBJECT, description="Short title.")
    description: str = Field(default="", max_length=MAX_DESCRIPTION,
                             description="What is to be done, complete enough for a worker.")
    blocked_by: list[str] = Field(default_factory=list, alias="blockedBy",
                                  description="Ids of tasks that must be completed first.")
    active_form: str | None = Field(default=None, alias="activeForm", max_length=MAX_SUBJECT,
                                    description='Shown while in progress ("Running tests").')


class TaskUpdateInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task_id: str = Field(alias="taskId", min_length=1, description="The task's id.")
    status: Literal["pending", "in_progress", "completed", "deleted"] | None = None
    owner: str | None = Field(default=None, max_length=100, description=(
        "Who works on it (an agent's name); \"\" releases it. Setting status in_progress "
        "claims it for you."))
    subject: str | None = Field(default=None, min_length=1, max_length=MAX_SUBJECT)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    active_form: str | None = Field(default=None, alias="activeForm", max_length=MAX_SUBJECT)
    add_blocked_by: list[str] = Field(default_factory=list, alias="addBlockedBy")
    remove_blocked_by: list[str] = Field(default_factory=list, alias="removeBlockedBy")


class TaskGetInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task_id: str = Field(alias="taskId", min_length=1)


class NoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _board(ctx: ToolContext) -> TaskBoard:
    if ctx.task_board is None:
        raise ToolError("The shared task list is not available in this session.")
    return ctx.task_board


class TaskCreate(Tool):
    name = "TaskCreate"
    description = (
        "Add a task to the shared task list. The list is seen by you and every subagent, so "
        "work can be split and claimed: give a subject, a description complete enough for a "
        "worker, and blockedBy (ids of tasks to finish first). Returns its id.")
    input_model = TaskCreateInput
    access = "session"

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return False  # ids in the order the model wrote the calls

    async def call(self, args: TaskCreateInput, ctx: ToolContext) -> str:
        task = _board(ctx).create(args.subject, args.description, args.blocked_by,
                                  args.active_form, ctx.agent_name or MAIN_AGENT)
        return f"Created task #{task.id}: {task.subject}"


class TaskUpdate(Tool):
    name = "TaskUpdate"
    description = (
        "Change a task of the shared list. Status (pending, in_progress, completed, or "
        "deleted to remove it), owner, subject, description, dependencies (addBlockedBy, "
        "removeBlockedBy). Setting in_progress claims the task for you; a task claimed by "
        "another agent, or blocked by unfinished tasks, cannot be started.")
    input_model = TaskUpdateInput
    access = "session"

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return False

    async def call(self, args: TaskUpdateInput, ctx: ToolContext) -> str:
        return _board(ctx).update(args, ctx.agent_name or MAIN_AGENT)


class TaskListTool(Tool):
    name = "TaskList"
    description = ("List the shared task list. Each task with its id, status, subject, owner "
                   "and unfinished blockers.")
    input_model = NoInput
    access = "session"

    async def call(self, args: NoInput, ctx: ToolContext) -> str:
        return _board(ctx).listing()


class TaskGet(Tool):
    name = "TaskGet"
    description = "Read one task of the shared list in full (its description and dependencies)."
    input_model = TaskGetInput
    access = "session"

    async def call(self, args: TaskGetInput, ctx: ToolContext) -> str:
        board = _board(ctx)
        task = board.get(args.task_id)
        blocks = [t.id for t in board.items.values() if task.id in t.blocked_by]
        return "\n".join([
            task.line(board),
            f"created by: {task.created_by or 'unknown'}",
            "blocked by: " + (", ".join(f"#{b}" for b in task.blocked_by) or "nothing"),
            "blocks: " + (", ".join(f"#{b}" for b in blocks) or "nothing"),
            "description:", task.description or "(none)"])


TASK_LIST_TOOLS: list[type[Tool]] = [TaskCreate, TaskUpdate, TaskListTool, TaskGet]
