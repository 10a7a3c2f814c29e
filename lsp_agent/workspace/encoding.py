"""A file's bytes as text and back again, byte for byte.

The agent works on text; the disk holds bytes. Reading decodes with an encoding detected from
the bytes, and writing encodes with that same encoding, so every byte the agent did not change
comes back exactly as it was: a latin-1 file stays latin-1, a BOM stays, a stray invalid byte in
a UTF-8 file stays that byte. Detection only ever picks an encoding whose decoding round-trips
(``encode(decode(data)) == data`` is checked), so "byte-exact outside the change" holds by
construction rather than by hope.

Detection, in order (first match wins):

1. a byte order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE): that encoding, BOM kept;
2. a NUL byte near the start: binary, refused;
3. valid UTF-8: UTF-8;
4. UTF-8 with at most as many invalid bytes as valid non-ASCII characters: UTF-8 with
   ``surrogateescape`` (each invalid byte becomes a lone surrogate U+DC80..U+DCFF in the text
   and turns back into the same byte);
5. otherwise a single-byte encoding: cp1252 when the file uses its printable range
   0x80-0x9F (curly quotes, the euro sign), else latin-1. Both map every byte to one character.

Newline style needs nothing here: the text keeps ``\\r\\n`` and ``\\r`` as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BINARY_SNIFF_BYTES = 8192
REPLACEMENT_CHAR = "\ufffd"

# Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 BE"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)
# Bytes that cp1252 prints but latin-1 maps to C1 control characters (never seen in real text).
_CP1252_ONLY = frozenset(range(0x80, 0xA0))
_SINGLE_BYTE_LABELS = {"cp1252": "cp1252 (Windows-1252)", "latin-1": "latin-1 (ISO-8859-1)"}
_SURROGATE = re.compile("[\ud800-\udfff]")


class UndecodableBytes(ValueError):
    """Bytes that are not text in any encoding we can round-trip (binary, truncated UTF-16)."""


class UnencodableText(ValueError):
    """Text with a character the file's encoding cannot hold; the message names it and where."""


@dataclass(frozen=True)
class TextEncoding:
    """How a file's text is stored: codec, byte order mark and how invalid bytes are kept."""

    codec: str = "utf-8"
    bom: bytes = b""
    errors: str = "strict"  # "surrogateescape": invalid UTF-8 bytes kept as lone surrogates

    @property
    def is_utf8(self) -> bool:
        return self.codec == "utf-8" and not self.bom and self.errors == "strict"

    @property
    def is_single_byte(self) -> bool:
        return self.codec in _SINGLE_BYTE_LABELS

    @property
    def label(self) -> str:
        """A name for people and the model: ``UTF-16 LE with BOM``, ``cp1252 (Windows-1252)``."""
        name = _SINGLE_BYTE_LABELS.get(self.codec) or next(
            (label for bom, codec, label in _BOMS if codec == self.codec), self.codec.upper())
        if self.bom:
            name += " with BOM"
        if self.errors == "surrogateescape":
            name += " with invalid bytes"
        return name

    def decode(self, data: bytes) -> str:
        body = data[len(self.bom):] if self.bom and data.startswith(self.bom) else data
        return body.decode(self.codec, self.errors)

    def encode(self, text: str) -> bytes:
        """The bytes of ``text`` in this encoding (BOM included), or UnencodableText."""
        try:
            return self.bom + text.encode(self.codec, self.errors)
        except UnicodeEncodeError as exc:
            raise UnencodableText(_unencodable_message(text, exc, self)) from None


UTF8 = TextEncoding()


def decode_bytes(data: bytes) -> tuple[str, TextEncoding]:
    """The text of a file's bytes and the encoding that gives exactly these bytes back."""
    text, encoding = _detect(data)
    if encoding.encode(text) != data:  # cannot happen for the codecs above; never write on hope
        raise UndecodableBytes(f"its bytes do not round-trip through {encoding.label}")
    return text, encoding


def _detect(data: bytes) -> tuple[str, TextEncoding]:
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            return _decode_with_bom(data, bom, codec, label)
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise UndecodableBytes("it is a binary file")
    try:
        return data.decode("utf-8"), UTF8
    except UnicodeDecodeError:
        pass
    escaped = data.decode("utf-8", "surrogateescape")
    invalid = count_escaped_bytes(escaped)
    valid_non_ascii = sum(1 for ch in escaped if ord(ch) > 0x7F) - invalid
    if valid_non_ascii >= invalid and valid_non_ascii:  # UTF-8 text with a few stray bytes
        return escaped, TextEncoding("utf-8", errors="surrogateescape")
    return _decode_single_byte(data)


def _decode_with_bom(data: bytes, bom: bytes, codec: str, label: str) -> tuple[str, TextEncoding]:
    body = data[len(bom):]
    # UTF-8 after a BOM may still hold stray bytes; the UTF-16/32 codecs cannot keep a broken
    # code unit, so such a file is refused rather than silently repaired.
    errors = "strict"
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        if codec != "utf-8":
            raise UndecodableBytes(f"it starts with a {label} byte order mark but is not "
                                   f"valid {label} ({exc.reason})") from None
        errors = "surrogateescape"
        text = body.decode(codec, errors)
    return text, TextEncoding(codec, bom, errors)


def _decode_single_byte(data: bytes) -> tuple[str, TextEncoding]:
    if any(b in _CP1252_ONLY for b in data):
        try:
            return data.decode("cp1252"), TextEncoding("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90 or 0x9D: not cp1252 after all
            pass
    return data.decode("latin-1"), TextEncoding("latin-1")


def count_escaped_bytes(text: str) -> int:
    """How many invalid bytes ``surrogateescape`` kept in ``text`` (as U+DC80..U+DCFF)."""
    return sum(1 for ch in text if "\udc80" <= ch <= "\udcff")


def printable(text: str) -> str:
    """``text`` with lone surrogates (kept invalid bytes) shown as U+FFFD.

    Lone surrogates cannot be encoded as UTF-8, so they must never reach JSON for the model
    API; the file itself keeps its bytes, only what is shown changes. Same length as ``text``.
    """
    return _SURROGATE.sub(REPLACEMENT_CHAR, text)


def _unencodable_message(text: str, exc: UnicodeEncodeError, encoding: TextEncoding) -> str:
    bad = text[exc.start:exc.end]
    line = text.count("\n", 0, exc.start) + 1
    shown = ", ".join(f"{printable(ch)!r} (U+{ord(ch):04X})" for ch in dict.fromkeys(bad[:5]))
    return f"line {line} has {shown}, which {encoding.label} cannot encode"
