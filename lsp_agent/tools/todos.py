"""TodoWrite: the agent's plan for multi-step work, kept per session.

Each call replaces the whole list. The session shows it to the user (a ``todos_updated``
event) and carries it verbatim through every compaction, so the plan outlives the history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from lsp_agent.tools.base import Tool, ToolContext, ToolError

MAX_TODOS = 50
MAX_TEXT = 300  # characters of an item's content or active_form

Status = Literal["pending", "in_progress", "completed"]
MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}


class TodoItem(BaseModel):
    content: str = Field(min_length=1, max_length=MAX_TEXT, description="The step, imperative.")
    status: Status
    active_form: str | None = Field(default=None, max_length=MAX_TEXT,
                                    description='Shown while in progress ("Running tests").')

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value


class TodoWriteInput(BaseModel):
    todos: list[TodoItem] = Field(max_length=MAX_TODOS, description="The whole new list.")

    @model_validator(mode="after")
    def _one_in_progress(self) -> TodoWriteInput:
        busy = [t.content for t in self.todos if t.status == "in_progress"]
        if len(busy) > 1:
            raise ValueError(f"at most one item may be in_progress, got {len(busy)}: "
                             + "; ".join(busy))
        return self


class TodoList:
    """One session's todo list; ``on_change`` is told of every replacement."""

    def __init__(self, on_change: Callable[[list[TodoItem]], None] | None = None):
        self.items: list[TodoItem] = []
        self._on_change = on_change

    def replace(self, items: list[TodoItem]) -> None:
        self.items = list(items)
        if self._on_change is not None:
            self._on_change(self.items)

    def restore(self, items: list[TodoItem]) -> None:
        """The list as it was saved (a resumed session): no change to report."""
        self.items = list(items)

    def counts(self) -> dict[str, int]:
        return {s: sum(t.status == s for t in self.items) for s in MARKS}

    def checklist(self) -> str:
        return "\n".join(f"{MARKS[t.status]} {t.content}" for t in self.items)

    def preserved(self) -> str | None:
        """The list as it must survive a compaction (None when empty)."""
        if not self.items:
            return None
        return ("Your todo list (kept verbatim; [x] completed, [>] in progress, [ ] pending; "
                "keep it current with TodoWrite):\n" + self.checklist())


class TodoWrite(Tool):
    name = "TodoWrite"
    description = (
        "Save your todo list for multi-step work (replaces the whole list; the user sees it). "
        "Keep exactly one item in_progress while working and mark items completed as soon "
        "as they are done.")
    input_model = TodoWriteInput
    access = "session"  # touches no file: it may run alongside other read-only calls
    max_result_chars = 2_000

    async def call(self, args: TodoWriteInput, ctx: ToolContext) -> str:
        todos = ctx.todos
        if todos is None:
            raise ToolError("This session keeps no todo list.")
        todos.replace(args.todos)
        if not todos.items:
            return "Todo list cleared."
        counts = todos.counts()
        return (f"Todo list saved ({counts['completed']} completed, {counts['in_progress']} "
                f"in progress, {counts['pending']} pending).")


TODO_TOOLS: list[type[Tool]] = [TodoWrite]
