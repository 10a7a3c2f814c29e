"""Bash: run one shell command in the workspace, bounded in time and in memory.

Each command runs in its own process group so that a timeout or a cancelled turn can stop
everything it started (background jobs and grandchildren included), not just the shell; and
inside bubblewrap's PID namespace or under the guard (lsp_agent/procs/lifetime.py), so that
nothing it started outlives the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.permissions.sandbox import SandboxUnavailable
from lsp_agent.permissions.shell_writes import written_paths
from lsp_agent.procs.environment import EnvPolicy, command_env
from lsp_agent.procs.lifetime import guarded
from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolOutput

MAX_TIMEOUT = 600.0
HEAD_BYTES = 20_000
TAIL_BYTES = 10_000
KILL_GRACE = 2.0  # between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0  # after the shell exits, for output still in the pipe
POLL_INTERVAL = 0.05
READ_CHUNK = 65_536
STREAM_LIMIT = 2**16  # asyncio's default buffer limit for subprocess streams


class BashInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(min_length=1, description="The command line to run with bash -c.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"Seconds before the command is stopped (max {MAX_TIMEOUT:g}; "
        "default set by the session).",
    )
    description: str | None = Field(
        default=None, description="A few words saying what the command does, shown to the user."
    )
    run_in_background: bool = Field(default=False, description=(
        "Start the command and return a task id at once, without waiting for it; read its "
        "output with TaskOutput and stop it with TaskStop. For servers and long builds."))


class Bash(Tool):
    name = "Bash"
    description = (
        "Run a shell command (bash -c) in the workspace root and return its combined "
        "stdout/stderr, followed by the exit code when it is not 0. Each call is a fresh "
        "shell: cd and variables do not carry over; chain with && instead. Non-interactive: "
        "stdin is closed, so commands that prompt fail; pass flags such as --yes. Long output "
        "is cut to its beginning and end. Use it for builds, tests, git and other programs; "
        "use Read, Grep, Glob and Edit for reading, searching and changing files."
    )
    input_model = BashInput
    # Any command may write: calls run one at a time, and the gate judges each command line.
    access = "shell"
    max_result_chars = 40_000
    time_limit = None  # bounded by its own timeout, which kills the process group

    async def call(self, args: BashInput, ctx: ToolContext) -> ToolOutput:
        if args.run_in_background:
            return await self._start_in_background(args, ctx)
        history = ctx.file_history
        if history is None:
            return await self._run(args, ctx)
        # The checkpoint keeps what the files the command names as written were, and what
        # the command made of them (a rewind puts them back; see docs/sessions.md).
        written = await asyncio.to_thread(written_paths, args.command, ctx.workspace)
        if written:
            await history.before_write(written)
        output = await self._run(args, ctx)
        if written:
            await history.after_write(written)
        return output

    async def _start_in_background(self, args: BashInput, ctx: ToolContext) -> ToolOutput:
        """tools/background.py supervises it from here on."""
        if ctx.tasks is None:
            raise ToolError("Background commands are not available in this session.")
        ctx.tasks.check_room()
        task = ctx.tasks.adopt(await _spawn(args.command, ctx), args.command, args.description,
                               ctx.processes)
        return ToolOutput(content=f"Started in the background as task {task.id}. Read its "
                          "output with TaskOutput and stop it with TaskStop; you will be told "
                          "when it ends.")

    async def _run(self, args: BashInput, ctx: ToolContext) -> ToolOutput:
        timeout = min(args.timeout or ctx.shell_timeout, MAX_TIMEOUT)
        proc, exited = await _spawn_watched(args.command, ctx)
        pgid = proc.pid
        if ctx.processes is not None:
            ctx.processes.add(pgid)
        try:
            return await _supervise(proc, pgid, timeout, exited)
        finally:
            if ctx.processes is not None:
                ctx.processes.discard(pgid)


async def _spawn(command: str, ctx: ToolContext) -> asyncio.subprocess.Process:
    return (await _spawn_watched(command, ctx))[0]


async def _spawn_watched(command: str, ctx: ToolContext
                         ) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """``bash -c command`` in its own process group, sandboxed or guarded; and a future done
    when the process exits (see ``exit_watched``)."""
    argv, life_fds = guarded(sandboxed(["bash", "-c", command], ctx))
    spawn = asyncio.ensure_future(exit_watched(
        *argv,
        cwd=ctx.workspace,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # own process group: pgid == pid
        env=command_env(env_policy(ctx)),
        pass_fds=life_fds,
    ))
    try:
        return await asyncio.shield(spawn)
    except OSError as exc:
        raise ToolError(f"Could not start the command: {exc}") from None
    except asyncio.CancelledError:
        # Cancelled while the process was being created: it must not be left running.
        with contextlib.suppress(Exception):
            _signal_group((await spawn)[0].pid, signal.SIGKILL)
        raise


class _ExitWatching(asyncio.subprocess.SubprocessStreamProtocol):
    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def exit_watched(*argv: str, **options: Any
                       ) -> tuple[asyncio.subprocess.Process, asyncio.Future[None]]:
    """``asyncio.create_subprocess_exec`` (the same Process), and a future done as soon as the
    process exits. ``Process.wait()`` cannot tell that: on Python 3.11 it also waits for the
    pipes to close, which background children can hold open; polling ``returncode`` instead
    added up to a poll interval to every command."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitWatching(STREAM_LIMIT, loop), *argv, **options)
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.exited


def sandboxed(argv: list[str], ctx: ToolContext) -> list[str]:
    """``argv`` wrapped by the session's sandbox (bubblewrap), as its policy says."""
    if ctx.sandbox is None:  # fail closed: nobody decided how commands run
        raise ToolError("Shell commands are not available: this session has no sandbox "
                        "policy.")
    try:
        return ctx.sandbox.wrap(argv)
    except SandboxUnavailable as exc:
        raise ToolError(str(exc)) from None


def env_policy(ctx: ToolContext) -> EnvPolicy | None:
    """The session's hideEnv/passEnv settings (they travel with its sandbox settings)."""
    return getattr(getattr(ctx.sandbox, "policy", None), "env", None)


class OutputCapture:
    """Keeps the first ``head`` and last ``tail`` bytes of a stream of any length."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES):
        self.head_limit, self.tail_limit = head, tail
        self.head, self.tail = bytearray(), bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def text(self) -> str:
        omitted = self.total - len(self.head) - len(self.tail)
        if omitted == 0:
            return (self.head + self.tail).decode("utf-8", "replace")
        return (
            self.head.decode("utf-8", "replace")
            + f"\n[... {omitted:,} bytes omitted ...]\n"
            + self.tail.decode("utf-8", "replace")
        )


async def _supervise(proc: asyncio.subprocess.Process, pgid: int, seconds: float,
                     exited: asyncio.Future[None]) -> ToolOutput:
    capture = OutputCapture()
    assert proc.stdout is not None
    reader = asyncio.create_task(_pump(proc.stdout, capture))
    try:
        if not await _exited_within(exited, seconds):
            await terminate_group(pgid)
            await _settle(reader, proc)
            return ToolOutput(
                content=f"{_body(capture)}\nCommand timed out after {seconds:g} s; "
                "it and the processes it started were stopped.",
                is_error=True,
            )
        note = ""
        if not await _finished(reader, DRAIN_GRACE):
            # Background processes still hold the output pipe: the result would never end.
            await terminate_group(pgid)
            note = (
                "\n(Background processes still writing to the output were stopped; redirect "
                "their output, e.g. '> log 2>&1 &', to keep them running.)"
            )
        await _settle(reader, proc)
        return ToolOutput(content=_body(capture) + note + _exit_note(proc.returncode))
    except asyncio.CancelledError:
        await terminate_group(pgid)
        await _settle(reader, proc)
        raise
    finally:
        reader.cancel()


async def _pump(stream: asyncio.StreamReader, capture: OutputCapture) -> None:
    while chunk := await stream.read(READ_CHUNK):
        capture.feed(chunk)


async def _exited_within(exited: asyncio.Future[None], seconds: float) -> bool:
    """Whether the shell exits in time (``exited``: see ``exit_watched``)."""
    try:
        await asyncio.wait_for(asyncio.shield(exited), seconds)
    except TimeoutError:
        return False
    return True


async def _finished(task: asyncio.Task[None], grace: float) -> bool:
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        return False
    return True


async def _settle(reader: asyncio.Task[None], proc: asyncio.subprocess.Process) -> None:
    """Collect the last output and reap the shell, without waiting on a pipe held elsewhere
    (e.g. by a process that moved to its own session)."""
    if await _finished(reader, DRAIN_GRACE):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), DRAIN_GRACE)


async def terminate_group(pgid: int) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after a grace period.

    The SIGKILL is sent even if this coroutine is itself cancelled while waiting.
    """
    try:
        _signal_group(pgid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KILL_GRACE
        # No event tells when the last member of a group is gone: poll.
        while _group_exists(pgid) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _body(capture: OutputCapture) -> str:
    text = capture.text().rstrip("\n")
    return text if text else "(no output)"


def _exit_note(returncode: int | None) -> str:
    if returncode is None or returncode == 0:
        return ""
    if returncode < 0:
        return f"\nkilled by signal {_signal_name(-returncode)}"
    return f"\nexit code: {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


SHELL_TOOLS: list[type[Tool]] = [Bash]
