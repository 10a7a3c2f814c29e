"""Values a saved session must never hold: the API key, MCP servers' env values and headers."""

from __future__ import annotations

import json
from pathlib import Path

from lsp_agent.model.client import ModelSettings
from lsp_agent.sessions.manager import SessionManager
from lsp_agent.workspace.documents import DiskDocuments


async def test_mcp_env_values_and_headers_are_masked_in_what_is_saved(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "db": {"command": "db-mcp", "env": {"DB_URL": "postgres://u:hunter2pass@db/x"}},
        "web": {"type": "http", "url": "http://127.0.0.1:9/mcp",
                "headers": {"Authorization": "Bearer abcdefghijklmnop"}},
    }}))
    settings = ModelSettings.from_env(api_key="sk-test-0123456789")
    manager = SessionManager(settings, DiskDocuments(), None, lambda e: None, None,  # type: ignore[arg-type]
                             tmp_path / "state")
    session = manager.create(workspace, "default")
    try:
        redact = manager.store.redactor.text  # type: ignore[union-attr]
        said = redact("key sk-test-0123456789, url postgres://u:hunter2pass@db/x, "
                      "auth Bearer abcdefghijklmnop")
        assert "hunter2pass" not in said and "abcdefghijklmnop" not in said
        assert "sk-test-0123456789" not in said and said.count("[REDACTED]") >= 3
    finally:
        await session.close()
