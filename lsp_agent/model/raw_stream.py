"""A streamed Messages request through the SDK's client, without its stream helper's layers.

``client.messages.stream()`` spends more CPU per request than the agent does around it
(bench/bench_warm.py, "Overhead per model round"): it deep-copies the request body before
serializing it, builds a pydantic model for every server-sent event, then a second layer of
events and a model of the message as it grows, and each time the garbage collector dropped it,
re-creates a generic pydantic class (``ParsedMessage[T]``: milliseconds). The agent loop reads
none of that but a few fields.

So the model service posts through the same SDK client (its connection pool, headers, auth,
status errors, SSE decoding, and ``error`` events raised as ``APIStatusError``) the JSON bytes
the helper would have sent, serialized once here, and reads the events as the dicts the JSON
decoder made (``cast_to=object``). ``MessageStream`` below gives the loop what it reads of the
helper's events (``event.delta.text``, a finished block's parsed ``input``) and accumulates the
final message as the helper does, built as the SDK's ``Message`` model once at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from lsp_agent.model import round_clock

if TYPE_CHECKING:
    import anthropic

Json = dict[str, Any]

MESSAGES_PATH = "/v1/messages"
# The order in which the SDK's helper writes the fields it is given (messages.stream()): the
# bytes sent are the helper's, to the byte.
BODY_ORDER = ("max_tokens", "messages", "model", "system", "tools", "tool_choice")
# The SDK's JSON encoding of a body (anthropic._utils._json.openapi_dumps).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_KEYS = {name: _ENCODER.encode(name) + ":" for name in BODY_ORDER}
# Tool definitions are built once per tool pool and sent unchanged on every request
# (ToolPool.api_schemas; the context manager's estimate counts them once on the same ground):
# each is encoded once and found again by identity, about a third of a request's encoding.
# An entry holds its object, so an id is never reused while cached; the cache is bounded.
_ENCODED_TOOLS: dict[int, tuple[Json, str]] = {}
_ENCODED_TOOLS_MAX = 512


def request_body(fields: Json) -> bytes:
    """The streamed request's body: ``fields`` (the helper's keyword arguments) in its order.
    The same bytes as encoding the whole object at once, assembled from its members."""
    unknown = set(fields) - set(BODY_ORDER)
    if unknown:
        raise ValueError(f"fields the request body does not know: {sorted(unknown)}")
    members = [_KEYS[name] + (_encoded_tools(fields[name]) if name == "tools"
                              else _ENCODER.encode(fields[name]))
               for name in BODY_ORDER if name in fields]
    members.append('"stream":true')
    return ("{" + ",".join(members) + "}").encode()


def _encoded_tools(tools: Any) -> str:
    if not isinstance(tools, list):
        return _ENCODER.encode(tools)
    parts = []
    for tool in tools:
        hit = _ENCODED_TOOLS.get(id(tool))
        if hit is None or hit[0] is not tool:
            if len(_ENCODED_TOOLS) >= _ENCODED_TOOLS_MAX:
                _ENCODED_TOOLS.clear()
            hit = _ENCODED_TOOLS[id(tool)] = (tool, _ENCODER.encode(tool))
        parts.append(hit[1])
    return "[" + ",".join(parts) + "]"


async def open_stream(client: anthropic.AsyncAnthropic, fields: Json) -> MessageStream:
    """Send the request; returns once the response's headers arrived. Raises the SDK's errors
    (a status error, a connection error) as its helper would."""
    import anthropic

    body = request_body(fields)
    if round_clock.enabled():  # benchmarks only (round_clock.py)
        round_clock.instrument(client)
        round_clock.mark(round_clock.REQUEST_HANDED)
    raw = await client.post(MESSAGES_PATH, content=body, cast_to=object,
                            stream=True, stream_cls=anthropic.AsyncStream[object])
    return MessageStream(raw)


class Fields:
    """Attribute access to an event's JSON, as on the SDK's models: ``event.delta.text``. A
    field the event lacks reads as None (the models' default for optional fields); the objects
    the loop reads into (NESTED) are wrapped, every other value (a tool's ``input``) is as
    decoded."""

    NESTED = frozenset(("content_block", "delta", "message", "usage"))
    __slots__ = ("_data",)

    def __init__(self, data: Json) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a field: no recursion on an object copy never set up
            raise AttributeError(name)
        value = self._data.get(name)
        return Fields(value) if name in Fields.NESTED and isinstance(value, dict) else value

    def __repr__(self) -> str:
        return f"Fields({self._data!r})"


def _add_text(block: Json, delta: Json, _buffers: dict[int, str], _index: int) -> None:
    if block.get("type") == "text":
        block["text"] = block.get("text", "") + delta.get("text", "")


def _add_json(block: Json, delta: Json, buffers: dict[int, str], index: int) -> None:
    if block.get("type") in TAKES_INPUT:  # parsed once, when the block ends (_finish_input)
        buffers[index] = buffers.get(index, "") + delta.get("partial_json", "")


def _add_citation(block: Json, delta: Json, _buffers: dict[int, str], _index: int) -> None:
    if block.get("type") == "text":
        block["citations"] = [*(block.get("citations") or []), delta.get("citation")]


def _add_thinking(block: Json, delta: Json, _buffers: dict[int, str], _index: int) -> None:
    if block.get("type") == "thinking":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")


def _set_signature(block: Json, delta: Json, _buffers: dict[int, str], _index: int) -> None:
    if block.get("type") == "thinking":
        block["signature"] = delta.get("signature")


# How each kind of delta grows the block it belongs to, as the SDK's helper does
# (lib/streaming/_messages.py, accumulate_event); other kinds leave it as it is.
DELTAS: dict[str, Callable[[Json, Json, dict[int, str], int], None]] = {
    "text_delta": _add_text,
    "input_json_delta": _add_json,
    "citations_delta": _add_citation,
    "thinking_delta": _add_thinking,
    "signature_delta": _set_signature,
}
TAKES_INPUT = frozenset(("tool_use", "server_tool_use"))
# Usage counts of a message_delta are totals: they replace the message_start's, and an optional
# one left out (None) keeps it. output_tokens is always replaced.
USAGE_TOTALS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                "server_tool_use", "output_tokens_details")


class MessageStream:
    """The events of one streamed response (``Fields``), and the final message they make."""

    def __init__(self, raw: anthropic.AsyncStream[object]) -> None:
        self._raw = raw
        self._message: Json | None = None
        self._buffers: dict[int, str] = {}  # a tool block's input JSON, by block index
        self._events = self._read()

    def __aiter__(self) -> AsyncIterator[Fields]:
        return self._events

    async def _read(self) -> AsyncIterator[Fields]:
        if round_clock.enabled():  # benchmarks only
            async for fields in self._clocked():
                yield fields
            return
        async for data in self._raw:
            if isinstance(data, dict):
                yield Fields(self._accumulate(data))

    async def _clocked(self) -> AsyncIterator[Fields]:
        """``_read``, marking when the last event was read and how long the reader spent on
        the events between taking one and asking for the next."""
        handling = 0.0
        async for data in self._raw:
            if isinstance(data, dict):
                fields = Fields(self._accumulate(data))
                handed = time.monotonic()
                yield fields
                handling += time.monotonic() - handed
        round_clock.mark(round_clock.RESPONSE_READ)
        round_clock.mark(round_clock.EVENTS_HANDLED, handling)

    def _accumulate(self, event: Json) -> Json:
        kind = event.get("type")
        if self._message is None:  # the helper passes on whatever precedes message_start
            if kind == "message_start":
                self._message = _started(event.get("message"))
            return event
        content: list[Json] = self._message["content"]
        if kind == "content_block_start":
            content.append(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta":
            index, delta = event.get("index", 0), event.get("delta") or {}
            grow = DELTAS.get(delta.get("type", ""))
            if grow is not None:
                grow(content[index], delta, self._buffers, index)
        elif kind == "content_block_stop":
            index = event.get("index", 0)
            self._finish_input(index)
            # The helper's content_block_stop carries the whole block (a tool's parsed input).
            return {**event, "content_block": content[index]}
        elif kind == "message_delta":
            self._settle(event)
        return event

    def _finish_input(self, index: int) -> None:
        """A tool block's input, parsed from its JSON pieces; a cut-off one (the output limit)
        as far as it goes, as the helper's partial parse reads it."""
        text = self._buffers.pop(index, "")
        if text and self._message is not None:
            from jiter import from_json  # the SDK's own JSON parser, one of its dependencies

            try:
                self._message["content"][index]["input"] = from_json(text.encode(),
                                                                     partial_mode=True)
            except ValueError as exc:  # the helper's error, word for word
                raise ValueError(
                    "Unable to parse tool parameter JSON from model. Please retry your request "
                    f"or adjust your prompt. Error: {exc}. JSON: {text}") from exc

    def _settle(self, event: Json) -> None:
        assert self._message is not None
        delta, usage = event.get("delta") or {}, event.get("usage") or {}
        for name in ("stop_reason", "stop_sequence", "stop_details"):
            self._message[name] = delta.get(name)
        if delta.get("container") is not None:
            self._message["container"] = delta["container"]
        totals = self._message.setdefault("usage", {})
        totals["output_tokens"] = usage.get("output_tokens")
        for name in USAGE_TOTALS:
            if usage.get(name) is not None:
                totals[name] = usage[name]

    async def get_final_message(self) -> Any:
        """The whole message (the SDK's ``Message``), once the rest of the stream is read."""
        import anthropic

        return anthropic.types.Message.construct(**await self._finished())

    async def final_fields(self) -> Fields:
        """The same message read as ``Fields`` (``.stop_reason``, ``.usage.input_tokens``):
        for the agent loop, which reads only those, between two requests; the SDK's model of
        the whole message costs a few hundred microseconds to build."""
        return Fields(await self._finished())

    async def _finished(self) -> Json:
        import anthropic

        async for _event in self._events:
            pass
        if self._message is None:
            raise anthropic.APIResponseValidationError(
                response=self._raw.response, body=None,
                message="the model's stream ended before its message began (no message_start)")
        for index in list(self._buffers):  # blocks the stream never closed
            self._finish_input(index)
        return self._message

    async def close(self) -> None:
        await self._raw.close()
        round_clock.mark(round_clock.STREAM_CLOSED)


def _started(message: Any) -> Json:
    started = dict(message) if isinstance(message, dict) else {}
    started["content"] = [dict(b) for b in started.get("content") or []]
    started["usage"] = dict(started.get("usage") or {})
    return started
