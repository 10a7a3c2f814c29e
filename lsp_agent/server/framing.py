"""LSP base-protocol framing (``Content-Length`` headers) that survives bad input.

pygls's reader trusts every header: one wrong ``Content-Length`` leaves it reading bodies from
the middle of messages, and it never finds a header again (see docs/upstream/pygls-framing.md).
This reader turns a byte stream into decoded JSON messages and, for input it cannot frame, into
``BadInput`` items (logged by the caller, and answered with -32700 when a request is owed an
answer), then resynchronises on the next valid header.

Resynchronising is sound because ``Content-Length: <digits>`` followed by a raw CR LF can never
occur inside a JSON body: outside strings it is not JSON, and inside strings a raw CR is illegal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024  # far above any real message; a bigger claim is a broken header
STALL_SECONDS = 2.0  # silence mid-message after which incomplete input is judged

HEADER_END = b"\r\n\r\n"
HEADER_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9-]*")
HEADER_LINE_START = re.compile(rb"[A-Za-z][A-Za-z0-9-]*:")
# Where a fresh message begins (Content-Type first is allowed, as vscode-jsonrpc may send it).
NEXT_HEADER = re.compile(
    rb"(?i)(?:content-type:[^\r\n]{0,200}\r\n)?content-length:[ \t]*\d+[ \t]*\r\n")
NEXT_HEADER_SPAN = 300  # longest NEXT_HEADER match, to rescan a growing buffer incrementally
JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+|\s+|.', re.S)

ReadChunk = Callable[[], Awaitable[bytes]]  # b"" at end of input


@dataclass(frozen=True)
class Message:
    data: Any  # a decoded JSON value, not yet checked to be a JSON-RPC message


@dataclass(frozen=True)
class BadInput:
    reason: str
    reply: bool = False  # the client sent a request it is owed an answer for (-32700)
    request_id: int | str | None = None  # that request's id when it could be read
    # The bytes concerned, for debug logs only: they may hold document text (a secret).
    sample: bytes = field(default=b"", repr=False)


class FrameReader:
    def __init__(self, read_chunk: ReadChunk, stall_seconds: float = STALL_SECONDS):
        self._read_chunk = read_chunk
        self._stall_seconds = stall_seconds
        self._buf = bytearray()
        self._eof = False
        self._reading: asyncio.Future[bytes] | None = None
        self._cut_short: bytes | None = None  # a body that ended inside its JSON

    async def next(self) -> Message | BadInput | None:
        """The next message or problem; None once the input has ended."""
        while True:
            found: Message | BadInput | None
            start = self._where_input_starts()
            if start == "junk":
                found = await self._skip_junk()
            elif start == "header":
                found = await self._read_message()
            elif await self._fill(stall=False):
                continue
            elif self._buf:  # the input ended inside what looked like a header name
                found = self._drop_junk(len(self._buf))
            else:
                return None
            if found is not None:
                return found
            if self._eof and not self._buf:
                return None

    # -- reading -----------------------------------------------------------------------------

    async def _fill(self, stall: bool) -> bool:
        """Append the next chunk; False at end of input or (with ``stall``) after a silence."""
        if self._eof:
            return False
        if self._reading is None:  # kept across stalls: cancelling a read could lose its bytes
            self._reading = asyncio.ensure_future(self._read_chunk())
        done, _ = await asyncio.wait({self._reading},
                                     timeout=self._stall_seconds if stall else None)
        if not done:
            return False
        reading, self._reading = self._reading, None
        try:
            chunk = reading.result()
        except OSError as exc:  # a reset connection ends the input like a close
            log.warning("reading from the client failed: %s", exc)
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buf[:count])
        del self._buf[:count]
        return taken

    def _where_input_starts(self) -> str:
        if HEADER_LINE_START.match(self._buf):
            return "header"
        if not self._buf or HEADER_NAME.fullmatch(self._buf):
            return "undecided"  # empty, or a header name still being written
        return "junk"

    # -- junk: bytes outside any frame -------------------------------------------------------

    async def _skip_junk(self) -> BadInput | None:
        scanned = 0
        while True:
            found = NEXT_HEADER.search(self._buf, scanned)
            if found:
                return self._drop_junk(found.start())
            scanned = max(0, len(self._buf) - NEXT_HEADER_SPAN)
            if not await self._fill(stall=True):  # silence or the end: give up on this junk
                return self._drop_junk(len(self._buf))

    def _drop_junk(self, count: int) -> BadInput | None:
        junk = self._take(count)
        cut_short, self._cut_short = self._cut_short, None
        if not junk.strip():
            return None
        if cut_short is not None:  # the rest of a body whose Content-Length was too small
            owed = request_id_of(cut_short) is None  # not answered with its id yet
            rid = request_id_of(cut_short + junk) if owed else None
            return BadInput(f"{len(junk)} more bytes after a {len(cut_short)}-byte message "
                            "(Content-Length too small?)", rid is not None, rid, junk)
        message = _unframed_message(junk)
        return BadInput(f"{len(junk)} bytes outside any message (missing or invalid "
                        "Content-Length header)", message is not None,
                        request_id_of(message) if message else None, junk)

    # -- a framed message ------------------------------------------------------------------

    async def _read_message(self) -> Message | BadInput | None:
        header = await self._read_header()
        if isinstance(header, BadInput) or header is None:
            return header
        return await self._read_body(header)

    async def _read_header(self) -> int | BadInput | None:
        while (end := self._buf.find(HEADER_END)) < 0:
            if len(self._buf) > MAX_HEADER_BYTES:
                self._take(self._buf.find(b"\n") + 1 or len(self._buf))
                return BadInput(f"a header longer than {MAX_HEADER_BYTES} bytes")
            if not await self._fill(stall=False):
                return BadInput("the input ended inside a header",
                                sample=self._take(len(self._buf)))
        glued = _glued_header(self._buf, end)
        if glued is not None:  # a fresh header follows bytes that are no header: drop those
            return BadInput("a malformed header", sample=self._take(glued))
        self._cut_short = None
        block = self._take(end + len(HEADER_END))[:end]
        length = content_length_of(block)
        if isinstance(length, str):
            return BadInput(f"a header with {length}", sample=block)
        return length

    async def _read_body(self, length: int) -> Message | BadInput:
        scanned, waited = 1, False
        while True:
            found = NEXT_HEADER.search(self._buf, scanned)
            if found is not None and found.start() < length:  # the next message came early
                return self._overrun(self._take(found.start()), length)
            if len(self._buf) >= length:
                return self._decode(self._take(length))
            scanned = max(1, len(self._buf) - NEXT_HEADER_SPAN)
            if await self._fill(stall=True):
                continue
            if self._eof:
                body = self._take(len(self._buf))
                return BadInput(f"the input ended {length - len(body)} bytes short of a "
                                f"{length}-byte message", True, request_id_of(body), body)
            complete = _leading_json(self._buf)
            if complete is not None:  # a whole message and silence: Content-Length too large
                return self._overrun(self._take(complete[1]), length)
            if not waited:
                log.warning("waiting for %d more bytes of a %d-byte message",
                            length - len(self._buf), length)
                waited = True

    def _overrun(self, body: bytes, length: int) -> BadInput:
        return BadInput(f"Content-Length {length} overruns a {len(body)}-byte message",
                        True, request_id_of(body), body)

    def _decode(self, body: bytes) -> Message | BadInput:
        try:
            return Message(json.loads(body))
        except ValueError as exc:
            problem = str(exc)
        complete = _leading_json(body)
        if complete is not None and body[complete[1]:].strip():
            # A whole message, then the start of the next: Content-Length was too large.
            self._buf[:0] = body[complete[1]:]
            return self._overrun(body[:complete[1]], len(body))
        self._cut_short = body  # the rest, if it follows, arrives as junk
        return BadInput(f"a {len(body)}-byte body that is not JSON ({problem})",
                        True, request_id_of(body), body)


def content_length_of(block: bytes) -> int | str:
    """The body length a header block announces, or what is wrong with it."""
    lengths = set()
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not HEADER_NAME.fullmatch(name):
            return "a malformed header line"
        if name.lower() == b"content-length":
            lengths.add(value.strip())
    if not lengths:
        return "no Content-Length"
    if len(lengths) > 1:
        return "conflicting Content-Length values"
    raw = lengths.pop()
    if not raw.isdigit():
        return "a Content-Length that is not a number"
    if int(raw) > MAX_BODY_BYTES:
        return f"a Content-Length above {MAX_BODY_BYTES} bytes"
    return int(raw)


def _unframed_message(junk: bytes) -> bytes | None:
    """The message body in junk: all of it, or what follows a header block that was unusable."""
    if junk.lstrip().startswith(b"{"):
        return junk.lstrip()
    after_header = junk.find(HEADER_END + b"{")
    return junk[after_header + len(HEADER_END):] if after_header >= 0 else None


def _glued_header(buf: bytearray, end: int) -> int | None:
    """Where a fresh header starts in the middle of a line before ``end`` (junk glued before)."""
    for found in NEXT_HEADER.finditer(buf, 1, end + len(HEADER_END)):
        if found.start() < 2 or buf[found.start() - 2:found.start()] != b"\r\n":
            return found.start()
    return None


def _leading_json(data: bytes | bytearray) -> tuple[Any, int] | None:
    """The JSON object ``data`` starts with and the byte offset where it ends, if complete."""
    text = bytes(data).decode("utf-8", "surrogateescape")
    try:
        value, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return value, len(text[:end].encode("utf-8", "surrogateescape"))


def request_id_of(fragment: bytes) -> int | str | None:
    """The id of the request a broken message was, read from its top level.

    Only an id next to a method counts (a response of the client has an id but no method), and
    only values that end before the fragment does (a cut ``12`` might have been ``123``).
    """
    text = fragment.decode("utf-8", "replace").lstrip()
    if not text.startswith("{"):
        return None
    fields: dict[str, str] = {}
    depth, key, value, previous = 0, None, None, ""
    for token in (t for t in JSON_TOKEN.findall(text) if not t.isspace()):
        if token == '"':  # a string cut in the middle: nothing after it can be trusted
            break
        depth += (token in ("{", "[")) - (token in ("}", "]"))
        if (depth == 1 and token == ",") or (depth == 0 and token == "}"):
            if key is not None and value is not None:
                fields[key] = value
            key = value = None
        elif depth == 1 and previous in ("{", ",") and token.startswith('"'):
            key = token
        elif depth == 1 and previous == ":" and token not in ("{", "["):
            value = token
            if token.startswith('"') and key is not None:  # a closed string is whole already
                fields[key] = value
        if depth == 0:
            break
        previous = token
    try:
        rid = json.loads(fields['"id"'])
        method = json.loads(fields['"method"'])
    except (KeyError, ValueError):
        return None
    valid = isinstance(rid, int | str) and not isinstance(rid, bool) and isinstance(method, str)
    return rid if valid else None

