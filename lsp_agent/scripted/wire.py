"""Anthropic Messages API wire shapes: SSE events, message objects and error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Event = tuple[str, dict[str, Any]]


def encode_sse(event_type: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event_type}\ndata: {payload}\n\n".encode()


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def split_chunks(text: str, size: int, *, at_least: int = 1) -> list[str]:
    """Cut ``text`` into pieces of ``size`` characters, and into at least ``at_least`` pieces
    when it is long enough (so a client's partial-JSON parsing is always exercised)."""
    if not text:
        return [""]
    if at_least > 1:
        size = min(size, max(1, -(-len(text) // at_least)))
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class ScriptedMessage:
    """One complete assistant message, ready to be sent as a stream or as JSON."""

    id: str
    model: str
    content: list[dict[str, Any]]  # wire content blocks; tool_use blocks carry their ids
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, int]
    chunk_chars: int = 12

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": dict(self.usage),
        }

    def events(self) -> list[Event]:
        start_usage = dict(self.usage, output_tokens=min(1, self.usage["output_tokens"]))
        events: list[Event] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **self.as_json(),
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(self.content):
            events.extend(_block_events(index, block, self.chunk_chars))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
                    "usage": {"output_tokens": self.usage["output_tokens"]},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events


def _block_events(index: int, block: dict[str, Any], chunk_chars: int) -> list[Event]:
    if block["type"] == "tool_use":
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        serialised = json.dumps(block["input"], ensure_ascii=False)
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in split_chunks(serialised, chunk_chars, at_least=3)
        ]
    else:
        start = {"type": "text", "text": ""}
        deltas = [
            {"type": "text_delta", "text": piece}
            for piece in split_chunks(block["text"], chunk_chars)
            if piece
        ]
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events.extend(
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        for delta in deltas
    )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events
