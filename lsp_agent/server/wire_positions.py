"""The one boundary where positions change units: wire columns in, code points out, and back.

Every position or range that arrives from the client (requests, code action ranges and
diagnostics, prompt contexts, command arguments, editor-bridge answers, ``didChange`` ranges)
is converted here before anything else looks at it, and every one the server sends
(locations, ranges, hover spans, symbols, editor-bridge requests) is converted here on its way
out. Between the two the server speaks code points only (lsp_agent.workspace.positions says
why). Text edits the server sends are built in the client's encoding by
lsp_agent.edits.workspace_edit, which uses the same pure conversion.

A position is converted against the text it refers to: the open buffer if there is one,
else the file on disk. A file that cannot be read passes through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from lsp_agent.workspace.positions import (
    DEFAULT_ENCODING,
    Encoding,
    Point,
    TextLines,
    replace_range,
)

if TYPE_CHECKING:  # the editor models load with the first prompt's context
    from lsp_agent.types.editor import EditorContext, Range

log = logging.getLogger(__name__)

TextOf = Callable[[Path], str | None]


class WirePositions:
    def __init__(self, text_of: TextOf, encoding: Encoding = DEFAULT_ENCODING):
        self.encoding = encoding
        self._text_of = text_of
        self._cache: dict[Path, TextLines | None] | None = None

    def batch(self) -> WirePositions:
        """A converter that reads each file once: for one answer with many locations."""
        batch = WirePositions(self._text_of, self.encoding)
        batch._cache = {}
        return batch

    def lines(self, path: Path) -> TextLines | None:
        if self._cache is not None and path in self._cache:
            return self._cache[path]
        text = self._text_of(path)
        lines = TextLines(text) if text is not None else None
        if self._cache is not None:
            self._cache[path] = lines
        return lines

    # -- from the client -----------------------------------------------------------------

    def point_in(self, path: Path, position: lsp.Position) -> Point:
        lines = self.lines(path)
        if lines is None:
            return Point(position.line, position.character)
        return lines.to_point(position, self.encoding)

    def range_in(self, path: Path, rng: lsp.Range) -> tuple[Point, Point]:
        lines = self.lines(path)
        if lines is None:
            return Point(rng.start.line, rng.start.character), Point(rng.end.line,
                                                                     rng.end.character)
        return lines.to_points(rng, self.encoding)

    def from_wire(self, path: Path, line: int, character: int) -> tuple[int, int]:
        """For the editor bridge's answers (plain JSON numbers: negative ones count as 0)."""
        position = lsp.Position(line=max(line, 0), character=max(character, 0))
        return tuple(self.point_in(path, position))  # type: ignore[return-value]

    def diagnostic_in(self, path: Path, diagnostic: dict[str, Any]) -> dict[str, Any]:
        """An LSP Diagnostic as JSON, its range in code points (other fields untouched)."""
        rng = _json_range(diagnostic.get("range"))
        if rng is None:
            return diagnostic
        start, end = self.range_in(path, rng)
        return {**diagnostic, "range": _point_json(start, end)}

    def context_in(self, context: EditorContext) -> EditorContext:
        """A prompt's editor context with its range and diagnostics in code points."""
        try:
            path = context.path
        except ValueError:
            return context
        batch = self.batch()
        rng = batch._context_range(path, context.range) if context.range else None
        diagnostics = [
            d.model_copy(update={"range": batch._context_range(path, d.range)})
            for d in context.diagnostics
        ]
        return context.model_copy(update={"range": rng, "diagnostics": diagnostics})

    def _context_range(self, path: Path, rng: Range) -> Range:
        start, end = self.range_in(path, _lsp_range(rng.start.line, rng.start.character,
                                                    rng.end.line, rng.end.character))
        from lsp_agent.types.editor import Position, Range  # models: with the first context

        return Range(start=Position(line=start.line, character=start.column),
                     end=Position(line=end.line, character=end.column))

    # -- to the client -------------------------------------------------------------------

    def position_out(self, path: Path, point: Point | tuple[int, int]) -> lsp.Position:
        lines = self.lines(path)
        if lines is None:
            return lsp.Position(line=point[0], character=point[1])
        return lines.to_position(point, self.encoding)

    def range_out(self, path: Path, start: Point | tuple[int, int],
                  end: Point | tuple[int, int]) -> lsp.Range:
        return lsp.Range(start=self.position_out(path, start), end=self.position_out(path, end))

    def to_wire(self, path: Path, line: int, column: int) -> tuple[int, int]:
        position = self.position_out(path, (line, column))
        return position.line, position.character


def apply_content_changes(
    text: str, changes: Sequence[lsp.TextDocumentContentChangeEvent], encoding: Encoding
) -> str:
    """A buffer after one ``didChange``: each change applies to the result of the previous."""
    for change in changes:
        if isinstance(change, lsp.TextDocumentContentChangePartial):
            text = replace_range(text, change.range, change.text, encoding)
        else:
            text = change.text
    return text


def _lsp_range(l1: int, c1: int, l2: int, c2: int) -> lsp.Range:
    return lsp.Range(start=lsp.Position(line=l1, character=c1),
                     end=lsp.Position(line=l2, character=c2))


def _json_range(raw: Any) -> lsp.Range | None:
    """A range from JSON the client sent; negative numbers count as 0, junk as no range."""
    try:
        start, end = raw["start"], raw["end"]
        numbers = [max(0, int(n)) for n in (start["line"], start["character"],
                                            end["line"], end["character"])]
    except (KeyError, TypeError, ValueError):
        return None
    return _lsp_range(*numbers)


def _point_json(start: Point, end: Point) -> dict[str, Any]:
    return {"start": {"line": start.line, "character": start.column},
            "end": {"line": end.line, "character": end.column}}
