"""An MCP server dies with the agent's process, even when that process is killed with SIGKILL
(the tether: procs/tether.py), and is stopped when the session's hub closes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from lsp_agent.extensions.mcp_config import ServerSpec
from lsp_agent.extensions.mcp_hub import McpHub
from tests.e2e_harness import unique_duration, wait_for_processes
from tests.extensions.helpers import SERVER, config

ROOT = Path(__file__).resolve().parents[2]


def marked_spec(marker: str) -> ServerSpec:
    return ServerSpec("srv", "user", "t", "stdio", command=sys.executable,
                      args=(SERVER, "--name", marker))


async def test_hub_close_stops_the_server_process(tmp_path: Path) -> None:
    marker = f"mcp-close-{uuid.uuid4().hex}"
    hub = McpHub(tmp_path, config(marked_spec(marker)), tmp_path / "logs")
    hub.start()
    await hub.wait_started(60)
    assert hub.status()[0]["state"] == "connected"
    assert await wait_for_processes(marker, present=True)
    await hub.close()
    assert await wait_for_processes(marker, present=False) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tether is Linux only")
async def test_server_dies_when_the_agent_is_killed(tmp_path: Path) -> None:
    # The server leaves a background process (a sleep with a unique duration) that no
    # end of file on stdin would stop: only the tether's guard kills it.
    marker = unique_duration(3600)
    command = f"sleep {marker} & exec {sys.executable} {SERVER}"
    program = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from lsp_agent.extensions.mcp_config import ServerSpec
        from lsp_agent.extensions.mcp_hub import McpHub
        from tests.extensions.helpers import config

        async def main():
            spec = ServerSpec("srv", "user", "t", "stdio", command="sh",
                              args=("-c", {command!r}))
            hub = McpHub(Path({str(tmp_path)!r}), config(spec), Path({str(tmp_path)!r}))
            hub.start()
            await hub.wait_started(60)
            print(hub.status()[0]["state"], flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
    """)
    agent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,  # noqa: ASYNC220
                             text=True, env=os.environ.copy())
    try:
        line = await asyncio.wait_for(asyncio.to_thread(agent.stdout.readline), 90)  # type: ignore[union-attr]
        assert line.strip() == "connected"
        assert await wait_for_processes(marker, present=True)
        agent.send_signal(signal.SIGKILL)
        await asyncio.to_thread(agent.wait)
        assert await wait_for_processes(marker, present=False) == []
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
