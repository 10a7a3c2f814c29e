"""``lsp-agent acp``: one ACP connection over stdin/stdout until the client closes it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import cast

from acp import Agent, stdio_streams
from acp.agent.connection import AgentSideConnection

from lsp_agent.acp.agent import AcpAgent
from lsp_agent.acp.transport import MAX_MESSAGE_BYTES, LineTransport
from lsp_agent.model.client import ModelSettings
from lsp_agent.types.permissions import Mode


def state_dir() -> Path:
    raw = os.environ.get("LSP_AGENT_STATE_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "lsp-agent"


async def serve(agent: AcpAgent) -> None:
    reader, writer = await stdio_streams(limit=MAX_MESSAGE_BYTES)
    # The SDK's Agent protocol also lists the unstable methods we do not serve.
    conn = AgentSideConnection(cast(Agent, agent), LineTransport(reader, writer),
                               listening=False)
    try:
        await conn.listen()  # returns at the end of stdin
    finally:
        await agent.shutdown()  # running turns end, their processes die
        await conn.close()


def run(mode: Mode = "default", model: str | None = None) -> int:
    agent = AcpAgent(ModelSettings.from_env(model=model), state_dir(), default_mode=mode)
    asyncio.run(serve(agent))
    return 0
