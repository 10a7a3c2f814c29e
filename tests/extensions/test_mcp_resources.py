"""``agent/mcpResources``'s listing: a real stdio MCP server's resources as ``@server:uri``
mentions the prompt hook reads, filtered by a query, bounded, from connected servers only,
never with a body."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.extensions.mcp_config import ServerSpec
from lsp_agent.extensions.mcp_hub import McpHub
from lsp_agent.sessions.commands import _RESOURCE
from lsp_agent.sessions.mcp_resources import mentionable_resources
from tests.extensions.helpers import config, stdio_spec

WAIT = 60


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_AGENT_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("MCP_TIMEOUT", "20000")


async def test_connected_servers_resources_are_listed_as_mentions(tmp_path: Path) -> None:
    broken = ServerSpec("gone", "user", "test", "stdio", command=str(tmp_path / "missing"))
    hub = McpHub(tmp_path, config(stdio_spec("srv"), broken), tmp_path / "logs")
    hub.start()
    await hub.wait_started(WAIT)
    try:
        listed = await mentionable_resources(hub.servers)
        assert hub.servers["srv"].state == "connected", hub.status()
        by_uri = {r["uri"]: r for r in listed}
        assert set(by_uri) == {"test://greeting", "test://notes/readme"}
        notes = by_uri["test://notes/readme"]
        assert notes == {"server": "srv", "uri": "test://notes/readme",
                         "mention": "@srv:test://notes/readme", "name": "notes",
                         "description": "The project's release notes.",
                         "mimeType": "text/markdown"}
        assert all(_RESOURCE.fullmatch(r["mention"]) for r in listed)
        assert "BODY" not in repr(listed) and "RESOURCE-TEXT" not in repr(listed)
        # The query matches the name, the description or the URI, case-insensitively.
        assert [r["uri"] for r in await mentionable_resources(hub.servers, "RELEASE")] == \
            ["test://notes/readme"]
        assert [r["uri"] for r in await mentionable_resources(hub.servers, "greet")] == \
            ["test://greeting"]
        assert await mentionable_resources(hub.servers, "nothing-like-this") == []
        assert len(await mentionable_resources(hub.servers, limit=1)) == 1
    finally:
        await hub.close()
    # Stopped servers are not asked.
    assert await mentionable_resources(hub.servers) == []
