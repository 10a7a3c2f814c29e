"""Standard LSP features for Python files, answered by JediIntel.

Handlers are registered when the server is built (pygls fixes its capabilities from the
registered features at initialize), so each one asks ``intel_for()`` per request and answers
empty when code intelligence is switched off or there is no workspace. Handlers are ``async``
and JediIntel runs jedi in a worker process, so the event loop never blocks.

Columns are passed through as code points; they differ from LSP's UTF-16 columns only on
lines with characters outside the Basic Multilingual Plane before the position.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.code_intel.jedi_intel import (
    JediIntel,
    OutlineSymbol,
    QueryResult,
    Span,
    SymbolLocation,
    is_python_path,
)

log = logging.getLogger(__name__)

Q = TypeVar("Q", bound=QueryResult)

_OUTLINE_KINDS = {
    "class": types.SymbolKind.Class,
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "property": types.SymbolKind.Property,
    "variable": types.SymbolKind.Variable,
    "constant": types.SymbolKind.Constant,
    "attribute": types.SymbolKind.Field,
}

_JEDI_KINDS = {
    "module": types.SymbolKind.Module,
    "class": types.SymbolKind.Class,
    "function": types.SymbolKind.Function,
    "property": types.SymbolKind.Property,
    "instance": types.SymbolKind.Variable,
    "statement": types.SymbolKind.Variable,
    "param": types.SymbolKind.Variable,
}


def register_language_features(
    ls: LanguageServer, intel_for: Callable[[], JediIntel | None]
) -> None:
    """Register definition, references, hover, documentSymbol and workspace/symbol on ``ls``."""

    def target(uri: str) -> tuple[JediIntel, Path] | None:
        intel = intel_for()
        fs_path = to_fs_path(uri)
        if intel is None or fs_path is None or not is_python_path(Path(fs_path)):
            return None
        return intel, Path(fs_path)

    @ls.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def definition(params: types.DefinitionParams) -> list[types.Location] | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        pos = params.position
        result = await _guarded(intel.definition(path, pos.line, pos.character))
        return [_location(loc) for loc in result.items] if result else None

    @ls.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def references(params: types.ReferenceParams) -> list[types.Location] | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        pos = params.position
        query = intel.references(path, pos.line, pos.character, params.context.include_declaration)
        result = await _guarded(query)
        return [_location(loc) for loc in result.items] if result else None

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(params: types.HoverParams) -> types.Hover | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        pos = params.position
        result = await _guarded(intel.hover(path, pos.line, pos.character))
        if not result or not result.items or not result.items[0].markdown:
            return None
        info = result.items[0]
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=info.markdown),
            range=_range(info.span),
        )

    @ls.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(
        params: types.DocumentSymbolParams,
    ) -> list[types.DocumentSymbol] | list[types.SymbolInformation] | None:
        uri = params.text_document.uri
        found = target(uri)
        if found is None:
            return None
        intel, path = found
        result = await _guarded(intel.document_symbols(path))
        if not result:
            return None
        if _client_wants_hierarchy(ls):
            return [_document_symbol(symbol) for symbol in result.items]
        return [info for symbol in result.items for info in _flat_symbols(symbol, uri, None)]

    @ls.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        params: types.WorkspaceSymbolParams,
    ) -> list[types.SymbolInformation] | None:
        intel = intel_for()
        if intel is None:
            return None
        result = await _guarded(intel.workspace_symbols(params.query))
        return [_symbol_information(loc) for loc in result.items] if result else None


async def _guarded(query: Awaitable[Q]) -> Q | None:
    """Run a query; failures are logged, not raised (jedi is best effort on half-typed code),
    but a timeout is an error answer so the editor does not show "no results" as the truth."""
    try:
        result = await query
    except (FileNotFoundError, ValueError) as exc:
        log.debug("code intelligence query skipped: %s", exc)
        return None
    except Exception:  # jedi can fail in many ways on half-typed code
        log.exception("code intelligence query failed")
        return None
    if result.skipped:  # a file too large for jedi: nothing to show, and no error either
        return None
    if result.timed_out:
        raise JsonRpcException(
            message="Python code intelligence timed out", code=types.LSPErrorCodes.RequestFailed
        )
    return result


def _client_wants_hierarchy(ls: LanguageServer) -> bool:
    try:
        caps = ls.client_capabilities.text_document.document_symbol  # type: ignore[union-attr]
        return bool(caps and caps.hierarchical_document_symbol_support)
    except AttributeError:  # before initialize, or a client without textDocument capabilities
        return True


def _range(span: Span) -> types.Range:
    return types.Range(
        start=types.Position(line=span.line, character=span.column),
        end=types.Position(line=span.end_line, character=span.end_column),
    )


def _location(loc: SymbolLocation) -> types.Location:
    return types.Location(uri=from_fs_path(str(loc.path)) or "", range=_range(loc.span))


def _document_symbol(symbol: OutlineSymbol) -> types.DocumentSymbol:
    return types.DocumentSymbol(
        name=symbol.name,
        kind=_OUTLINE_KINDS.get(symbol.kind, types.SymbolKind.Variable),
        detail=symbol.detail or None,
        range=_range(symbol.range),
        selection_range=_range(symbol.selection),
        children=[_document_symbol(child) for child in symbol.children],
    )


def _flat_symbols(
    symbol: OutlineSymbol, uri: str, container: str | None
) -> list[types.SymbolInformation]:
    info = types.SymbolInformation(
        name=symbol.name,
        kind=_OUTLINE_KINDS.get(symbol.kind, types.SymbolKind.Variable),
        location=types.Location(uri=uri, range=_range(symbol.range)),
        container_name=container,
    )
    nested = [item for child in symbol.children for item in _flat_symbols(child, uri, symbol.name)]
    return [info, *nested]


def _symbol_information(loc: SymbolLocation) -> types.SymbolInformation:
    container = None
    if loc.full_name and "." in loc.full_name:
        container = loc.full_name.rsplit(".", 1)[0]
    return types.SymbolInformation(
        name=loc.name,
        kind=_JEDI_KINDS.get(loc.kind, types.SymbolKind.Variable),
        location=_location(loc),
        container_name=container,
    )
