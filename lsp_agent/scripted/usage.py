"""Deterministic token estimates and prompt-cache accounting for the scripted model server.

Token counts are estimates: a prompt is cut into segments (each tool definition, each system
block, each message content block, in the order the real API caches them: tools, system,
messages) and every segment costs ``ceil(len(canonical_json(segment)) / 4)`` tokens.
``cache_control`` markers are removed before serialising, so moving a breakpoint does not change
the bytes of the prefix before it.

Cache accounting mirrors the real API closely enough for tests and demos:

* a request *writes* the prefixes ending at each of its breakpoints;
* a later request *reads* the longest prefix that an earlier request wrote and that ends at a
  segment boundary no more than ``LOOKBACK`` segments before one of its own breakpoints;
* ``cache_creation_input_tokens`` = tokens up to its last breakpoint minus the tokens read;
* ``input_tokens`` = the tokens after its last breakpoint.

So ``input + cache_read + cache_creation`` always equals the total estimate. There is no
minimum cacheable length and entries never expire (until the server is reset).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

LOOKBACK = 20  # the real API looks about 20 blocks back from a breakpoint for a cache hit


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Segment:
    text: str
    tokens: int
    breakpoint: bool


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


def _segment(value: Any) -> Segment:
    has_breakpoint = isinstance(value, dict) and value.get("cache_control") is not None
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "cache_control"}
    text = canonical_json(value)
    return Segment(text=text, tokens=estimate_tokens(text), breakpoint=has_breakpoint)


def prompt_segments(body: dict[str, Any]) -> list[Segment]:
    """The request's prompt as cacheable segments, in caching order."""
    segments: list[Segment] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        segments.extend(_segment(tool) for tool in tools)
    segments.extend(_segment(block) for block in _as_blocks(body.get("system")))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        for block in _as_blocks(message.get("content")):
            segment = _segment(block)
            # The role is part of what was said; add it without losing the breakpoint flag.
            text = f"{role}:{segment.text}"
            segments.append(Segment(text, estimate_tokens(text), segment.breakpoint))
    return segments


def _as_blocks(content: Any) -> list[Any]:
    """A string is the same prompt as a single text block (as for the real API)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return content
    return [] if content is None else [content]


def estimate_request_tokens(body: dict[str, Any]) -> int:
    """The total input-token estimate of a request (what count_tokens reports)."""
    return max(1, sum(s.tokens for s in prompt_segments(body)))


class PromptCache:
    """Remembers the prefixes written by earlier requests. Not thread-safe: callers lock."""

    def __init__(self) -> None:
        self._written: set[str] = set()

    def clear(self) -> None:
        self._written.clear()

    def account(self, body: dict[str, Any], *, commit: bool = True) -> CacheUsage:
        segments = prompt_segments(body)
        total = max(1, sum(s.tokens for s in segments))
        breakpoints = [i for i, s in enumerate(segments) if s.breakpoint]
        if not breakpoints:
            return CacheUsage(total, 0, 0)
        hashes, cumulative = _prefix_hashes(str(body.get("model", "")), segments)
        read = 0
        for index in sorted(_lookback_positions(breakpoints), reverse=True):
            if hashes[index] in self._written:
                read = cumulative[index]
                break
        cached_end = cumulative[breakpoints[-1]]
        if commit:
            self._written.update(hashes[i] for i in breakpoints)
        return CacheUsage(
            input_tokens=total - cached_end,
            cache_creation_input_tokens=cached_end - read,
            cache_read_input_tokens=read,
        )


def _prefix_hashes(model: str, segments: list[Segment]) -> tuple[list[str], list[int]]:
    """Hash and token count of every prefix ``segments[: i + 1]`` (the cache is per model)."""
    running = hashlib.sha256(model.encode())
    hashes: list[str] = []
    cumulative: list[int] = []
    tokens = 0
    for segment in segments:
        running.update(segment.text.encode())
        running.update(b"\x00")
        tokens += segment.tokens
        hashes.append(running.copy().hexdigest())
        cumulative.append(tokens)
    return hashes, cumulative


def _lookback_positions(breakpoints: list[int]) -> set[int]:
    positions: set[int] = set()
    for end in breakpoints:
        positions.update(range(max(0, end - LOOKBACK + 1), end + 1))
    return positions
