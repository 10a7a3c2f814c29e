"""The sandbox hides the host, the API key reaches no command, and nothing outlives the server:
a real ``lsp-agent serve`` over stdio, the real SDK against the scripted model, real bubblewrap,
and a look at the host's process table after a SIGKILL of the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest

from lsp_agent.permissions.sandbox import availability
from lsp_agent.types import events as ev
from tests.e2e_harness import (
    Editor,
    processes_with,
    start_editor,
    unique_duration,
    wait_for_processes,
)

needs_bwrap = pytest.mark.skipif(not availability().works,
                                 reason=f"bubblewrap cannot run here: {availability().detail}")
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
SANDBOX_MODES = [pytest.param(False, id="unsandboxed"),
                 pytest.param(True, id="sandboxed", marks=needs_bwrap)]
DOUBLE_FORK = ("python3 -c 'import os; os.fork() == 0 and (os.setsid(), os.fork() == 0 and "
               "os.execvp(\"sleep\", [\"sleep\", \"{}\"]))'")


def cmdlines(pids: list[int]) -> list[bytes]:
    return [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]


@pytest.fixture
def key() -> str:
    return f"sk-ant-e2e-{uuid.uuid4().hex}"


async def start(model, tmp_path: Path, key: str, sandboxed: bool) -> tuple[Editor, Path, int]:
    """An editor and its server, isolated from this machine's settings; (editor, workspace,
    server pid)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json"),
           "ANTHROPIC_API_KEY": key, "LSP_AGENT_LOG": "debug"}
    # "enabled": true refuses to run commands without the sandbox: no silent fallback here.
    editor = await start_editor(model.base_url, tmp_path, server_env=env,
                                sandbox={"enabled": sandboxed})
    return editor, workspace, editor.client._server.pid


def bash_turns(*commands: str) -> dict:
    return {"turns": [*({"content": [{"type": "tool_use", "name": "Bash",
                                      "input": {"command": c}}]} for c in commands),
                      {"content": "done"}]}


@pytest.mark.parametrize("sandboxed", SANDBOX_MODES)
async def test_an_approved_command_cannot_get_the_servers_key(model, tmp_path, key, sandboxed,
                                                              capfd):
    editor, workspace, server = await start(model, tmp_path, key, sandboxed)
    try:
        model.load(bash_turns(
            "env; echo END-ENV; echo PIDS $(ls /proc | grep -E '^[0-9]+$'); "
            f"tr '\\0' '\\n' < /proc/{server}/environ; "
            f"kill -0 {server} && echo SIGNALLED-THE-SERVER; true"))
        session = await editor.new_session(workspace)  # the user approves what asks
        await editor.request("agent/prompt", {"sessionId": session, "text": "go"})
        (result,) = editor.of(session, ev.ToolResult)
        env_part = result.content.split("END-ENV")[0]
        assert "PATH=" in env_part and "ANTHROPIC_API_KEY" not in env_part
        # The prompt said what the file holds; approved, the read still finds no key.
        (asked,) = editor.permission_requests
        assert "the language server's environment, which holds its API key" in asked["reason"]
        assert key not in result.content
        assert key not in json.dumps(model.requests), "nor in any request to the model"
        pids = [int(p) for p in result.content.split("PIDS")[1].split("\n")[0].split()]
        if sandboxed:
            assert server not in pids and max(pids) < 50, "no host process is visible"
            assert "SIGNALLED-THE-SERVER" not in result.content
    finally:
        await editor.client.shutdown_session()
    logs = capfd.readouterr().err
    assert "sealed ANTHROPIC_API_KEY" in logs and key not in logs, "nor in the server's log"


@pytest.mark.parametrize("sandboxed", SANDBOX_MODES)
async def test_sigkill_of_the_server_leaves_no_process(model, tmp_path, key, sandboxed):
    editor, workspace, server = await start(model, tmp_path, key, sandboxed)
    marker = unique_duration(1000)
    left, child, daemon, double = (f"{marker}{n}" for n in range(1, 5))
    model.load(bash_turns(
        # ends at once, leaving a job running (in the sandbox, it ends with the command)
        f"nohup sleep {left} > /dev/null 2>&1 & echo left",
        # still running when the server is killed: a child, a setsid daemon, a double fork
        f"sleep {child} & (setsid sleep {daemon} > /dev/null 2>&1 &); "
        f"{DOUBLE_FORK.format(double)}; wait"))
    session = await editor.new_session(workspace, mode="bypassPermissions")
    prompt = asyncio.ensure_future(editor.request("agent/prompt",
                                                  {"sessionId": session, "text": "go"}))
    expected = [child, daemon, double] + ([] if sandboxed else [left])
    try:
        for duration in expected:
            assert await wait_for_processes(f"sleep {duration}", present=True), duration
        os.kill(server, signal.SIGKILL)
        survivors = await wait_for_processes(marker, present=False)
        assert survivors == [], cmdlines(survivors)
    finally:
        for pid in processes_with(marker):  # never leave them behind, even on failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await prompt
        await editor.client.stop()
