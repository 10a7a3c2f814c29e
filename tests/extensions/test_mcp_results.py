"""MCP results and tool lists, continued: images reach the model as image blocks, servers on
older protocol versions refresh their tools on list_changed, and a schema's key order never
changes the request's bytes. Real MCP servers (tests/extensions/mcp_test_server.py) as
subprocesses; a real Session with the real SDK against the scripted model server."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import mcp
import pytest

from lsp_agent.context.tokens import IMAGE_TOKENS, estimate_messages
from lsp_agent.extensions.mcp_hub import McpHub
from lsp_agent.extensions.mcp_tools import McpArgs, McpTool, result_images
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments
from tests.extensions.helpers import SERVER, config, stdio_spec, tool_context

WAIT = 60
PNG_B64 = "iVBORyBmYWtl"  # base64 of b"\x89PNG fake", what the test server's `image` returns
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_AGENT_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("MCP_TIMEOUT", "20000")


def tool(hub: McpHub, name: str) -> McpTool:
    return next(t for t in hub.tools() if t.name == name)


async def test_an_image_result_is_an_image_block(tmp_path: Path) -> None:
    hub = McpHub(tmp_path, config(stdio_spec("srv")), tmp_path / "logs")
    hub.start()
    await hub.wait_started(WAIT)
    try:
        out = await tool(hub, "mcp__srv__image").call(McpArgs(), tool_context(tmp_path))
    finally:
        await hub.close()
    assert out.images == [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG_B64}}]
    assert out.content.startswith("[image image/png") and "attached below" in out.content
    assert PNG_B64 not in out.content, "the bytes are not sent as text"


def block(kind: str, **fields: Any) -> SimpleNamespace:
    return SimpleNamespace(type=kind, **fields)


def test_images_the_api_cannot_take_are_described_not_attached() -> None:
    big = "A" * (5 * 1024 * 1024 * 4 // 3 + 8)
    result = SimpleNamespace(is_error=False, structured_content=None, content=[
        block("image", mime_type="image/bmp", data=PNG_B64),
        block("image", mime_type="image/png", data=big),
        *[block("image", mime_type="image/jpeg", data=PNG_B64) for _ in range(10)]])
    images = result_images(result)
    assert len(images) == 8 and {i["source"]["media_type"] for i in images} == {"image/jpeg"}


def test_image_tokens_are_estimated_by_the_image_not_its_base64() -> None:
    huge = "A" * 4_000_000
    message = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                            "content": [{"type": "text", "text": "x"}, {
                                                "type": "image", "source": {
                                                    "type": "base64", "media_type": "image/png",
                                                    "data": huge}}]}]}
    assert IMAGE_TOKENS <= estimate_messages([message]) < IMAGE_TOKENS + 100


async def test_the_model_receives_the_image_in_the_tool_result(model, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    options = {"mcpServers": {"srv": {"command": sys.executable, "args": [SERVER]}},
               "permissions": {"allow": ["mcp__srv__image"]}}
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "mcp__srv__image", "input": {}}]},
        {"content": "I see a PNG."}]})
    settings = ModelSettings(model="claude-sonnet-4-5", fallback_model=None, api_key="k",
                             base_url=model.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)
    events: list[ev.AgentEvent] = []
    session = Session(SessionConfig(workspace=ws, settings=settings,
                                    state_dir=tmp_path / "state", user_memory_dirs=[],
                                    safety_options=options),
                      model=ModelService(settings, client), tools=default_pool(),
                      documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                      applier=None, sink=events.append, asker=None)  # type: ignore[arg-type]
    try:
        await session.extensions.mcp.wait_started(WAIT)
        ended = await asyncio.wait_for(session.prompt("show me the image"), WAIT)
    finally:
        await session.close()
    assert ended.stop_reason == "end_turn"
    result = model.requests[1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and not result.get("is_error")
    text, image = result["content"]
    assert text["type"] == "text" and "attached below" in text["text"]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": PNG_B64}}


async def test_an_older_protocol_server_refreshes_its_tools_on_list_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The initialize handshake of protocol versions before 2026-07-28: list_changed arrives
    # as a plain notification, not through a subscription stream.
    monkeypatch.setattr(mcp, "Client", functools.partial(mcp.Client, mode="legacy"))
    seen: list[list[str]] = []
    hub = McpHub(tmp_path, config(stdio_spec("srv", "--legacy-notify")), tmp_path / "logs",
                 lambda tools: seen.append([t.name for t in tools]))
    hub.start()
    await hub.wait_started(WAIT)
    try:
        version = hub.servers["srv"]._client.protocol_version
        assert version < "2026-07-28", f"a handshake-era connection, not {version}"
        assert "mcp__srv__grown" not in {t.name for t in hub.tools()}
        await tool(hub, "mcp__srv__grow").call(McpArgs(), tool_context(tmp_path))
        for _ in range(200):  # the change arrives as a notification: poll for its effect
            if "mcp__srv__grown" in {t.name for t in hub.tools()}:
                break
            await asyncio.sleep(0.05)
        assert "mcp__srv__grown" in seen[-1]
        out = await tool(hub, "mcp__srv__grown").call(McpArgs(), tool_context(tmp_path))
        assert out.content == "grown tool"
    finally:
        await hub.close()


def test_schema_key_order_does_not_change_the_request_bytes() -> None:
    server = SimpleNamespace(spec=SimpleNamespace(name="srv"))

    def remote(schema: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(name="t", description="d", title=None, annotations=None,
                               input_schema=schema)

    a, b = {"type": "integer", "description": "A"}, {"description": "B", "type": "string"}
    one = McpTool(server, remote({"type": "object", "required": ["b", "a"],
                                  "properties": {"a": a, "b": b}}))
    two = McpTool(server, remote({"properties": {"b": dict(reversed(b.items())),
                                                 "a": dict(reversed(a.items()))},
                                  "required": ["b", "a"], "type": "object"}))
    assert json.dumps(one.api_schema()) == json.dumps(two.api_schema())
    assert one.api_schema()["input_schema"]["required"] == ["b", "a"], "lists keep their order"
