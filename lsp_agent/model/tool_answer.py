"""Reading a small side request's answer (auto mode's classifier, the watcher's triage): the
input of the tool the request forced, else the first JSON object in the text that reads as an
answer (a model that wrote its call out as text)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def read_tool_answer(blocks: list[dict[str, Any]], tool: str, read: Callable[[Any], T],
                     unreadable: type[Exception]) -> T:
    """``read`` applied to the answer; ``read`` raises ``unreadable`` for what is not one, and
    so does this when nothing in the blocks is."""
    for block in blocks:
        if block.get("type") == "tool_use" and block.get("name") == tool:
            return read(block.get("input"))
    text = "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char != "{":
            continue
        try:
            found, _end = decoder.raw_decode(text, start)
            return read(found)
        except (ValueError, unreadable):
            continue
    raise unreadable(repr(text[:120]) if text else f"no {tool} call and no text")
