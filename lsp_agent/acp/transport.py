"""Newline-delimited JSON-RPC over stdio that answers bad input instead of dropping it.

The SDK's own reader logs a line that is not JSON and goes on without a word to the client, and
a line that is JSON but not an object (``[]``, ``"x"``) stops its receive loop. Here every bad
line gets the JSON-RPC error that names the problem (-32700 parse error, -32600 invalid
request), and the connection keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
MAX_MESSAGE_BYTES = 50 * 1024 * 1024  # prompts may embed whole files


def error_reply(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, int | str) and not isinstance(value, bool))


def parse_message(line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """One line as (the message, None), or (None, the error reply to send)."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, error_reply(PARSE_ERROR, f"Parse error: not JSON ({exc})")
    if isinstance(message, list):
        return None, error_reply(INVALID_REQUEST,
                                 "Invalid request: batches are not supported by ACP")
    if not isinstance(message, dict):
        kind = type(message).__name__
        return None, error_reply(INVALID_REQUEST,
                                 f"Invalid request: expected a JSON object, got {kind}")
    request_id = message.get("id")
    if not _valid_id(request_id):
        return None, error_reply(INVALID_REQUEST,
                                 "Invalid request: id must be a string, an integer or null")
    method = message.get("method")
    if "method" in message and not isinstance(method, str):
        return None, error_reply(INVALID_REQUEST, "Invalid request: method must be a string",
                                 request_id)
    if method is None and "id" not in message:
        return None, error_reply(INVALID_REQUEST,
                                 "Invalid request: neither a request, a notification nor a "
                                 "response (no method and no id)")
    params = message.get("params")
    if params is not None and not isinstance(params, dict | list):
        return None, error_reply(INVALID_REQUEST,
                                 "Invalid request: params must be an object or an array",
                                 request_id)
    return message, None


class LineTransport:
    """The SDK's message Transport (send, receive, close) over a stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        async with self._lock:
            if self._closed:
                raise ConnectionError("the connection is closed")
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            line = await self._read_line()
            if line is None:
                return None
            if not line.strip():
                continue
            message, error = parse_message(line)
            if message is not None:
                return message
            assert error is not None
            log.warning("bad message from the client: %s", error["error"]["message"])
            await self.send(error)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        except Exception:  # already gone (the client exited)
            log.debug("closing stdout failed", exc_info=True)

    async def _read_line(self) -> bytes | None:
        """The next line; None at end of input. An oversized line is answered and skipped."""
        while True:
            try:
                return await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial or None
            except asyncio.LimitOverrunError:
                await self._skip_line()
                await self.send(error_reply(
                    INVALID_REQUEST,
                    f"Invalid request: message over {MAX_MESSAGE_BYTES:,} bytes; skipped"))

    async def _skip_line(self) -> None:
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return
