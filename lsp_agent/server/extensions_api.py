"""LSP requests about a session's extensions: ``agent/mcpStatus``, ``agent/mcpRestart``,
``agent/mcpApprove``, ``agent/mcpResources``, ``agent/commands``. Thin handlers; the logic lives in
lsp_agent/extensions, lsp_agent/sessions/commands.py and sessions/mcp_resources.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams

if TYPE_CHECKING:
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

MCP_STATUS = "agent/mcpStatus"
MCP_RESTART = "agent/mcpRestart"
MCP_APPROVE = "agent/mcpApprove"
MCP_RESOURCES = "agent/mcpResources"
COMMANDS = "agent/commands"
METHODS = [MCP_STATUS, MCP_RESTART, MCP_APPROVE, MCP_RESOURCES, COMMANDS]


def register(server: AgentServer) -> None:
    @server.feature(MCP_STATUS)
    def mcp_status(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return {"servers": ls.session(args.session_id).extensions.mcp.status()}

    @server.feature(MCP_RESTART)
    async def mcp_restart(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.McpRestartParams, params)
        hub = ls.session(args.session_id).extensions.mcp
        try:
            return await hub.restart(args.server)
        except KeyError:
            raise JsonRpcInvalidParams(f"no MCP server named {args.server!r}") from None

    @server.feature(MCP_APPROVE)
    def mcp_approve(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.McpApproveParams, params)
        hub = ls.session(args.session_id).extensions.mcp
        try:
            if not args.approve:
                return hub.deny(args.server)
            return hub.approve(args.server, args.remember)
        except KeyError:
            raise JsonRpcInvalidParams(f"no MCP server named {args.server!r}") from None

    @server.feature(MCP_RESOURCES)
    async def mcp_resources(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.McpResourcesParams, params)
        from lsp_agent.sessions.mcp_resources import mentionable_resources

        servers = ls.session(args.session_id).extensions.mcp.servers
        return {"resources": await mentionable_resources(servers, args.query)}

    @server.feature(COMMANDS)
    def commands(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        from lsp_agent.sessions.commands import list_commands

        return {"commands": list_commands(ls.session(args.session_id))}


async def close_all(server: AgentServer) -> None:
    """Stop every session's MCP servers (at shutdown; they also die with the process)."""
    if server._manager is None:
        return
    for session in server.manager.all():
        await session.extensions.close()
