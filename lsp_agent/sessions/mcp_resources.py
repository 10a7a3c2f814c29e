"""The MCP resources a prompt can mention (``@server:uri``), for the client's completion.

Only descriptions are listed (name, URI, description, MIME type), never a resource's body;
only connected servers are asked, each within a bound, and only resources whose mention the
prompt hook (sessions/commands.py) would recognise are offered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsp_agent.extensions.mcp_client import McpServer
from lsp_agent.sessions.commands import _RESOURCE

log = logging.getLogger(__name__)

MAX_RESOURCES = 50  # in one answer, all servers together
LIST_TIMEOUT = 10.0  # seconds one server may take to list (the client gives up sooner)
_TEXT_LIMIT = 200  # characters of a name or description


async def mentionable_resources(servers: dict[str, McpServer], query: str = "",
                                limit: int = MAX_RESOURCES) -> list[dict[str, Any]]:
    """The connected servers' resources whose server, URI, name or description contains
    ``query`` (case-insensitive), at most ``limit``, in server order."""
    names = [name for name, server in servers.items() if server.state == "connected"]
    listed = await asyncio.gather(*(_listed(servers[n], limit) for n in names))
    needle = query.casefold()
    found: list[dict[str, Any]] = []
    for name, resources in zip(names, listed, strict=True):
        for resource in resources:
            entry = _entry(name, resource)
            if entry is None or needle not in _haystack(entry):
                continue
            found.append(entry)
            if len(found) >= limit:
                return found
    return found


async def _listed(server: McpServer, limit: int) -> list[Any]:
    try:
        return await asyncio.wait_for(server.list_resources(limit), LIST_TIMEOUT)
    except Exception:  # a server that fails to list offers nothing; the others still do
        log.debug("MCP server %s: listing resources failed", server.spec.name, exc_info=True)
        return []


def _entry(server: str, resource: Any) -> dict[str, Any] | None:
    uri = str(getattr(resource, "uri", "") or "")
    mention = f"@{server}:{uri}"
    match = _RESOURCE.fullmatch(mention)
    if match is None:  # the prompt hook would not read it: offering it would mislead
        return None
    return {"server": server, "uri": uri, "mention": mention,
            "name": _clip(getattr(resource, "name", None) or uri),
            "description": _clip(getattr(resource, "description", None)),
            "mimeType": getattr(resource, "mime_type", None)}


def _haystack(entry: dict[str, Any]) -> str:
    return " ".join(str(entry[k] or "") for k in ("mention", "name", "description")
                    ).casefold()


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= _TEXT_LIMIT else f"{text[:_TEXT_LIMIT - 1]}…"
