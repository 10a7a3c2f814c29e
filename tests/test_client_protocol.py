"""The headless client (client/lsp_client.py) reads the server's events from the JSON they
arrived as, not from pygls's namedtuples."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsp_agent.client.lsp_client import AgentClient, RawNotification
from lsp_agent.server import protocol as p
from lsp_agent.types import events as ev


def client_seeing(events: list[Any], tmp_path: Path) -> AgentClient:
    async def never(_: Any) -> dict[str, Any]:
        raise AssertionError("not asked")

    return AgentClient(tmp_path, events.append, never, never)


def deliver(client: AgentClient, method: str, params: Any) -> Any:
    protocol = client._client.protocol
    message = protocol.structure_message({"jsonrpc": "2.0", "method": method, "params": params})
    protocol.handle_message(message)
    return message


async def test_an_event_reaches_the_client_as_the_typed_event(tmp_path):
    events: list[Any] = []
    client = client_seeing(events, tmp_path)
    wire = {"session_id": "s1", "event": {
        "type": "tool_result", "session_id": "s1", "seq": 4, "tool_use_id": "t1",
        "name": "Read", "content": "x = 1", "is_error": False,
        "started_at": 1.5, "finished_at": 2.0}}
    message = deliver(client, p.EVENT, wire)
    await asyncio.sleep(0)  # pygls may run a handler soon rather than at once
    assert isinstance(message, RawNotification) and message.params is wire  # no namedtuples
    [event] = events
    assert isinstance(event, ev.ToolResult)
    assert (event.tool_use_id, event.content, event.finished_at) == ("t1", "x = 1", 2.0)


async def test_an_unreadable_event_is_skipped(tmp_path):
    events: list[Any] = []
    client = client_seeing(events, tmp_path)
    deliver(client, p.EVENT, {"event": {"type": "no_such_event"}})
    await asyncio.sleep(0)
    assert events == []


def test_other_notifications_keep_pygls_handling(tmp_path):
    client = client_seeing([], tmp_path)
    message = client._client.protocol.structure_message(
        {"jsonrpc": "2.0", "method": "agent/somethingElse", "params": {"x": 1}})
    assert not isinstance(message, RawNotification)
    assert message.params.x == 1
