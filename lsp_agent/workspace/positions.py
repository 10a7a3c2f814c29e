"""Positions in the server versus positions on the wire: the pure conversion.

Inside the server a column is a **code-point** index into its line: what a Python ``str``
indexes and what jedi reports (jedi's columns are code points). On the wire a column counts
code units of the position encoding negotiated at ``initialize`` (LSP 3.17): UTF-8 bytes,
UTF-16 code units (LSP's default) or UTF-32 code units (which are code points). A ``Point``
below is always code points; an LSP ``Position`` is always wire units.

Lines are LSP's: ``\\n``, ``\\r\\n`` and a lone ``\\r`` end a line and nothing else does
(``str.splitlines`` also breaks at form feeds, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and
``\\u2029``, which would shift every later line). A text has one more line than terminators, so
the end of ``"a\\n"`` is line 1, character 0. parso, and so jedi, split lines the same way.

Out-of-range input is clamped, never an error (LSP 3.17, ``Position``): a character past the
end of its line means the end of the line (before the terminator); a line past the last means
the end of the document; a negative number counts as 0. A wire column that falls inside one
character (the middle of a UTF-8 sequence or of a surrogate pair) moves back to that
character's start, except at the end of a range, where it moves on to the character's end: a
range covers every character it touches. (Neovim's code action range for a selection that ends
on a multi-byte character ends one code unit into it.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from lsprotocol.types import Position, Range

Encoding = Literal["utf-8", "utf-16", "utf-32"]
UTF8: Encoding = "utf-8"
UTF16: Encoding = "utf-16"
UTF32: Encoding = "utf-32"
DEFAULT_ENCODING: Encoding = UTF16  # what a client that offers nothing gets
SUPPORTED_ENCODINGS: tuple[Encoding, ...] = (UTF8, UTF16, UTF32)

_LINE_END = re.compile(r"\r\n|\r|\n")


def _utf8_units(ch: str) -> int:
    cp = ord(ch)
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def _utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


# Code units of one character, per encoding.
UNITS_PER_CHAR: dict[Encoding, Callable[[str], int]] = {
    UTF8: _utf8_units,
    UTF16: _utf16_units,
    UTF32: lambda ch: 1,
}


class Point(NamedTuple):
    """A position in code points: 0-based line, 0-based code-point column."""

    line: int
    column: int


def choose_encoding(offered: Sequence[str] | None) -> Encoding:
    """LSP 3.17: the first encoding the client lists that we support; else UTF-16."""
    for name in offered or ():
        for supported in SUPPORTED_ENCODINGS:
            if name == supported:  # also lsprotocol's PositionEncodingKind members
                return supported
    return DEFAULT_ENCODING


def unit_length(text: str, encoding: Encoding) -> int:
    """Length of ``text`` in code units of ``encoding``."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF16:
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    return len(text.encode("utf-8", "surrogatepass"))


def units_to_column(line: str, units: int, encoding: Encoding, round_up: bool = False) -> int:
    """Code-point column of a wire column on ``line`` (its content, without terminator). A
    column inside a character means its start, or its end with ``round_up`` (a range's end)."""
    if units <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    width = UNITS_PER_CHAR[encoding]
    seen = 0
    for index, ch in enumerate(line):
        seen += width(ch)
        if seen > units:  # ``units`` is inside this character (its start returned before)
            return index + 1 if round_up else index
        if seen == units:
            return index + 1
    return len(line)


def column_to_units(line: str, column: int, encoding: Encoding) -> int:
    """Wire column of a code-point column on ``line``, clamped to the line."""
    return unit_length(line[: max(column, 0)], encoding)


def split_lines(text: str) -> list[str]:
    """LSP's lines of ``text`` without their terminators; always at least one (maybe empty)."""
    return _LINE_END.split(text)


class TextLines:
    """LSP's lines of one fixed text: converts between offsets, points and wire positions."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]  # offset where each line starts
        self.content_ends = []  # offset where each line's content ends (its terminator starts)
        for m in _LINE_END.finditer(text):
            self.content_ends.append(m.start())
            self.starts.append(m.end())
        self.content_ends.append(len(text))

    @property
    def count(self) -> int:
        return len(self.starts)

    def content(self, line: int) -> str:
        """Line ``line`` without its terminator ("" past the end)."""
        if not 0 <= line < self.count:
            return ""
        return self.text[self.starts[line] : self.content_ends[line]]

    def end(self) -> Point:
        last = self.count - 1
        return Point(last, self.content_ends[last] - self.starts[last])

    # -- points (code points) ------------------------------------------------------------

    def clamp(self, line: int, column: int) -> Point:
        if line >= self.count:
            return self.end()
        line = max(line, 0)
        return Point(line, min(max(column, 0), self.content_ends[line] - self.starts[line]))

    def offset(self, point: Point | tuple[int, int]) -> int:
        """Index into the text of a (clamped) point."""
        line, column = self.clamp(*point)
        return self.starts[line] + column

    def point_at(self, offset: int) -> Point:
        """The point of a text index; an index inside a ``\\r\\n`` is the end of its line."""
        offset = min(max(offset, 0), len(self.text))
        line = _last_start_at_or_before(self.starts, offset)
        return Point(line, min(offset, self.content_ends[line]) - self.starts[line])

    # -- wire positions (code units of an encoding) -----------------------------------------

    def to_point(self, position: Position, encoding: Encoding, round_up: bool = False) -> Point:
        """A wire position as a clamped point (``round_up``: see ``units_to_column``)."""
        if position.line >= self.count:
            return self.end()
        line = max(position.line, 0)
        return Point(line, units_to_column(self.content(line), position.character, encoding,
                                           round_up))

    def to_position(self, point: Point | tuple[int, int], encoding: Encoding) -> Position:
        """A point (clamped first) as a wire position."""
        line, column = self.clamp(*point)
        return Position(line=line, character=column_to_units(self.content(line), column, encoding))

    def to_points(self, rng: Range, encoding: Encoding) -> tuple[Point, Point]:
        """A wire range as points, start first even if the client sent them reversed; it
        covers every character it touches (its end rounds up inside a character)."""
        first, last = rng.start, rng.end
        if (first.line, first.character) > (last.line, last.character):
            first, last = last, first
        return self.to_point(first, encoding), self.to_point(last, encoding, round_up=True)

    def to_range(self, start: Point | tuple[int, int], end: Point | tuple[int, int],
                 encoding: Encoding) -> Range:
        return Range(start=self.to_position(start, encoding), end=self.to_position(end, encoding))

    def wire_offset(self, position: Position, encoding: Encoding) -> int:
        """Index into the text of a wire position."""
        return self.offset(self.to_point(position, encoding))

    def end_position(self, encoding: Encoding) -> Position:
        """The wire position of the end of the document."""
        return self.to_position(self.end(), encoding)


def _last_start_at_or_before(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def replace_range(text: str, rng: Range, new_text: str, encoding: Encoding) -> str:
    """``text`` with the wire range ``rng`` replaced: one incremental ``didChange`` change."""
    lines = TextLines(text)
    start, end = lines.to_points(rng, encoding)
    return text[: lines.offset(start)] + new_text + text[lines.offset(end) :]
