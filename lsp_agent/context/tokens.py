"""Token counting: the API's count_tokens endpoint when it answers, a local estimate otherwise.

The local estimate is ``ceil(len(canonical JSON) / 4)`` per prompt segment (each tool, each
system block, each message block), the same rule the scripted model server uses. Against the
real API it is calibrated by the last request's reported usage, so thresholds follow the
model's real tokenizer closely without a count request per round.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lsp_agent.model.service import ModelCallFailed, ModelRequest, ModelService

log = logging.getLogger(__name__)

Block = dict[str, Any]


def estimate_text(text: str) -> int:
    return (len(text) + 3) // 4


IMAGE_TOKENS = 1_600  # an image costs its pixels (about 1,600 tokens at most), not its base64


def _sized(value: Any) -> Any:
    """Image blocks (also inside a tool result) as a stand-in of an image's token cost."""
    if isinstance(value, dict):
        if value.get("type") == "image":
            return {"type": "image", "stand_in": "x" * (IMAGE_TOKENS * 4)}
        if value.get("type") == "tool_result" and isinstance(value.get("content"), list):
            return {**value, "content": [_sized(b) for b in value["content"]]}
    return value


def _canonical(value: Any) -> str:
    """A segment's JSON; ``cache_control`` markers are not part of the prompt."""
    value = _sized(value)
    if isinstance(value, dict) and "cache_control" in value:
        value = {k: v for k, v in value.items() if k != "cache_control"}
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def estimate_value(value: Any) -> int:
    return estimate_text(_canonical(value))


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content) if isinstance(content, list) else []


def estimate_messages(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        role = f"{message.get('role', '')}:"  # what was said includes who said it
        total += sum(estimate_text(role + _canonical(b)) for b in _blocks(message.get("content")))
    return total


def estimate_request(
    system: list[Block], tools: list[Block], messages: list[dict[str, Any]]
) -> int:
    return (sum(estimate_value(t) for t in tools) + sum(estimate_value(b) for b in system)
            + estimate_messages(messages))


class Calibration:
    """The ratio between what the API reported and what the estimate said for the same request.

    Clamped, so one odd report (a different model, a proxy that reports nothing) cannot make
    thresholds absurd.
    """

    def __init__(self) -> None:
        self.ratio = 1.0

    def observe(self, reported: int, estimated: int) -> None:
        if reported > 0 and estimated > 0:
            self.ratio = min(2.0, max(0.5, reported / estimated))

    def apply(self, estimated: int) -> int:
        return int(estimated * self.ratio)


class TokenCounter:
    """Exact counts from ``/v1/messages/count_tokens``; remembers an endpoint that lacks it."""

    def __init__(self) -> None:
        self.available: bool | None = None  # None: not tried yet

    async def count(self, service: ModelService | None,
                    request: ModelRequest) -> tuple[int, str]:
        """(tokens, source) where source is ``count_tokens`` or ``estimate``."""
        if service is not None and self.available is not False and request.messages:
            try:
                tokens = await service.count_tokens(request)
                self.available = True
                return tokens, "count_tokens"
            except ModelCallFailed as failed:  # fall back, and stop asking after a 404
                if failed.failure.status in (404, 405, 501):
                    self.available = False
                log.debug("count_tokens unavailable (%s); using the estimate", failed)
        return estimate_request(request.system, request.tools, request.messages), "estimate"
