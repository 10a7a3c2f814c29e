"""Starting ``lsp-agent serve`` for a headless client, and ``run`` started in the fast order.

A cold ``run`` is two interpreters: this client and its server. Started one after the other,
the user waits for both; so ``run`` starts the server first thing, before the client's own
heavy imports (pygls, lsprotocol, the event types), and the two start up side by side on two
cores. The server loads the SDK at once too (``LSP_AGENT_PRELOAD_MODEL=early``), while it waits
for ``initialize``. This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

SERVE_ARGS = ("-m", "lsp_agent", "serve")


async def spawn_server(workspace: Path, env: dict[str, str] | None) -> asyncio.subprocess.Process:
    """``lsp-agent serve`` on pipes, in the (resolved) workspace. A session of its own:
    Ctrl-C in the terminal reaches the client, which cancels the turn and then ends the
    server; the server ends too when the client dies (its input ends)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, *SERVE_ARGS, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ if env is None else env), cwd=str(workspace),
        start_new_session=True)


def run_headless(args: argparse.Namespace, env: dict[str, str], simulated: bool = False) -> int:
    """``lsp-agent run``: the server started first, then the client's imports and the turn."""
    return int(asyncio.run(_run(args, env, simulated, Path(args.workspace).resolve())))


async def _run(args: argparse.Namespace, env: dict[str, str], simulated: bool,
               workspace: Path) -> int:
    from lsp_agent.client.preflight import check_model_endpoint

    env = {**env}
    env.setdefault("LSP_AGENT_PRELOAD_MODEL", "early")
    server = await spawn_server(workspace, env)
    try:
        check_model_endpoint(env)  # a missing key or an unreachable endpoint: said at once
        from lsp_agent.client.run import HeadlessRun  # the heavy imports, beside the server's

        return int(await HeadlessRun(args, env, simulated, server=server).main())
    finally:
        if server.returncode is None:  # a failure before the client took it over
            with contextlib.suppress(ProcessLookupError):
                server.kill()
            await server.wait()
