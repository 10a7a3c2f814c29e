"""Starting ``lsp-agent serve`` for a headless client, and ``run`` started in the fast order.

A cold ``run`` is two interpreters: this client and its server. Started one after the other,
the user waits for both; so ``run`` starts the server first thing, before the client's own
heavy imports (pygls, lsprotocol, the event types), and the two start up side by side on two
cores. The server loads the SDK at once too (``LSP_AGENT_PRELOAD_MODEL=early``), while it waits
for ``initialize``. This module imports nothing heavy for that reason.

Better still, a server started by an earlier run of the same workspace and configuration is
reused (client/warm.py): then only this client starts up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

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
    """``lsp-agent run``: handed over whole to a warm server found alive (client/warm.py);
    else the server started first (a warm one, or one for this run only), then the client's
    imports and the turn."""
    workspace = Path(args.workspace).resolve()
    env = {**env}
    env.setdefault("LSP_AGENT_PRELOAD_MODEL", "early")
    pending = _open_warm(args, env, simulated, workspace)
    if pending is not None and pending.started is None:
        from lsp_agent.client.warm import WarmUnavailable, run_arguments

        try:
            pending.hello("run", workspace, env, run_arguments(args))
            return pending.delegate()
        except WarmUnavailable as exc:
            _say_fresh(exc)
            pending = None
    return int(asyncio.run(_run(args, env, simulated, workspace, pending)))


async def _run(args: argparse.Namespace, env: dict[str, str], simulated: bool,
               workspace: Path, pending: Any) -> int:
    from lsp_agent.client.preflight import check_model_endpoint

    server: Any = None if pending else await spawn_server(workspace, env)
    try:
        if pending is not None:
            server = await _serve_or_fresh(pending, workspace, env)
        check_model_endpoint(env)  # a missing key or an unreachable endpoint: said at once
        from lsp_agent.client.run import HeadlessRun  # the heavy imports, beside the server's

        if isinstance(server, asyncio.Future):
            server = await server
        pending = None
        return int(await HeadlessRun(args, env, simulated, server=server).main())
    finally:
        if isinstance(server, asyncio.Future):  # failed before its answer was awaited
            server = _settled(server)
        if pending is not None:  # failed before the turn: a server started for it goes too
            pending.abandon()
        if server is not None and server.returncode is None:  # before the client took it
            with contextlib.suppress(ProcessLookupError):
                server.kill()
            await server.wait()


def _settled(answer: asyncio.Future[Any]) -> Any:
    """The server an unawaited answer brought, if it has come; else it is called off."""
    if not answer.done():
        answer.cancel()
        return None
    return None if answer.cancelled() or answer.exception() else answer.result()


def _open_warm(args: argparse.Namespace, env: dict[str, str], simulated: bool,
               workspace: Path) -> Any:
    """A warm server found alive or started (client/warm.py), or None: this run starts its
    own. Not for --no-reuse, LSP_AGENT_RUN_KEEPALIVE=0 or a scripted model (its endpoint
    lives for this run only)."""
    if simulated or getattr(args, "no_reuse", False):
        return None
    from lsp_agent.client.warm import keepalive_seconds, open_warm

    keepalive = keepalive_seconds(env)
    return open_warm(workspace, env, keepalive) if keepalive > 0 else None


async def _serve_or_fresh(pending: Any, workspace: Path, env: dict[str, str]) -> Any:
    """The warm server this run started, as its server (its answer awaited later, while this
    process imports its client), or a fresh server when it cannot be reached."""
    from lsp_agent.client.warm import WarmUnavailable

    try:
        pending.hello("serve", workspace, env)
    except WarmUnavailable as exc:
        pending.abandon()
        _say_fresh(exc)
        return await spawn_server(workspace, env)
    answer = asyncio.ensure_future(pending.serve())

    async def server_or_fresh() -> Any:
        try:
            return await answer
        except WarmUnavailable as exc:
            pending.abandon()
            _say_fresh(exc)
            return await spawn_server(workspace, env)

    return asyncio.ensure_future(server_or_fresh())


def _say_fresh(exc: Exception) -> None:
    print(f"lsp-agent: {exc}; starting a fresh server for this run", file=sys.stderr,
          flush=True)
