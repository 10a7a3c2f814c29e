"""Background shells: ``Bash`` with ``run_in_background`` returns a task id at once; the agent
reads the output with ``TaskOutput`` and stops the command with ``TaskStop``.

A background command starts like any Bash command (sandboxed or under the guard, in its own
process group, registered with the session's process groups), so it dies when the turn is
cancelled, when the session closes and when the server exits, however it exits. Tasks are
bounded: so many running per session, the newest ``max_bytes`` of output kept (a command that
writes gigabytes costs that much memory, no more), and a lifetime after which the command is
stopped. When a task ends, the agent is told at its next step (``notices``) and the client
gets a ``background_task_ended`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.tools.base import ProcessRegistry, Tool, ToolContext, ToolError, ToolOutput
from lsp_agent.tools.shell import terminate_group

MAX_RUNNING = 8
MAX_KEPT_BYTES = 1_000_000  # per task: the newest bytes of its output
MAX_READ_BYTES = 30_000  # returned by one TaskOutput call; the rest waits for the next
MAX_LIFETIME = 3600.0  # seconds before a background command is stopped
MAX_ENDED_KEPT = 32  # ended tasks remembered (their output readable) per session
MAX_WAIT = 600.0
POLL_INTERVAL = 0.1
READ_CHUNK = 65_536

EndStatus = Literal["completed", "failed", "stopped", "expired"]
Status = Literal["running", EndStatus]


@dataclass
class BackgroundTask:
    id: str
    command: str  # for an agent: "agent <name>: <description>"
    description: str | None
    pgid: int | None  # None: an agent (a task of this process), not a command
    started: float = field(default_factory=time.time)
    status: Status = "running"
    exit_code: int | None = None
    ended_at: float | None = None
    kept: bytearray = field(default_factory=bytearray)  # the newest output
    total: int = 0  # bytes the command wrote
    read_upto: int = 0  # what TaskOutput returned so far (an offset into ``total``)
    told: bool = False  # the agent knows it ended
    done: asyncio.Event = field(default_factory=asyncio.Event)
    work: asyncio.Task[Any] | None = None  # an agent's run

    @property
    def end_status(self) -> EndStatus:
        assert self.status != "running", "the task is still running"
        return self.status

    def summary(self) -> dict[str, Any]:
        return {"taskId": self.id, "kind": "shell" if self.pgid is not None else "agent",
                "command": self.command, "description": self.description,
                "status": self.status, "exitCode": self.exit_code, "startedAt": self.started,
                "endedAt": self.ended_at, "outputBytes": self.total}


class BackgroundTasks:
    """One session's background commands."""

    def __init__(self, on_end: Callable[[BackgroundTask], None] | None = None, *,
                 max_running: int = MAX_RUNNING, max_bytes: int = MAX_KEPT_BYTES,
                 lifetime: float = MAX_LIFETIME):
        self.on_end = on_end
        self.max_running, self.max_bytes, self.lifetime = max_running, max_bytes, lifetime
        self._tasks: dict[str, BackgroundTask] = {}
        self._supervisors: set[asyncio.Task[None]] = set()

    def running(self) -> list[BackgroundTask]:
        return [t for t in self._tasks.values() if t.status == "running"]

    def check_room(self) -> None:
        if len(self.running()) >= self.max_running:
            raise ToolError(
                f"Not started: {self.max_running} background commands are running already "
                "(the limit). Stop one with TaskStop or wait for one to finish.")

    def adopt(self, proc: asyncio.subprocess.Process, command: str, description: str | None,
              processes: ProcessRegistry | None) -> BackgroundTask:
        """Supervise a started command in the background; returns its task."""
        task = BackgroundTask("bg-" + uuid.uuid4().hex[:8], command, description, proc.pid)
        self._tasks[task.id] = task
        supervisor = asyncio.create_task(self._supervise(task, proc, processes),
                                         name=f"background:{task.id}")
        self._supervisors.add(supervisor)
        supervisor.add_done_callback(self._supervisors.discard)
        self._forget_old()
        return task

    def adopt_agent(self, run: Coroutine[Any, Any, ToolOutput], label: str,
                    description: str) -> BackgroundTask:
        """Run a subagent in the background: its final report becomes the task's output."""
        task = BackgroundTask("bg-" + uuid.uuid4().hex[:8], f"agent {label}: {description}",
                              description, None)
        self._tasks[task.id] = task
        task.work = asyncio.create_task(self._supervise_agent(task, run),
                                        name=f"background:{task.id}")
        self._supervisors.add(task.work)
        task.work.add_done_callback(self._supervisors.discard)
        self._forget_old()
        return task

    async def _supervise_agent(self, task: BackgroundTask,
                               run: Coroutine[Any, Any, ToolOutput]) -> None:
        code: int | None = None
        try:
            output = await run
            self._append(task, output.content.encode("utf-8", "replace"))
            code = 1 if output.is_error else 0
        except asyncio.CancelledError:
            task.status = "stopped"
        except Exception as exc:  # a bug in the child must still end the task visibly
            self._append(task, f"The agent failed: {type(exc).__name__}: {exc}".encode())
            code = 1
        finally:
            self._ended(task, code)

    def get(self, task_id: str) -> BackgroundTask:
        task = self._tasks.get(task_id)
        if task is None:
            known = ", ".join(self._tasks) or "none"
            raise ToolError(f"No background task {task_id!r}. Known tasks: {known}")
        return task

    def summaries(self) -> list[dict[str, Any]]:
        return [t.summary() for t in self._tasks.values()]

    async def read(self, task_id: str, block: bool, wait: float) -> str:
        """New output since the last read, with the task's status (after waiting up to
        ``wait`` seconds for the task to end, when ``block``)."""
        task = self.get(task_id)
        if block and task.status == "running":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task.done.wait(), wait)
        return self._take_output(task)

    async def stop(self, task_id: str) -> str:
        task = self.get(task_id)
        if task.status != "running":
            return f"Task {task.id} is not running ({task.status})."
        task.status = "stopped"
        if task.work is not None:
            task.work.cancel()
        if task.pgid is not None:
            await terminate_group(task.pgid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task.done.wait(), 5)
        return f"Stopped task {task.id} ({task.command!r}) and the processes it started."

    def tail(self, task_id: str, max_bytes: int = MAX_READ_BYTES) -> dict[str, Any]:
        """The newest output of a task for a person to look at (the editor's Tasks view).
        Unlike ``read`` it leaves the agent's read position alone: what the agent has not read
        yet stays unread for TaskOutput."""
        task = self.get(task_id)
        shown = bytes(task.kept[-max_bytes:]) if max_bytes > 0 else b""
        return {**task.summary(), "output": shown.decode("utf-8", "replace"),
                "omittedBytes": task.total - len(shown)}

    def notices(self) -> list[str]:
        """What the agent has not been told yet: tasks that ended since its last step."""
        lines = []
        for task in self._tasks.values():
            if task.status != "running" and not task.told:
                task.told = True
                code = "" if task.exit_code is None else f", exit code {task.exit_code}"
                lines.append(f"<task-notification>Background task {task.id} ({task.command!r}) "
                             f"ended: {task.status}{code}. Read its output with TaskOutput."
                             "</task-notification>")
        return lines

    def kill_all(self) -> None:
        """SIGKILL every running command's process group now (the session is closing)."""
        for task in self.running():
            task.status = "stopped"
            if task.work is not None:
                task.work.cancel()
            if task.pgid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(task.pgid, signal.SIGKILL)

    # -- supervising -------------------------------------------------------------------------

    async def _supervise(self, task: BackgroundTask, proc: asyncio.subprocess.Process,
                         processes: ProcessRegistry | None) -> None:
        assert proc.stdout is not None and task.pgid is not None
        if processes is not None:
            processes.add(task.pgid)
        pump = asyncio.create_task(self._pump(task, proc.stdout))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.lifetime
            # proc.wait() would also wait for pipes held by what the command left behind.
            while proc.returncode is None and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(POLL_INTERVAL)
            if proc.returncode is None:
                task.status = "expired"
            await terminate_group(task.pgid)  # what the command left running goes too
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), 1.0)
                await asyncio.wait_for(proc.wait(), 1.0)
        finally:
            pump.cancel()
            if processes is not None:
                processes.discard(task.pgid)
            self._ended(task, proc.returncode)

    async def _pump(self, task: BackgroundTask, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(READ_CHUNK):
            self._append(task, chunk)

    def _append(self, task: BackgroundTask, chunk: bytes) -> None:
        task.total += len(chunk)
        task.kept += chunk
        if len(task.kept) > self.max_bytes:
            del task.kept[: len(task.kept) - self.max_bytes]

    def _ended(self, task: BackgroundTask, returncode: int | None) -> None:
        task.exit_code = returncode
        if task.status == "running":
            task.status = "completed" if returncode == 0 else "failed"
        task.ended_at = time.time()
        task.done.set()
        if self.on_end is not None:
            self.on_end(task)

    def _take_output(self, task: BackgroundTask) -> str:
        first_kept = task.total - len(task.kept)
        dropped = max(0, first_kept - task.read_upto)
        start = max(task.read_upto, first_kept)
        chunk = bytes(task.kept[start - first_kept:][:MAX_READ_BYTES])
        task.read_upto = start + len(chunk)
        waiting = task.total - task.read_upto
        head = f"Task {task.id}: {task.status}"
        if task.exit_code is not None:
            head += f", exit code {task.exit_code}"
            task.told = True
        notes = []
        if dropped:
            notes.append(f"[{dropped:,} older bytes were not kept]")
        text = chunk.decode("utf-8", "replace")
        if waiting:
            notes.append(f"[{waiting:,} more bytes: call TaskOutput again]")
        body = text if text else "(no new output)"
        return "\n".join([head, *notes[:1], body, *notes[1:]])

    def _forget_old(self) -> None:
        ended = [t for t in self._tasks.values() if t.status != "running"]
        for task in ended[: max(0, len(ended) - MAX_ENDED_KEPT)]:
            del self._tasks[task.id]


class TaskOutputInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, description="The id Bash returned.")
    block: bool = Field(default=True, description="Wait for the task to end first.")
    timeout: float = Field(default=30.0, gt=0, le=MAX_WAIT,
                           description="Seconds to wait when blocking.")


class TaskOutput(Tool):
    name = "TaskOutput"
    description = (
        "Read the new output of a background command (started with Bash "
        "run_in_background: true) and its status. With block (the default) it waits up to "
        "timeout seconds for the command to end first.")
    input_model = TaskOutputInput
    access = "session"  # output of a command the user already allowed
    time_limit = None  # bounded by its own timeout

    async def call(self, args: TaskOutputInput, ctx: ToolContext) -> str:
        return await _tasks(ctx).read(args.task_id, args.block, args.timeout)


class TaskStopInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, description="The id Bash returned.")


class TaskStop(Tool):
    name = "TaskStop"
    description = "Stop a background command and every process it started."
    input_model = TaskStopInput
    access = "session"

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return False

    async def call(self, args: TaskStopInput, ctx: ToolContext) -> str:
        return await _tasks(ctx).stop(args.task_id)


def _tasks(ctx: ToolContext) -> BackgroundTasks:
    if ctx.tasks is None:
        raise ToolError("Background commands are not available in this session.")
    return ctx.tasks


BACKGROUND_TOOLS: list[type[Tool]] = [TaskOutput, TaskStop]
