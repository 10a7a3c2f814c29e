"""Bash: output, exit codes, timeouts and cancellation of whole process groups, caps, env."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from pathlib import Path

import pytest
from pydantic import ValidationError

from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy
from lsp_agent.tools.base import FileEdit, ToolContext, ToolError, ToolOutput
from lsp_agent.tools.shell import SHELL_TOOLS, Bash, BashInput, OutputCapture
from lsp_agent.workspace.documents import DiskDocuments


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        raise AssertionError("Bash never proposes changes")


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


class RecordingRegistry:
    def __init__(self) -> None:
        self.live: set[int] = set()
        self.added: list[int] = []

    def add(self, pgid: int) -> None:
        self.live.add(pgid)
        self.added.append(pgid)

    def discard(self, pgid: int) -> None:
        self.live.discard(pgid)


@pytest.fixture
def registry() -> RecordingRegistry:
    return RecordingRegistry()


@pytest.fixture
def ctx(tmp_path: Path, registry: RecordingRegistry) -> ToolContext:
    return ToolContext(
        workspace=tmp_path,
        documents=DiskDocuments(),
        proposals=NoProposals(),
        diagnostics=NoDiagnostics(),
        results_dir=tmp_path / ".results",
        processes=registry,
        sandbox=Sandbox(SandboxPolicy(enabled=False), tmp_path),  # these tests run bare
    )


async def test_bash_without_a_sandbox_policy_refuses_to_run(ctx: ToolContext):
    """Fail closed: a context that never said how commands run does not run them."""
    ctx.sandbox = None
    with pytest.raises(ToolError, match="no sandbox policy"):
        await Bash().call(BashInput(command="touch ran"), ctx)
    assert not (ctx.workspace / "ran").exists()


async def bash(ctx: ToolContext, command: str, **extra) -> ToolOutput:
    result = await Bash().call(BashInput(command=command, **extra), ctx)
    assert isinstance(result, ToolOutput)
    return result


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (containers may lack an init that reaps)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until_dead(pids: list[int], within: float = 5.0) -> list[int]:
    """The pids still running after ``within`` seconds (signals are delivered asynchronously)."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def pids_in(text: str) -> list[int]:
    """The numbers the command echoed, one per line."""
    return [int(line) for line in text.splitlines() if line.strip().isdigit()]


def test_bash_is_exported_and_never_read_only():
    assert SHELL_TOOLS == [Bash]
    assert Bash().is_concurrency_safe(BashInput(command="ls")) is False
    assert Bash().subject(BashInput(command="git status")).command == "git status"
    assert Bash().subject(BashInput(command="git status")).access == "shell"


def test_timeout_is_bounded_by_600_seconds():
    with pytest.raises(ValidationError):
        BashInput(command="true", timeout=601)


async def test_merges_stdout_and_stderr_in_the_workspace(ctx, tmp_path):
    result = await bash(ctx, "echo out; echo err >&2; pwd")
    assert result == ToolOutput(content=f"out\nerr\n{tmp_path}")


async def test_nonzero_exit_is_reported_but_not_an_error(ctx):
    result = await bash(ctx, "echo partial; exit 3")
    assert result == ToolOutput(content="partial\nexit code: 3", is_error=False)


async def test_empty_output_and_closed_stdin(ctx):
    result = await bash(ctx, "cat")  # would hang forever if stdin were inherited
    assert result.content == "(no output)"


async def test_killed_by_signal_is_named(ctx):
    result = await bash(ctx, "kill -TERM $$")
    assert result.content.endswith("killed by signal SIGTERM")


async def test_invalid_utf8_is_replaced(ctx):
    assert (await bash(ctx, r"printf '\xff ok'")).content == "\ufffd ok"


async def test_spawn_failure_is_a_tool_error(ctx, tmp_path):
    ctx.workspace = tmp_path / "gone"
    with pytest.raises(ToolError, match="Could not start"):
        await bash(ctx, "true")


async def test_secret_env_vars_are_hidden_others_kept(ctx, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "zq-secret-1")
    monkeypatch.setenv("GITHUB_TOKEN", "zq-secret-2")
    monkeypatch.setenv("DB_PASSWORD", "zq-secret-3")
    monkeypatch.setenv("aws_secret_access", "zq-secret-4")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    out = (await bash(ctx, "env")).content
    assert "zq-secret" not in out
    assert "PLAIN_SETTING=visible" in out and f"PATH={os.environ['PATH']}" in out


async def test_registers_and_releases_its_process_group(ctx, registry):
    result = await bash(ctx, "echo $$; ps -o pgid= -p $$")
    _, pgid = pids_in(result.content)
    # The shell runs in the group the tool registered (led by the guard that waits for it),
    # a group of its own: not the server's.
    assert registry.added == [pgid] and pgid != os.getpgid(0)
    assert registry.live == set()


async def test_timeout_kills_the_whole_group_including_grandchildren(ctx, registry):
    command = "(sleep 100 & echo $!; wait) & echo $!; sleep 100 & echo $!; echo $$; wait"
    result = await bash(ctx, command, timeout=1)
    assert result.is_error
    assert result.content.endswith(
        "Command timed out after 1 s; it and the processes it started were stopped."
    )
    pids = pids_in(result.content)
    assert len(pids) == 4  # grandchild sleep, subshell, child sleep, the shell
    assert wait_until_dead(pids) == []
    assert registry.live == set()


async def test_default_timeout_comes_from_the_context(ctx):
    ctx.shell_timeout = 0.5
    result = await bash(ctx, "echo started; sleep 100")
    assert result.is_error and "started" in result.content and "after 0.5 s" in result.content


async def test_cancellation_kills_the_group_and_propagates(ctx, registry, tmp_path):
    pid_file = tmp_path / "pids"
    partial = f"{pid_file}.partial"  # renamed when complete, so both pids are read together
    command = (
        f"sleep 100 & echo $! > {partial}; echo $$ >> {partial}; mv {partial} {pid_file}; wait"
    )
    task = asyncio.create_task(bash(ctx, command))
    for _ in range(200):  # bounded wait for the command to have started its children
        if pid_file.exists():
            break
        await asyncio.sleep(0.05)
    pids = pids_in(pid_file.read_text())
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until_dead(pids) == []
    assert registry.live == set()


async def test_background_process_holding_the_output_is_stopped(ctx):
    result = await bash(ctx, "sleep 100 & echo $!")
    assert "Background processes still writing to the output were stopped" in result.content
    assert wait_until_dead(pids_in(result.content)) == []


async def test_background_process_with_redirected_output_keeps_running(ctx):
    result = await bash(ctx, "sleep 100 > /dev/null 2>&1 & echo $!")
    (pid,) = pids_in(result.content)
    try:
        assert result.content == str(pid) and alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


async def test_huge_output_keeps_head_and_tail_in_bounded_memory(ctx):
    tracemalloc.start()
    try:
        result = await bash(ctx, "yes | head -c 50000000; echo; echo THE-END")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    total = 50_000_000 + len("\nTHE-END\n")
    assert result.content.startswith("y\ny\n")
    assert f"[... {total - 30_000:,} bytes omitted ...]" in result.content
    assert result.content.endswith("y\n\nTHE-END")
    assert len(result.content) < 31_000
    assert peak < 5_000_000  # buffering the whole output would need over 50 MB


def test_output_capture_keeps_exact_head_and_tail():
    capture = OutputCapture(head=5, tail=4)
    for chunk in (b"abc", b"defgh", b"ijklmnop"):
        capture.feed(chunk)
    assert capture.text() == "abcde\n[... 7 bytes omitted ...]\nmnop"
    small = OutputCapture(head=5, tail=4)
    small.feed(b"abcdefg")
    assert small.text() == "abcdefg"


async def test_the_exit_is_known_while_a_background_child_holds_the_output(tmp_path):
    """exit_watched: the shell's exit is seen when it happens, not when the pipe closes (on
    Python 3.11 Process.wait() waits for both), so no poll interval is added to a command."""
    from lsp_agent.tools.shell import exit_watched

    proc, exited = await exit_watched(
        "bash", "-c", "sleep 30 & echo started", cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 20) == b"started\n"
        await asyncio.wait_for(exited, 20)
        assert proc.returncode == 0
        assert not proc.stdout.at_eof()  # the background sleep still holds the pipe
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.communicate(), 20)
