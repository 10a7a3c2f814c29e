"""The framing reader in-process: every kind of bad header is reported, then the next valid
message is read; the same bytes give the same result however the stream is chunked."""

from __future__ import annotations

import asyncio
import json

import pytest

from lsp_agent.server.framing import BadInput, FrameReader, Message, request_id_of

WAIT = 30.0


def body(msg_id: int, method: str = "textDocument/hover") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method,
                       "params": {"textDocument": {"uri": "file:///a.py"},
                                  "position": {"line": 0, "character": 0}}}).encode()


def frame(data: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(data) if length is None else length) + data


GOOD = frame(body(3))


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def source(chunks: list[bytes], then_silence: bool = False):
    """A read function over ``chunks``; then the end of input, or silence (a client waiting)."""
    pending = list(chunks)

    async def read() -> bytes:
        if pending:
            return pending.pop(0)
        if then_silence:
            await asyncio.Event().wait()
        return b""

    return read


async def read_all(data: bytes, size: int, then_silence: bool = False, until: int = 99) -> list:
    reader = FrameReader(source(chunks_of(data, size), then_silence), stall_seconds=0.05)
    items: list = []
    while len(items) < until and (item := await asyncio.wait_for(reader.next(), WAIT)):
        items.append(item)
    return items


def summary(items: list) -> list:
    """What the caller does with each item: serve (the id) or answer an error (its id)."""
    return [("serve", item.data["id"]) if isinstance(item, Message)
            else ("error", item.request_id) if item.reply else ("warn",) for item in items]


CASES = {
    "valid": (GOOD + frame(body(4)), [("serve", 3), ("serve", 4)]),
    "content-type first": (b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + GOOD,
                           [("serve", 3)]),
    # A short length cuts the body: an error now, the id once the rest shows it, then resync.
    "too short": (frame(body(2), 20) + GOOD, [("error", None), ("error", 2), ("serve", 3)]),
    "too long": (frame(body(2), 500) + GOOD, [("error", 2), ("serve", 3)]),
    "a little too long": (frame(body(2), len(body(2)) + 3) + GOOD, [("error", 2), ("serve", 3)]),
    "not a number": (b"Content-Length: abc\r\n\r\n" + body(2) + GOOD,
                     [("warn",), ("error", 2), ("serve", 3)]),
    "negative": (b"Content-Length: -5\r\n\r\n" + body(2) + GOOD,
                 [("warn",), ("error", 2), ("serve", 3)]),
    "missing": (b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + body(2) + GOOD,
                [("warn",), ("error", 2), ("serve", 3)]),
    "no header at all": (body(2) + GOOD, [("error", 2), ("serve", 3)]),
    "malformed header line": (b"Content-Length 10\r\n\r\n" + body(2) + GOOD,
                              [("error", 2), ("serve", 3)]),
    "body without the blank line": (b"Content-Length: 5\r\n" + body(2) + GOOD,
                                    [("warn",), ("serve", 3)]),
    "malformed JSON": (frame(b'{"jsonrpc": "2.0", "id": 2, "method": }') + GOOD,
                       [("error", None), ("serve", 3)]),
    "junk between messages": (GOOD + b"garbage\r\n" + frame(body(4)),
                              [("serve", 3), ("warn",), ("serve", 4)]),
    "stray blank lines are skipped": (GOOD + b"\r\n\r\n" + frame(body(4)),
                                      [("serve", 3), ("serve", 4)]),
}


@pytest.mark.parametrize("size", [1, 7, 100_000], ids=["bytewise", "7-byte", "whole"])
@pytest.mark.parametrize("case", CASES)
async def test_bad_framing_is_reported_and_the_next_message_is_read(case, size):
    data, expected = CASES[case]
    assert summary(await read_all(data, size)) == expected


async def test_header_text_inside_a_json_string_is_no_header():
    text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    data = json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                       "params": {"text": text}}).encode()
    items = await read_all(frame(data) + GOOD, 3)
    assert isinstance(items[0], Message) and items[0].data["params"]["text"] == text
    assert summary(items[1:]) == [("serve", 3)]


async def test_a_length_too_long_is_judged_when_the_client_falls_silent():
    items = await read_all(frame(body(2), 500), 100_000, then_silence=True, until=1)
    assert summary(items) == [("error", 2)]
    assert "overruns" in items[0].reason


async def test_an_unframed_request_is_answered_when_the_client_falls_silent():
    items = await read_all(body(2), 100_000, then_silence=True, until=1)
    assert summary(items) == [("error", 2)]


async def test_the_input_ending_inside_a_body_is_reported():
    items = await read_all(frame(body(2), 500)[:60], 100_000)
    assert len(items) == 1 and isinstance(items[0], BadInput) and items[0].reply
    assert "short of a 500-byte message" in items[0].reason


async def test_a_huge_content_length_is_refused_without_waiting_for_it():
    items = await read_all(b"Content-Length: 99999999999\r\n\r\n" + body(2) + GOOD, 100_000)
    assert summary(items) == [("warn",), ("error", 2), ("serve", 3)]


@pytest.mark.parametrize("fragment, expected", [
    (b'{"jsonrpc":"2.0","id":7,"method":"x","params":{"id":9}}', 7),
    (b'{"method":"x","params":{"id":9,"a":[1,{"id":8}]},"id":"abc"', "abc"),  # cut after id
    (b'{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":9}}', None),  # nested only
    (b'{"jsonrpc":"2.0","id":7,"result":null}', None),  # an answer, not a request
    (b'{"jsonrpc":"2.0","method":"x","id":12', None),  # cut inside the id: 12 or 123?
    (b'{"jsonrpc":"2.0","method":"x","id":true}', None),
    (b'"id":7,"method":"x"}', None),  # not the start of a message
    (b'{"jsonrpc":"2.0","method":"x\\"y","id":5,"params":"}"}', 5),  # quotes in strings
])
def test_request_id_of_reads_only_the_top_level(fragment, expected):
    assert request_id_of(fragment) == expected
