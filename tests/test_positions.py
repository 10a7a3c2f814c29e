"""Position conversion between code points and the three LSP position encodings."""

from __future__ import annotations

import random

import pytest
from lsprotocol.types import Position, Range

from lsp_agent.edits.workspace_edit import apply_text_edits, text_edits_between
from lsp_agent.workspace.positions import (
    UTF8,
    UTF16,
    UTF32,
    Point,
    TextLines,
    choose_encoding,
    replace_range,
    split_lines,
    unit_length,
)

ENCODINGS = (UTF8, UTF16, UTF32)

# (name, text, code-point position, {encoding: wire character}). The wire column of the same
# place differs per encoding: é is 2 UTF-8 bytes, 中 3, 😀 4 bytes and 2 UTF-16 units.
POINTS = [
    ("ascii", "x = subtract(7, 2)\n", Point(0, 4), {UTF8: 4, UTF16: 4, UTF32: 4}),
    ("after accents", "résumé = subtract(7, 2)\n", Point(0, 9), {UTF8: 11, UTF16: 9, UTF32: 9}),
    ("cjk", 'x = "中文" + y', Point(0, 9), {UTF8: 13, UTF16: 9, UTF32: 9}),
    ("emoji outside the BMP", 's = "😀" + t', Point(0, 7), {UTF8: 10, UTF16: 8, UTF32: 7}),
    ("two emoji", "😀😀z", Point(0, 2), {UTF8: 8, UTF16: 4, UTF32: 2}),
    ("second line after crlf", "é\r\nçà = 1\r\n", Point(1, 2), {UTF8: 4, UTF16: 2, UTF32: 2}),
    ("lone cr ends a line", "a\rœb", Point(1, 1), {UTF8: 2, UTF16: 1, UTF32: 1}),
    ("last line without newline", "a\nfin = '😀'", Point(1, 9), {UTF8: 12, UTF16: 10, UTF32: 9}),
    ("end of text after newline", "ü\n", Point(1, 0), {UTF8: 0, UTF16: 0, UTF32: 0}),
    ("form feed is not a line end", "a\x0cé\nb", Point(0, 3), {UTF8: 4, UTF16: 3, UTF32: 3}),
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("name", "text", "point", "wire"), POINTS, ids=[p[0] for p in POINTS])
def test_point_and_wire_position_convert_both_ways(name, text, point, wire, encoding):
    lines = TextLines(text)
    position = Position(line=point.line, character=wire[encoding])
    assert lines.to_position(point, encoding) == position
    assert lines.to_point(position, encoding) == point


# Out of range or inside one character: (name, text, wire position, {encoding: point}).
CLAMPED = [
    ("character past the line end", "ab\ncd", (0, 99), {e: Point(0, 2) for e in ENCODINGS}),
    ("past the end of a crlf line", "ab\r\ncd", (0, 3), {e: Point(0, 2) for e in ENCODINGS}),
    ("line past the end of the file", "ab\ncd", (9, 0), {e: Point(1, 2) for e in ENCODINGS}),
    ("line past the end, final newline", "ab\n", (5, 3), {e: Point(1, 0) for e in ENCODINGS}),
    ("empty document", "", (3, 3), {e: Point(0, 0) for e in ENCODINGS}),
    ("inside a surrogate pair / utf-8 sequence", "a😀b", (0, 2),
     {UTF8: Point(0, 1), UTF16: Point(0, 1), UTF32: Point(0, 2)}),
    ("inside a two-byte letter", "éa", (0, 1), {UTF8: Point(0, 0), UTF16: Point(0, 1),
                                               UTF32: Point(0, 1)}),
    ("past the end of a line of emoji", "😀", (0, 7), {e: Point(0, 1) for e in ENCODINGS}),
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("name", "text", "wire", "expected"), CLAMPED, ids=[c[0] for c in CLAMPED])
def test_out_of_range_wire_positions_are_clamped(name, text, wire, expected, encoding):
    lines = TextLines(text)
    assert lines.to_point(Position(line=wire[0], character=wire[1]), encoding) == expected[encoding]


# A range ending inside a character covers it: Neovim's code action range for a visual
# selection of "résumé" ends one byte into the final "é" (utf-8 column 8 of 9).
# (name, text, wire range, encoding, selected text)
RANGES_INSIDE = [
    ("utf-8 end inside é", "résumé = 1", ((0, 0), (0, 8)), UTF8, "résumé"),
    ("utf-8 end inside 中", "x中y", ((0, 0), (0, 2)), UTF8, "x中"),
    ("utf-8 start and end inside 😀", "a😀b", ((0, 2), (0, 3)), UTF8, "😀"),
    ("utf-16 end inside a surrogate pair", "a😀b", ((0, 0), (0, 2)), UTF16, "a😀"),
    ("reversed, end inside é", "éa", ((0, 1), (0, 0)), UTF8, "é"),
    ("utf-16 end at a boundary", "a😀b", ((0, 1), (0, 3)), UTF16, "😀"),
]


@pytest.mark.parametrize(("name", "text", "rng", "encoding", "selected"), RANGES_INSIDE,
                         ids=[r[0] for r in RANGES_INSIDE])
def test_a_range_covers_every_character_it_touches(name, text, rng, encoding, selected):
    lines = TextLines(text)
    (l1, c1), (l2, c2) = rng
    start, end = lines.to_points(Range(start=Position(line=l1, character=c1),
                                       end=Position(line=l2, character=c2)), encoding)
    assert text[lines.offset(start): lines.offset(end)] == selected


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_points_out_of_range_are_clamped_before_conversion(encoding):
    lines = TextLines("é\nzz")
    assert lines.to_position(Point(0, 50), encoding).character == unit_length("é", encoding)
    assert lines.to_position(Point(7, 0), encoding) == Position(line=1, character=2)


@pytest.mark.parametrize(
    ("text", "end"),
    [("", Point(0, 0)), ("a\n", Point(1, 0)), ("a\r\nbé", Point(1, 2)), ("x\r", Point(1, 0))],
)
def test_end_of_document(text, end):
    assert TextLines(text).end() == end
    assert TextLines(text).offset(end) == len(text)


def test_offsets_and_points_round_trip_and_crlf_middle_is_line_end():
    text = "ab\r\n😀c\rd"
    lines = TextLines(text)
    for offset in range(len(text) + 1):
        point = lines.point_at(offset)
        if text[offset - 1 : offset + 1] == "\r\n":
            assert point == Point(0, 2)  # between \r and \n: the end of the line's content
        else:
            assert lines.offset(point) == offset


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["utf-8", "utf-16"], UTF8),  # Neovim 0.11
        (["utf-16"], UTF16),  # VS Code
        (["utf-32"], UTF32),
        (["utf-7", "utf-32", "utf-8"], UTF32),  # unknown ones are skipped, order is kept
        (["latin-1"], UTF16),  # nothing we support: the mandatory default
        ([], UTF16),
        (None, UTF16),  # an LSP 3.0 client declares nothing
    ],
)
def test_choose_encoding_takes_the_clients_first_supported(offered, chosen):
    assert choose_encoding(offered) == chosen


def test_split_lines_breaks_only_where_lsp_does():
    assert split_lines("a\r\nb\rc\nd\x0ce\u2028f\x85") == ["a", "b", "c", "d\x0ce\u2028f\x85"]
    assert split_lines("") == [""]
    assert split_lines("a\n") == ["a", ""]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("text", "rng", "new", "expected"),
    [
        ("résumé = x\n", ((0, 6), (0, 6)), "!", "résumé! = x\n"),
        ("a😀b", ((0, 0), (0, 99)), "z", "z"),
        ("line\r\nnext", ((0, 4), (1, 0)), "", "linenext"),
        ("end", ((4, 0), (4, 0)), "\n", "end\n"),
        ("ab", ((0, 2), (0, 0)), "X", "X"),  # reversed range: treated as start <= end
    ],
)
def test_replace_range_is_one_incremental_change(text, rng, new, expected, encoding):
    lines = TextLines(text)
    # Express the code-point range in this encoding's units first.
    (l1, c1), (l2, c2) = rng
    wire = Range(start=lines.to_position((l1, c1), encoding),
                 end=lines.to_position((l2, c2), encoding))
    assert replace_range(text, wire, new, encoding) == expected


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("seed", range(60))
def test_random_texts_round_trip_in_every_encoding(seed, encoding):
    rng = random.Random(seed)
    pieces = ["a", "é", "中", "😀", "\n", "\r\n", "\r", " ", "\x0c"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
    lines = TextLines(text)
    for line_number, content in enumerate(split_lines(text)):
        for column in range(len(content) + 1):
            wire = lines.to_position((line_number, column), encoding)
            assert wire.character == unit_length(content[:column], encoding)
            expected_units = len(content[:column].encode(
                {UTF8: "utf-8", UTF16: "utf-16-le", UTF32: "utf-32-le"}[encoding]))
            assert wire.character * {UTF8: 1, UTF16: 2, UTF32: 4}[encoding] == expected_units
            assert lines.to_point(wire, encoding) == (line_number, column)
    new = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
    assert apply_text_edits(text, text_edits_between(text, new, encoding), encoding) == new
