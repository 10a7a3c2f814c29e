"""Shared pieces of the extension tests: MCP server specs that run tests/extensions/
mcp_test_server.py, and a ToolContext for calling tools directly."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from lsp_agent.extensions.mcp_config import McpConfig, McpTrust, ServerSpec
from lsp_agent.tools.base import ToolContext

SERVER = str(Path(__file__).with_name("mcp_test_server.py"))


def stdio_spec(name: str = "srv", *args: str, scope: str = "user") -> ServerSpec:
    return ServerSpec(name, scope, "test", "stdio", command=sys.executable,
                      args=(SERVER, *args))


def config(*specs: ServerSpec, trust: McpTrust | None = None) -> McpConfig:
    return McpConfig(servers={s.name: s for s in specs}, trust=trust or McpTrust())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Nothing:
    async def propose(self, *_: Any) -> str:
        return ""

    async def diagnostics(self, *_: Any) -> list[Any]:
        return []


def tool_context(workspace: Path) -> ToolContext:
    return ToolContext(workspace=workspace, documents=None,  # type: ignore[arg-type]
                       proposals=_Nothing(), diagnostics=_Nothing(),
                       results_dir=workspace / ".results")
