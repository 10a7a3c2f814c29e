"""Standard LSP features for Python files, answered by JediIntel.

Handlers are registered when the server is built (pygls fixes its capabilities from the
registered features at initialize), so each one asks ``intel_for()`` per request and answers
empty when code intelligence is switched off or there is no workspace. Handlers are ``async``
and JediIntel runs jedi in a worker process, so the event loop never blocks.

workspace/symbol is answered from the root's SymbolIndex once it is built (it starts with the
first Python buffer opened or the first workspace/symbol request, never for a server that sees
no Python, and follows buffers, saves and file-watcher events); a search during the build waits
a few seconds for it, then asks jedi.
Answers are complete: no result count is capped here. A request the client cancels
(``$/cancelRequest``) stops waiting at once (pygls answers RequestCancelled) and frees its
jedi worker soon after (see jedi_worker).

JediIntel speaks code points; every position in and out crosses the one boundary,
``WirePositions``, which converts to and from the negotiated encoding against the text each
position refers to.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.server.fanout import on_notification
from lsp_agent.server.wire_positions import WirePositions
from lsp_agent.workspace.documents import DiskDocuments, FileReadError

if TYPE_CHECKING:  # jedi_intel (pydantic models, the workers) loads with the first request
    from lsp_agent.code_intel.jedi_intel import (
        JediIntel,
        OutlineSymbol,
        QueryResult,
        Span,
        SymbolLocation,
    )
    from lsp_agent.code_intel.symbol_index import SymbolIndex

log = logging.getLogger(__name__)

Q = TypeVar("Q", bound="QueryResult")

_OUTLINE_KINDS = {
    "class": types.SymbolKind.Class,
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "property": types.SymbolKind.Property,
    "variable": types.SymbolKind.Variable,
    "constant": types.SymbolKind.Constant,
    "attribute": types.SymbolKind.Field,
    "import": types.SymbolKind.Module,  # in every client's base set of symbol kinds
}

_KEPT_OUTLINES = 64  # converted outlines kept (the last one per document)

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
    ls: LanguageServer,
    intel_for: Callable[[], JediIntel | None],
    positions: WirePositions | None = None,
    index_for: Callable[[], SymbolIndex | None] | None = None,
) -> None:
    """Register definition, references, hover, documentSymbol and workspace/symbol on ``ls``.

    ``positions`` is the server's boundary (its encoding is set at initialize); without one,
    UTF-16 against the files on disk. ``index_for`` gives the symbol index to build on first
    use and keep fresh (none: workspace symbols always come from jedi).
    """
    wire = positions or WirePositions(_disk_text)
    index_for_features = index_for or (lambda: None)
    _keep_index_fresh(ls, index_for_features)

    def target(uri: str) -> tuple[JediIntel, Path] | None:
        intel = intel_for()
        fs_path = to_fs_path(uri)
        if intel is None or fs_path is None:
            return None
        from lsp_agent.code_intel.jedi_intel import is_python_path  # intel_for() loaded it

        return (intel, Path(fs_path)) if is_python_path(Path(fs_path)) else None

    @ls.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def definition(params: types.DefinitionParams) -> list[types.Location] | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        line, column = wire.point_in(path, params.position)
        result = await _guarded(intel.definition(path, line, column))
        return _locations(wire.batch(), result)

    @ls.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def references(params: types.ReferenceParams) -> list[types.Location] | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        line, column = wire.point_in(path, params.position)
        query = intel.references(path, line, column, params.context.include_declaration)
        return _locations(wire.batch(), await _guarded(query))

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(params: types.HoverParams) -> types.Hover | None:
        found = target(params.text_document.uri)
        if found is None:
            return None
        intel, path = found
        line, column = wire.point_in(path, params.position)
        result = await _guarded(intel.hover(path, line, column))
        if not result or not result.items or not result.items[0].markdown:
            return None
        info = result.items[0]
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=info.markdown),
            range=_range(wire, path, info.span),
        )

    # The last answer per document, with what it was built from (see document_symbol).
    outlines: dict[str, tuple[object, tuple[str, bool], list[Any]]] = {}

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
        hierarchy = _client_wants_hierarchy(ls)
        # JediIntel gives the same result object while the text is unchanged: so is the answer
        built_from = (wire.encoding, hierarchy)
        known = outlines.get(uri)
        if known is not None and known[0] is result and known[1] == built_from:
            return known[2]
        conv = _Converter(wire.batch(), path)
        answer: list[types.DocumentSymbol] | list[types.SymbolInformation]
        if hierarchy:
            answer = [_document_symbol(conv, symbol) for symbol in result.items]
        else:
            answer = [info for symbol in result.items
                      for info in _flat_symbols(conv, symbol, uri, None)]
        outlines[uri] = (result, built_from, answer)
        while len(outlines) > _KEPT_OUTLINES:
            outlines.pop(next(iter(outlines)))
        return answer

    @ls.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        params: types.WorkspaceSymbolParams,
    ) -> list[types.SymbolInformation] | None:
        intel = intel_for()
        if intel is None:
            return None
        if (index := index_for_features()) is not None:
            index.start()  # the first search starts the build (and waits a little for it)
        result = await _guarded(intel.workspace_symbols(params.query))
        batch = wire.batch()
        return [_symbol_information(batch, loc) for loc in result.items] if result else None


def _keep_index_fresh(ls: LanguageServer, index_for: Callable[[], SymbolIndex | None]) -> None:
    """Build the index when the first Python buffer opens (workspace/symbol starts it too);
    re-read what buffers, saves and the client's file watcher say changed. Until it starts,
    changes are not noted: its build reads the disk and the open buffers then."""

    def saved(params: types.DidSaveTextDocumentParams) -> None:
        if (index := index_for()) is not None:
            _note(index, params.text_document.uri, None)

    on_notification(ls, types.TEXT_DOCUMENT_DID_SAVE, saved)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(params: types.DidChangeWatchedFilesParams) -> None:
        if (index := index_for()) is not None:
            for change in params.changes:
                _note(index, change.uri, None)

    listeners = getattr(getattr(ls, "documents", None), "listeners", None)
    if isinstance(listeners, list):  # the lsp-agent server's EditorDocuments

        def buffer_changed(uri: str) -> None:
            if not _is_python_uri(uri) or (index := index_for()) is None:
                return  # the index holds Python files only
            if not index.started:
                index.start()  # the first Python buffer: the build reads the open buffers
            else:  # applied after the build when it is still running
                _note(index, uri, ls.documents.buffer(uri))  # type: ignore[attr-defined]

        listeners.append(buffer_changed)


def _note(index: SymbolIndex, uri: str, text: str | None) -> None:
    fs_path = to_fs_path(uri)
    if fs_path:
        index.changed(Path(fs_path), text)


def _is_python_uri(uri: str) -> bool:
    from lsp_agent.code_intel.index_worker import PYTHON_SUFFIXES  # the files it indexes

    fs_path = to_fs_path(uri)
    return fs_path is not None and Path(fs_path).suffix in PYTHON_SUFFIXES


async def _guarded(query: Awaitable[Q]) -> Q | None:
    """Run a query; failures are logged, not raised (jedi is best effort on half-typed code),
    but a timeout is an error answer so the editor does not show "no results" as the truth.
    A cancelled request is not caught here: pygls answers it with RequestCancelled."""
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
        raise JsonRpcException(message="Python code intelligence did not answer within its "
                               "time limit (codeIntelTimeoutSeconds)",
                               code=types.LSPErrorCodes.RequestFailed)
    return result


def _client_wants_hierarchy(ls: LanguageServer) -> bool:
    caps = getattr(ls, "client_caps", None)  # the lsp-agent server parsed them at initialize
    if caps is not None:
        return bool(caps.hierarchical_symbols)
    try:
        caps = ls.client_capabilities.text_document.document_symbol  # type: ignore[union-attr]
        return bool(caps and caps.hierarchical_document_symbol_support)
    except AttributeError:  # before initialize, or a client without textDocument capabilities
        return True


def _disk_text(path: Path) -> str | None:
    try:
        return DiskDocuments().snapshot(path).text
    except (OSError, FileReadError):
        return None


def _range(wire: WirePositions, path: Path, span: Span) -> types.Range:
    return wire.range_out(path, (span.line, span.column), (span.end_line, span.end_column))


def _location(wire: WirePositions, loc: SymbolLocation) -> types.Location:
    return types.Location(uri=from_fs_path(str(loc.path)) or "",
                          range=_range(wire, loc.path, loc.span))


def _locations(wire: WirePositions, result: QueryResult[SymbolLocation] | None,
               ) -> list[types.Location] | None:
    return [_location(wire, loc) for loc in result.items] if result else None


class _Converter:
    """Ranges of one document's symbols, converted against that document."""

    def __init__(self, wire: WirePositions, path: Path):
        self.wire, self.path = wire, path

    def range(self, span: Span) -> types.Range:
        return _range(self.wire, self.path, span)


def _document_symbol(conv: _Converter, symbol: OutlineSymbol) -> types.DocumentSymbol:
    return types.DocumentSymbol(
        name=symbol.name,
        kind=_OUTLINE_KINDS.get(symbol.kind, types.SymbolKind.Variable),
        detail=symbol.detail or None,
        range=conv.range(symbol.range),
        selection_range=conv.range(symbol.selection),
        children=[_document_symbol(conv, child) for child in symbol.children],
    )


def _flat_symbols(
    conv: _Converter, symbol: OutlineSymbol, uri: str, container: str | None
) -> list[types.SymbolInformation]:
    info = types.SymbolInformation(
        name=symbol.name,
        kind=_OUTLINE_KINDS.get(symbol.kind, types.SymbolKind.Variable),
        location=types.Location(uri=uri, range=conv.range(symbol.range)),
        container_name=container,
    )
    nested = [item for child in symbol.children
              for item in _flat_symbols(conv, child, uri, symbol.name)]
    return [info, *nested]


def _symbol_information(wire: WirePositions, loc: SymbolLocation) -> types.SymbolInformation:
    container = None
    if loc.full_name and "." in loc.full_name:
        container = loc.full_name.rsplit(".", 1)[0]
    return types.SymbolInformation(
        name=loc.name,
        kind=_JEDI_KINDS.get(loc.kind, types.SymbolKind.Variable),
        location=_location(wire, loc),
        container_name=container,
    )
