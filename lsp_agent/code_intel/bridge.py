"""Code intelligence borrowed from the editor, for every language it knows.

An editor that sets ``editorBridge: true`` in its initialization options answers the
server-to-client requests ``agent/editor/*`` (docs/protocol.md, "Editor bridge") with what its
own language servers know. ``EditorBridge`` speaks those requests and returns the same result
models as ``JediIntel``, so the agent's code-intel tools format both alike. ``RoutedIntel``
sends Python files to jedi and everything else to the editor.

Every request is bounded by ``timeout``; an editor that does not answer in time gives a
``timed_out`` result, an editor that fails gives an empty one (and a log line).

The editor speaks the negotiated position encoding, the agent's tools code points: every
position sent and every range answered crosses ``positions`` (the server's WirePositions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.code_intel.bridge_methods import (
    DEFINITION,
    DIAGNOSTICS,
    DOCUMENT_SYMBOLS,
    HOVER,
    REFERENCES,
    WORKSPACE_SYMBOLS,
)
from lsp_agent.code_intel.jedi_intel import (
    HoverInfo,
    OutlineSymbol,
    QueryResult,
    Span,
    SymbolLocation,
    is_python_path,
)
from lsp_agent.types.jsonutil import plain
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.positions import split_lines

log = logging.getLogger(__name__)


# LSP SymbolKind numbers -> the kind words the tools print.
SYMBOL_KINDS = {
    1: "file",
    2: "module",
    3: "namespace",
    4: "package",
    5: "class",
    6: "method",
    7: "property",
    8: "field",
    9: "constructor",
    10: "enum",
    11: "interface",
    12: "function",
    13: "variable",
    14: "constant",
    15: "string",
    16: "number",
    17: "boolean",
    18: "array",
    19: "object",
    20: "key",
    21: "null",
    22: "enum member",
    23: "struct",
    24: "event",
    25: "operator",
    26: "type parameter",
}

Sender = Callable[[str, dict[str, Any]], Awaitable[Any]]
Lines = Callable[[Path], list[str] | None]


class PositionConverter(Protocol):
    """Code-point columns to and from the client's encoding, per file."""

    def to_wire(self, path: Path, line: int, column: int) -> tuple[int, int]: ...
    def from_wire(self, path: Path, line: int, character: int) -> tuple[int, int]: ...


class SameUnits:
    """A client whose columns are code points (UTF-32): nothing to convert."""

    def to_wire(self, path: Path, line: int, column: int) -> tuple[int, int]:
        return line, column

    def from_wire(self, path: Path, line: int, character: int) -> tuple[int, int]:
        return line, character


class BridgeTimeout(Exception):
    pass


class EditorBridge:
    """Asks the editor; results use the jedi result models (0-based lines and columns)."""

    def __init__(
        self,
        send: Sender,
        *,
        timeout: float = 10.0,
        tool_timeout: float | None = None,
        max_results: int | None = None,  # None: complete answers (the tools cap and say so)
        lines_of: Lines | None = None,
        positions: PositionConverter | None = None,
    ):
        self._send = send
        self.timeout = timeout
        self.tool_timeout = tool_timeout or timeout
        self.max_results = max_results
        self._lines_of = lines_of or _disk_lines
        self._positions = positions or SameUnits()

    async def definition(self, path: Path, line: int, column: int) -> QueryResult[SymbolLocation]:
        return await self._locations(DEFINITION, self._at(path, line, column))

    async def references(
        self, path: Path, line: int, column: int, include_declaration: bool = True
    ) -> QueryResult[SymbolLocation]:
        params = {**self._at(path, line, column), "includeDeclaration": include_declaration}
        return await self._locations(REFERENCES, params)

    async def hover(self, path: Path, line: int, column: int) -> QueryResult[HoverInfo]:
        try:
            raw = await self._ask(HOVER, self._at(path, line, column))
        except BridgeTimeout:
            return QueryResult(timed_out=True)
        markdown = _hover_markdown(raw)
        if not markdown:
            return QueryResult()
        span = Span(line=line, column=column, end_line=line, end_column=column)
        info = HoverInfo(
            name="", kind="symbol", signature=None, docstring="", markdown=markdown, span=span
        )
        return QueryResult(items=[info])

    async def document_symbols(self, path: Path) -> QueryResult[OutlineSymbol]:
        try:
            raw = await self._ask(DOCUMENT_SYMBOLS, {"uri": _uri(path)})
        except BridgeTimeout:
            return QueryResult(timed_out=True)
        span_in = self._span_in(path)
        symbols = [s for item in _list(raw) if (s := _outline(item, span_in)) is not None]
        return _capped(symbols, self.max_results)

    async def workspace_symbols(
        self, query: str, limit: int | None = None
    ) -> QueryResult[SymbolLocation]:
        try:
            raw = await self._ask(WORKSPACE_SYMBOLS, {"query": query})
        except BridgeTimeout:
            return QueryResult(timed_out=True)
        found = [loc for item in _list(raw) if (loc := self._symbol_location(item)) is not None]
        caps = [c for c in (limit, self.max_results) if c is not None]
        return _capped(found, min(caps) if caps else None)

    async def diagnostics(self, path: Path | None) -> dict[Path, list[dict[str, Any]]] | None:
        """The editor's diagnostics for one file (or all files); None when it cannot say."""
        try:
            raw = await self._ask(DIAGNOSTICS, {"uri": _uri(path)} if path else {})
        except BridgeTimeout:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            return None
        out: dict[Path, list[dict[str, Any]]] = {}
        for entry in raw["items"]:
            fs = to_fs_path(entry.get("uri", "")) if isinstance(entry, dict) else None
            items = entry.get("diagnostics") if isinstance(entry, dict) else None
            if fs and isinstance(items, list):
                span_in = self._span_in(Path(fs))
                out[Path(fs)] = [_diagnostic_in(d, span_in) for d in items if isinstance(d, dict)]
        return out

    # -------------------------------------------------------------- plumbing

    def _at(self, path: Path, line: int, column: int) -> dict[str, Any]:
        line, character = self._positions.to_wire(path, line, column)
        return {"uri": _uri(path), "position": {"line": line, "character": character}}

    def _span_in(self, path: Path) -> SpanReader:
        """Reads an answered LSP range of ``path`` as a Span in code points."""

        def read(rng: Any) -> Span | None:
            span = _span(rng)
            if span is None:
                return None
            line, column = self._positions.from_wire(path, span.line, span.column)
            end_line, end_column = self._positions.from_wire(path, span.end_line, span.end_column)
            return Span(line=line, column=column, end_line=end_line, end_column=end_column)

        return read

    async def _ask(self, method: str, params: dict[str, Any]) -> Any:
        try:
            raw = await asyncio.wait_for(self._send(method, params), self.timeout)
        except TimeoutError:
            log.warning("%s: no answer from the editor within %g s", method, self.timeout)
            raise BridgeTimeout(method) from None
        except Exception as exc:  # the editor failed; report nothing rather than crash the tool
            log.warning("%s failed in the editor: %s", method, exc)
            return None
        return plain(raw)

    async def _locations(self, method: str, params: dict[str, Any]) -> QueryResult[SymbolLocation]:
        try:
            raw = await self._ask(method, params)
        except BridgeTimeout:
            return QueryResult(timed_out=True)
        if isinstance(raw, dict):  # a single Location is allowed by LSP
            raw = [raw]
        found = [loc for item in _list(raw) if (loc := self._location(item)) is not None]
        return _capped(found, self.max_results)

    def _location(self, item: Any, name: str = "", kind: str = "symbol") -> SymbolLocation | None:
        if not isinstance(item, dict):
            return None
        uri = item.get("uri") or item.get("targetUri")
        rng = item.get("targetSelectionRange") or item.get("range")
        fs = to_fs_path(uri) if isinstance(uri, str) else None
        span = self._span_in(Path(fs))(rng) if fs else None
        if not fs or span is None:
            return None
        path = Path(fs)
        lines = self._lines_of(path)
        text = lines[span.line] if lines is not None and span.line < len(lines) else None
        return SymbolLocation(
            path=path,
            line=span.line,
            column=span.column,
            end_line=span.end_line,
            end_column=span.end_column,
            name=name or _word_at(text, span.column),
            kind=kind,
            line_text=text,
        )

    def _symbol_location(self, item: Any) -> SymbolLocation | None:
        if not isinstance(item, dict) or not isinstance(item.get("location"), dict):
            return None
        loc = self._location(
            item["location"],
            str(item.get("name", "")),
            _kind_name(item.get("kind")),
        )
        container = item.get("containerName")
        if loc is not None and container:
            loc.full_name = f"{container}.{loc.name}"
        return loc


class RoutedIntel:
    """jedi for Python files, the editor for the rest (and for workspace symbols)."""

    def __init__(self, jedi: Any, bridge: EditorBridge):
        self.jedi = jedi
        self.bridge = bridge
        self.timeout = bridge.timeout
        self.tool_timeout = getattr(jedi, "tool_timeout", bridge.tool_timeout)
        self.handles_all_languages = True

    def _for(self, path: Path) -> Any:
        return self.jedi if is_python_path(path) else self.bridge

    async def definition(self, path: Path, line: int, column: int) -> QueryResult[SymbolLocation]:
        return await self._for(path).definition(path, line, column)

    async def references(self, path: Path, line: int, column: int) -> QueryResult[SymbolLocation]:
        return await self._for(path).references(path, line, column)

    async def hover(self, path: Path, line: int, column: int) -> QueryResult[HoverInfo]:
        return await self._for(path).hover(path, line, column)

    async def document_symbols(self, path: Path) -> QueryResult[OutlineSymbol]:
        return await self._for(path).document_symbols(path)

    async def workspace_symbols(
        self, query: str, limit: int | None = None
    ) -> QueryResult[SymbolLocation]:
        python, editor = await asyncio.gather(
            self.jedi.workspace_symbols(query, limit), self.bridge.workspace_symbols(query, limit)
        )
        seen = {(loc.path, loc.line) for loc in python.items}
        others = [
            loc
            for loc in editor.items
            if not is_python_path(loc.path) and (loc.path, loc.line) not in seen
        ]
        items = [*python.items, *others]
        capped = _capped(items, limit)
        return QueryResult(
            items=capped.items,
            truncated=python.truncated or editor.truncated or capped.truncated,
            timed_out=python.timed_out and editor.timed_out,
        )


class EditorDiagnostics(DiagnosticsStore):
    """Diagnostics from the editor's own language servers, plus what prompts passed in."""

    def __init__(self, bridge: EditorBridge):
        super().__init__()
        self.bridge = bridge

    async def diagnostics(self, path: Path) -> list[dict[str, Any]]:
        known = await super().diagnostics(path)
        editor = await self.bridge.diagnostics(path)
        if editor is None:
            return known
        return _merged(editor.get(path, []), known)

    async def all_diagnostics(self) -> dict[Path, list[dict[str, Any]]]:  # type: ignore[override]
        known = super().all_diagnostics()
        editor = await self.bridge.diagnostics(None)
        if editor is None:
            return known
        paths = set(known) | set(editor)
        merged = {p: _merged(editor.get(p, []), known.get(p, [])) for p in paths}
        return {p: items for p, items in merged.items() if items}


# --------------------------------------------------------------------------- helpers


def _capped(items: list[Any], limit: int | None) -> QueryResult[Any]:
    if limit is None:
        return QueryResult(items=items)
    return QueryResult(items=items[:limit], truncated=len(items) > limit)

def _merged(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(first)
    out.extend(d for d in second if d not in out)
    return out


def _uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


SpanReader = Callable[[Any], "Span | None"]


def _diagnostic_in(diagnostic: dict[str, Any], span_in: SpanReader) -> dict[str, Any]:
    span = span_in(diagnostic.get("range"))
    if span is None:
        return diagnostic
    return {**diagnostic, "range": {
        "start": {"line": span.line, "character": span.column},
        "end": {"line": span.end_line, "character": span.end_column}}}


def _list(raw: Any) -> list[Any]:
    return raw if isinstance(raw, list) else []


def _span(rng: Any) -> Span | None:
    try:
        start, end = rng["start"], rng["end"]
        return Span(
            line=int(start["line"]),
            column=int(start["character"]),
            end_line=int(end["line"]),
            end_column=int(end["character"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _word_at(text: str | None, column: int) -> str:
    if not text:
        return ""
    end = column
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[column:end]


def _hover_markdown(raw: Any) -> str:
    """LSP Hover contents in any of its shapes, as Markdown."""
    contents = raw.get("contents") if isinstance(raw, dict) else None
    parts = contents if isinstance(contents, list) else [contents]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and "language" in part:
            out.append(f"```{part['language']}\n{part.get('value', '')}\n```")
        elif isinstance(part, dict):
            out.append(str(part.get("value", "")))
    return "\n\n".join(p for p in out if p.strip())


def _outline(item: Any, span_in: SpanReader) -> OutlineSymbol | None:
    """A DocumentSymbol (or a SymbolInformation, flat) as an OutlineSymbol."""
    if not isinstance(item, dict) or "name" not in item:
        return None
    rng = span_in(item.get("range") or (item.get("location") or {}).get("range"))
    if rng is None:
        return None
    selection = span_in(item.get("selectionRange")) or rng
    children = [c for child in _list(item.get("children"))
                if (c := _outline(child, span_in)) is not None]
    return OutlineSymbol(
        name=str(item["name"]),
        kind=_kind_name(item.get("kind")),
        detail=str(item.get("detail") or ""),
        range=rng,
        selection=selection,
        children=children,
    )


def _disk_lines(path: Path) -> list[str] | None:
    try:
        return split_lines(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def _kind_name(kind: object) -> str:
    """An LSP SymbolKind number as the name our tools show; anything else is a "symbol"."""
    return SYMBOL_KINDS.get(kind, "symbol") if isinstance(kind, int) else "symbol"
