"""The model service's low-level stream (model/raw_stream.py) against the SDK's own helper
(``client.messages.stream``), both over real HTTP with the real SDK client: the same request
bytes, the same events as the loop reads them, the same final message, the same errors."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import Any

import anthropic
import pytest

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.raw_stream import Fields, open_stream, request_body
from lsp_agent.model.service import ModelCallFailed, ModelRequest, ModelService

TIMEOUT = 30.0


# --------------------------------------------------------------------------- a canned server


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


class CannedServer:
    """An HTTP/1.1 server on loopback that records each request (headers, raw body) and
    answers every one with the same server-sent events."""

    def __init__(self, events: bytes) -> None:
        self.events = events
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CannedServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: Any) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")[1:]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"connection: close\r\n\r\n" + self.events)
            await writer.drain()
        writer.close()


def client_for(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test-key", base_url=base_url, max_retries=0,
                                    timeout=TIMEOUT)


FIELDS: dict[str, Any] = {
    "model": "test-model", "max_tokens": 512,
    "system": [{"type": "text", "text": "Be brief: «naïve» — ünïcödé ✓",
                "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "read it \u2028 \"quoted\""}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.py",
                                                                             "limit": 3}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x = 1\n",
             "is_error": False, "cache_control": {"type": "ephemeral"}}]},
    ],
    "tools": [{"name": "Read", "description": "Read a file.", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
    "tool_choice": {"type": "auto"},
}


async def with_helper(base_url: str, fields: dict[str, Any]) -> tuple[list[Any], Any]:
    client = client_for(base_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            async with client.messages.stream(**fields) as stream:
                events = [e async for e in stream]
                return events, await stream.get_final_message()
    finally:
        await client.close()


async def with_raw(base_url: str, fields: dict[str, Any]) -> tuple[list[Any], Any]:
    client = client_for(base_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            stream = await open_stream(client, fields)
            try:
                events = [e async for e in stream]
                return events, await stream.get_final_message()
            finally:
                await stream.close()
    finally:
        await client.close()


def as_the_loop_reads(events: list[Any]) -> list[tuple[Any, ...]]:
    """What agent/loop.py reads of each event (``_on_stream_event``)."""
    seen: list[tuple[Any, ...]] = []
    for event in events:
        if event.type == "content_block_start":
            block = event.content_block
            seen.append((event.type, event.index, block.type, getattr(block, "id", None),
                         getattr(block, "name", None)))
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            seen.append((event.type, event.index, event.delta.text))
        elif event.type == "content_block_stop":
            block = event.content_block
            seen.append((event.type, event.index, block.type, getattr(block, "id", None),
                         block.input if block.type == "tool_use" else None))
        elif event.type == "message_delta":
            seen.append((event.type, event.delta.stop_reason))
    return seen


def dumped(message: Any) -> dict[str, Any]:
    """The final message as JSON, without the helper's own additions (``parsed_output``)."""
    data = message.model_dump(mode="json", exclude_none=True)
    for block in data["content"]:
        block.pop("parsed_output", None)
    return data


# --------------------------------------------------------------------------- canned answers


def message_start(usage: dict[str, Any] | None = None) -> bytes:
    return sse("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": usage or {"input_tokens": 120, "output_tokens": 1,
                           "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7}}})


def block(index: int, start: dict[str, Any], *deltas: dict[str, Any]) -> bytes:
    return (sse("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": start})
            + b"".join(sse("content_block_delta", {"type": "content_block_delta",
                                                    "index": index, "delta": d})
                       for d in deltas)
            + sse("content_block_stop", {"type": "content_block_stop", "index": index}))


def ending(stop_reason: str, usage: dict[str, Any]) -> bytes:
    return (sse("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": stop_reason, "stop_sequence": None}, "usage": usage})
            + sse("message_stop", {"type": "message_stop"}))


def text_delta(text: str) -> dict[str, Any]:
    return {"type": "text_delta", "text": text}


def json_delta(piece: str) -> dict[str, Any]:
    return {"type": "input_json_delta", "partial_json": piece}


EVERY_KIND = (
    message_start()
    + sse("ping", {"type": "ping"})
    + block(0, {"type": "thinking", "thinking": "", "signature": ""},
            {"type": "thinking_delta", "thinking": "Let me "},
            {"type": "thinking_delta", "thinking": "look."},
            {"type": "signature_delta", "signature": "sig=="})
    + block(1, {"type": "text", "text": "", "citations": None}, text_delta("Reading "),
            {"type": "citations_delta", "citation": {
                "type": "char_location", "cited_text": "x", "document_index": 0,
                "document_title": None, "start_char_index": 0, "end_char_index": 1}},
            text_delta("the file ✓."))
    + block(2, {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {}},
            json_delta('{"path": "a'), json_delta('.py", "lim'), json_delta('it": 3}'))
    + block(3, {"type": "tool_use", "id": "toolu_3", "name": "Glob", "input": {}})
    + ending("tool_use", {"output_tokens": 42}))

# message_delta's usage totals replace message_start's, and one left out keeps it.
USAGE_TOTALS = (
    message_start()
    + block(0, {"type": "text", "text": ""}, text_delta("ok"))
    + ending("end_turn", {"output_tokens": 9, "input_tokens": 130,
                          "cache_read_input_tokens": None}))

# The output limit cuts a tool's input: the partial input as the helper's partial parse has it.
CUT_TOOL_INPUT = (
    message_start()
    + block(0, {"type": "tool_use", "id": "toolu_4", "name": "Write", "input": {}},
            json_delta('{"path": "b.py", "content": "def f'))
    + ending("max_tokens", {"output_tokens": 512}))

# A stream cut mid-way (the connection closes): the message as far as it came.
CUT_MID_WAY = (
    message_start()
    + sse("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}})
    + sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": text_delta("half")}))

ANSWERS = {"every kind": EVERY_KIND, "usage totals": USAGE_TOTALS,
           "cut tool input": CUT_TOOL_INPUT, "cut mid-way": CUT_MID_WAY}


# --------------------------------------------------------------------------- tests


async def test_the_request_is_the_helpers_to_the_byte():
    async with CannedServer(USAGE_TOTALS) as server:
        await with_helper(server.base_url, FIELDS)
        await with_raw(server.base_url, FIELDS)
    (helper_headers, helper_body), (raw_headers, raw_body) = server.requests
    assert raw_body == helper_body
    assert raw_body == request_body(FIELDS)
    assert json.loads(raw_body) == {**FIELDS, "stream": True}
    # Auth, API version, content type, the client's identity: as the helper sends them. Only
    # the helper's own telemetry (which helper it was) and the per-request key differ.
    own = {"x-stainless-helper-method", "x-stainless-stream-helper", "idempotency-key"}
    assert {k: v for k, v in raw_headers.items() if k not in own} == \
        {k: v for k, v in helper_headers.items() if k not in own}
    assert any("test-key" in value for value in raw_headers.values())  # the key is sent
    assert raw_headers["content-type"] == "application/json"


def test_a_body_keeps_the_helpers_key_order_whatever_order_it_is_given_in():
    shuffled = dict(reversed(list(FIELDS.items())))
    assert request_body(shuffled) == request_body(FIELDS)
    assert list(json.loads(request_body(shuffled))) == [
        "max_tokens", "messages", "model", "system", "tools", "tool_choice", "stream"]


def test_a_field_the_body_does_not_know_is_refused_not_dropped():
    with pytest.raises(ValueError, match="thinking"):
        request_body({**FIELDS, "thinking": {"type": "enabled", "budget_tokens": 1024}})


@pytest.mark.parametrize("answer", list(ANSWERS))
async def test_events_and_final_message_are_the_helpers(answer):
    async with CannedServer(ANSWERS[answer]) as server:
        helper_events, helper_final = await with_helper(server.base_url, FIELDS)
        raw_events, raw_final = await with_raw(server.base_url, FIELDS)
    assert as_the_loop_reads(raw_events) == as_the_loop_reads(helper_events)
    assert dumped(raw_final) == dumped(helper_final)
    assert isinstance(raw_final, anthropic.types.Message)


async def test_the_final_message_has_what_was_accumulated():
    # Not only equal to the helper's: right (a broken helper would not hide a broken copy).
    async with CannedServer(EVERY_KIND) as server:
        events, final = await with_raw(server.base_url, FIELDS)
    thinking, text, read, glob = final.content
    assert (thinking.thinking, thinking.signature) == ("Let me look.", "sig==")
    assert text.text == "Reading the file ✓." and text.citations[0].cited_text == "x"
    assert (read.id, read.name, read.input) == ("toolu_2", "Read", {"path": "a.py", "limit": 3})
    assert glob.input == {}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens,
            final.usage.cache_read_input_tokens) == (120, 42, 100)
    assert "ping" not in [e.type for e in events]
    async with CannedServer(USAGE_TOTALS) as server:
        _, final = await with_raw(server.base_url, FIELDS)
    assert (final.usage.input_tokens, final.usage.output_tokens,
            final.usage.cache_read_input_tokens) == (130, 9, 100)


def test_fields_read_like_the_sdks_models():
    event = Fields({"type": "content_block_stop", "index": 2, "content_block": {
        "type": "tool_use", "id": "t", "name": "Read", "input": {"path": "a"}}})
    assert event.content_block.name == "Read"
    assert event.content_block.input == {"path": "a"}  # a tool's input stays a dict
    assert isinstance(event.content_block.input, dict)
    assert event.delta is None and getattr(event.content_block, "text", None) is None
    assert copy.copy(event).content_block.name == "Read"
    with pytest.raises(AttributeError):
        _ = event._private


async def test_an_error_event_in_the_stream_raises_the_helpers_error():
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    answer = message_start() + sse("error", error)
    async with CannedServer(answer) as server:
        with pytest.raises(anthropic.APIStatusError) as helper:
            await with_helper(server.base_url, FIELDS)
        with pytest.raises(anthropic.APIStatusError) as raw:
            await with_raw(server.base_url, FIELDS)
    assert raw.value.body == helper.value.body == error
    assert type(raw.value) is type(helper.value)


async def test_a_stream_without_its_message_is_a_clear_failure():
    # The helper would fail an assertion; the service says what the endpoint did wrong.
    settings = ModelSettings(model="test-model", api_key="k")
    async with CannedServer(sse("message_stop", {"type": "message_stop"})) as server:
        service = ModelService(settings, client_for(server.base_url))
        request = ModelRequest(model="test-model", system=[], tools=[],
                               messages=[{"role": "user", "content": "hi"}], max_tokens=10)
        with pytest.raises(ModelCallFailed) as failed:
            await service.respond(request)
        await service.client.close()
    assert "ended before its message began" in failed.value.failure.message


async def test_leaving_a_stream_early_closes_its_response():
    async with CannedServer(EVERY_KIND) as server:
        client = client_for(server.base_url)
        stream = await open_stream(client, FIELDS)
        first = await anext(aiter(stream))
        await stream.close()
        assert first.type == "message_start"
        assert stream._raw.response.is_closed
        await client.close()



@pytest.mark.parametrize("answer", list(ANSWERS))
async def test_the_loops_fields_of_the_final_message_are_the_models(answer):
    # The loop reads stop_reason and usage through final_fields(), without the SDK's model.
    async with CannedServer(ANSWERS[answer]) as server:
        client = client_for(server.base_url)
        finals = []
        for read in ("get_final_message", "final_fields"):
            stream = await open_stream(client, FIELDS)
            try:
                finals.append(await getattr(stream, read)())
            finally:
                await stream.close()
        await client.close()
    model, fields = finals
    assert fields.stop_reason == model.stop_reason
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens"):
        assert getattr(fields.usage, name) == getattr(model.usage, name)
    assert fields.usage.input_tokens is not None


async def test_the_loops_fields_fail_as_the_final_message_does():
    async with CannedServer(sse("message_stop", {"type": "message_stop"})) as server:
        client = client_for(server.base_url)
        stream = await open_stream(client, FIELDS)
        with pytest.raises(anthropic.APIResponseValidationError, match="no message_start"):
            await stream.final_fields()
        await stream.close()
        await client.close()


def test_a_body_assembled_from_its_members_is_the_whole_objects_encoding():
    from lsp_agent.model.raw_stream import _ENCODER

    fields = copy.deepcopy(FIELDS)
    fields["tools"] = [*fields["tools"], {"name": "Üñï", "description": "«x» \u2028",
                                          "input_schema": {"type": "object"}}]
    whole = {**fields, "stream": True}
    ordered = {k: whole[k] for k in (*BODY_ORDER_OF_HELPER, "stream") if k in whole}
    assert request_body(fields) == _ENCODER.encode(ordered).encode()
    assert request_body(fields) == request_body(fields)  # the second from the tools' cache
    # A tool definition is found again by identity only: a new object is encoded anew.
    changed = copy.deepcopy(fields)
    changed["tools"][0]["description"] = "another description"
    assert b"another description" in request_body(changed)
    assert b"another description" not in request_body(fields)
    assert json.loads(request_body({**fields, "tools": []}))["tools"] == []


BODY_ORDER_OF_HELPER = ("max_tokens", "messages", "model", "system", "tools", "tool_choice")
