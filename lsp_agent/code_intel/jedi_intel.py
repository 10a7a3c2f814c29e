"""Python code intelligence on top of jedi, shared by the agent tools and the LSP features.

Positions at this API are 0-based lines and 0-based columns; jedi counts lines from 1, so that
conversion happens here and nowhere else. Columns are code points, as jedi's are: this is the
server's own unit, and lsp_agent.server.wire_positions converts them to and from the client's
position encoding at the protocol boundary. Lines are split the LSP way (which is parso's).

Text always comes from the DocumentSource, so an unsaved editor buffer wins over the disk. A
fresh ``jedi.Script`` is built per query: jedi caches parse trees per path, and a Script kept
across an edit would answer about stale text. Other files of the project are read by jedi
from disk.

jedi is not thread-safe and cannot be interrupted, so it runs in a worker process that is
killed when a query overruns (see JediIntel); the server itself never imports a Script.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, Field

from lsp_agent.code_intel.jedi_worker import (
    JediChannel,
    JediTimeout,
    JediWorkerError,
    close_channel,
    open_channel,
)
from lsp_agent.code_intel.symbol_index import BUILD_WAIT, SymbolIndex
from lsp_agent.code_intel.text_memo import TextMemo
from lsp_agent.workspace.documents import DocumentSource, FileTooLarge, snapshot_async
from lsp_agent.workspace.positions import split_lines

if TYPE_CHECKING:  # jedi is imported by the worker process only (JediEngine), never the server
    import jedi
    from jedi.api.classes import BaseName

CACHE_DIR_ENV = "LSP_AGENT_CACHE_DIR"
PYTHON_SUFFIXES = frozenset({".py", ".pyi"})
# Larger files are not given to jedi: its time grows with the file and it cannot be stopped.
MAX_JEDI_CHARS = 2_000_000
# Per-query limits in seconds. Peers answer slow queries on large projects in 5-7 s, so the
# editor's limit is generous; the agent's tools wait less and say so (they can fall back to Grep).
QUERY_TIMEOUT = 30.0
TOOL_TIMEOUT = 20.0

_STUB_GRAMMAR = "3.13"  # jedi's InferenceState.latest_grammar, which it parses .pyi with

T = TypeVar("T")
R = TypeVar("R")
Q = TypeVar("Q", bound="QueryResult[Any]")
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where jedi keeps its cache: ``$LSP_AGENT_CACHE_DIR`` or ``~/.cache/lsp-agent/jedi``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "lsp-agent" / "jedi"


def is_python_path(path: Path) -> bool:
    return path.suffix.lower() in PYTHON_SUFFIXES


# --------------------------------------------------------------------------- result models


class Span(BaseModel):
    """A range of text; 0-based lines and columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


class SymbolLocation(BaseModel):
    """Where a name is: its own span (not the whole statement) and what it is."""

    path: Path
    line: int
    column: int
    end_line: int
    end_column: int
    name: str
    kind: str  # jedi's type: module, class, instance, function, param, statement, property, ...
    description: str = ""
    full_name: str | None = None
    line_text: str | None = None  # the source line, as jedi read it

    @property
    def span(self) -> Span:
        return Span(
            line=self.line, column=self.column, end_line=self.end_line, end_column=self.end_column
        )


class OutlineSymbol(BaseModel):
    """One entry of a document outline; classes contain their methods and attributes."""

    name: str
    kind: str  # class, function, method, property, variable, constant, attribute
    detail: str = ""
    range: Span  # the whole definition
    selection: Span  # the name
    children: list[OutlineSymbol] = Field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, OutlineSymbol]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


class HoverInfo(BaseModel):
    name: str
    kind: str
    signature: str | None
    docstring: str
    markdown: str
    span: Span  # the hovered name in the queried document


class QueryResult(BaseModel, Generic[T]):
    items: list[T] = Field(default_factory=list)
    truncated: bool = False  # more results existed than ``max_results`` (when one is set)
    timed_out: bool = False  # jedi did not answer within the timeout
    skipped: str | None = None  # why jedi was not asked (a file too large for it)


# --------------------------------------------------------------------------- helpers

_IDENTIFIER = re.compile(r"[^\W\d]\w*")


def find_symbol_column(text: str, line: int, symbol: str) -> int | None:
    """Column of ``symbol`` as a whole word on 0-based ``line`` of ``text``, or None.

    A dotted symbol (``m.Money``) matches the whole dotted text and yields the column of its
    last part, which is the name the caller asks about.
    """
    lines = split_lines(text)
    if not 0 <= line < len(lines):
        return None
    parts = [part.strip() for part in symbol.strip().split(".")]
    if not parts or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        return None
    pattern = r"\s*\.\s*".join(re.escape(part) for part in parts)
    match = re.search(rf"(?<!\w)(?:{pattern})(?!\w)", lines[line])
    if match is None:
        return None
    return match.end() - len(parts[-1])


def identifiers_on_line(text: str, line: int) -> list[str]:
    """Distinct identifiers on 0-based ``line``, in order of appearance (for error messages)."""
    lines = split_lines(text)
    if not 0 <= line < len(lines):
        return []
    seen: dict[str, None] = {}
    for match in _IDENTIFIER.finditer(lines[line]):
        seen.setdefault(match.group(0), None)
    return list(seen)


def _capped(items: Iterable[R], limit: int | None) -> tuple[list[R], bool]:
    """The first ``limit`` items and whether more existed (reads at most one extra); all of
    them without a limit."""
    if limit is None:
        return list(items), False
    out: list[R] = []
    for item in items:
        if len(out) == limit:
            return out, True
        out.append(item)
    return out, False


def _is_import(name: BaseName) -> bool:
    # Name.type resolves imports (slow); look at the defining statement instead. There is no
    # public accessor for it, so fall back to the description when the internals change.
    try:
        definition = name._name.tree_name.get_definition()
        return definition is not None and definition.type in ("import_from", "import_name")
    except AttributeError:
        return name.description.startswith(("from ", "import "))


# --------------------------------------------------------------------------- the engine


class JediEngine:
    """The queries themselves, synchronous, on text passed in. Runs in the jedi worker
    process (``jedi_worker.py``), never in the server: jedi cannot be interrupted, so the
    server keeps it where a stuck call can be killed."""

    def __init__(self, root: Path, *, max_results: int | None = None,
                 cache_dir: Path | None = None):
        self.root = Path(root).resolve()
        self.max_results = max_results
        import jedi

        jedi.settings.cache_directory = str(cache_dir or default_cache_dir())
        self.project = jedi.Project(self.root)
        from lsp_agent.code_intel.outline import OutlineCache

        self._outlines = OutlineCache()
        self._grammars: dict[bool, Any] = {}

    def definition(
        self, path: Path, text: str, line: int, column: int
    ) -> QueryResult[SymbolLocation]:
        names = self._script(path, text).goto(line + 1, column, follow_imports=True)
        locations = (loc for loc in map(self._location, names) if loc is not None)
        items, truncated = _capped(locations, self.max_results)
        return QueryResult(items=items, truncated=truncated)

    def references(
        self, path: Path, text: str, line: int, column: int, include_declaration: bool = True
    ) -> QueryResult[SymbolLocation]:
        script = self._script(path, text)
        names = script.get_references(line + 1, column, include_builtins=False)
        if not include_declaration:
            declared = {_position_key(d) for d in script.goto(line + 1, column)}
            declared |= {
                _position_key(d) for d in script.goto(line + 1, column, follow_imports=True)
            }
            names = [n for n in names if _position_key(n) not in declared]
        names = sorted(names, key=_position_key)
        locations = (loc for loc in map(self._location, names) if loc is not None)
        items, truncated = _capped(locations, self.max_results)
        return QueryResult(items=items, truncated=truncated)

    def hover(self, path: Path, text: str, line: int, column: int) -> QueryResult[HoverInfo]:
        names = self._script(path, text).help(line + 1, column)
        if not names:
            return QueryResult()
        span = _word_span(text, line, column)
        return QueryResult(items=[_hover_info(names[0], span)])

    def document_symbols(self, path: Path, text: str) -> QueryResult[OutlineSymbol]:
        """From parso's tree (see outline.py); jedi's names if the walk fails."""
        try:
            return self._outlines.outline(self._grammar(path), path, text, self.max_results)
        except Exception:  # a tree the walk does not expect: jedi's (slower) answer
            log.warning("outline of %s from the syntax tree failed; asking jedi", path.name,
                        exc_info=True)
            return self.document_symbols_by_jedi(path, text)

    def document_symbols_by_jedi(self, path: Path, text: str) -> QueryResult[OutlineSymbol]:
        """The outline from jedi's names: the reference the tree walk is tested against."""
        script = self._script(path, text)
        names = script.get_names(all_scopes=True, definitions=True, references=False)
        lines = split_lines(text)
        wanted = ((n, role) for n in names if (role := _outline_role(n, lines)) is not None)
        flat, truncated = _capped(wanted, self.max_results)
        return QueryResult(items=_nest(flat, lines, _outline_symbol), truncated=truncated)

    def workspace_symbols(
        self, query: str, limit: int | None = None
    ) -> QueryResult[SymbolLocation]:
        caps = [c for c in (limit, self.max_results) if c is not None]
        cap = min(caps) if caps else None
        text = query.strip()
        if not text:
            return QueryResult()
        if "." in text:
            names = self.project.search(text, all_scopes=True)
        else:
            names = self.project.complete_search(text, all_scopes=True)
        found = (loc for n in names if (loc := self._workspace_symbol(n, text)) is not None)
        items, truncated = _capped(_unique(found), cap)
        items.sort(key=lambda loc: (_match_rank(loc.name, text), str(loc.path), loc.line))
        return QueryResult(items=items, truncated=truncated)

    def _grammar(self, path: Path) -> Any:
        """The grammar a Script would parse ``path`` with: the project environment's, the
        latest for stubs (as jedi's InferenceState chooses)."""
        stub = path.suffix == ".pyi"
        if stub not in self._grammars:
            import parso

            self._grammars[stub] = (parso.load_grammar(version=_STUB_GRAMMAR) if stub
                                    else self.project.get_environment().get_grammar())
        return self._grammars[stub]

    def _script(self, path: Path, text: str) -> jedi.Script:
        import jedi

        return jedi.Script(text, path=path, project=self.project)

    def _location(self, name: BaseName) -> SymbolLocation | None:
        if name.module_path is None or name.line is None or name.column is None:
            return None  # builtins compiled into the interpreter have no source
        return SymbolLocation(
            path=Path(name.module_path),
            line=name.line - 1,
            column=name.column,
            end_line=name.line - 1,
            end_column=name.column + len(name.name),
            name=name.name,
            kind=name.type,
            description=name.description,
            full_name=name.full_name,
            line_text=_line_code(name),
        )

    def _workspace_symbol(self, name: BaseName, query: str) -> SymbolLocation | None:
        if name.type == "param" or name.module_path is None:
            return None
        module_path = Path(name.module_path)
        if not module_path.is_relative_to(self.root):
            return None  # modules found on sys.path, not in the workspace
        if name.type == "statement" and _parent_type(name) == "function":
            return None  # local variables are noise in a workspace search
        if name.type == "module":
            return SymbolLocation(
                path=module_path, line=0, column=0, end_line=0, end_column=0,
                name=name.name, kind="module", description=name.description,
                full_name=name.full_name,
            )  # fmt: skip
        return self._location(name)


# --------------------------------------------------------------------------- the service


class JediIntel:
    """Definitions, references, hover and symbols for one workspace root.

    The server side of code intelligence: it takes each file's text from the DocumentSource
    (an open buffer on the event loop, the disk in a thread) and asks the jedi worker process.

    Why a process, not a thread: jedi cannot be interrupted, and it is not thread-safe (its
    compiled-module subprocess and parso's tree cache are shared), so a thread that overruns
    can only be abandoned, and it keeps running -- in one report a hover on a 50 MB buffer held
    jedi for 138 s and made every other query wait. A process is killed when a query overruns
    its ``timeout`` and the next query starts a fresh one, so one bad query costs its own
    timeout and no more; queries queued behind it wait at most for the rest of that timeout
    (each query's clock starts when the worker takes it; the deadline is enforced next to the
    process, so it holds even for a request the editor cancelled).
    A cancelled query (the editor's ``$/cancelRequest``, a tool's own limit) stops waiting at
    once; its worker gets a short grace to finish and is then killed (see jedi_worker).
    Files over ``max_chars`` are not sent at all (answered empty with ``skipped`` and a log
    line): jedi's time grows with the file, and such a file would only ever time out.
    """

    handles_all_languages = False  # Python files only

    def __init__(
        self,
        root: Path,
        documents: DocumentSource,
        *,
        timeout: float = QUERY_TIMEOUT,
        tool_timeout: float = TOOL_TIMEOUT,
        max_results: int | None = None,  # None: complete answers (the tools cap and say so)
        cache_dir: Path | None = None,
        max_chars: int = MAX_JEDI_CHARS,
        worker_command: list[str] | None = None,
        index: SymbolIndex | None = None,
    ):
        self.root = Path(root).resolve()
        self.documents = documents
        self.index = index  # answers workspace symbols once built (see symbol_index)
        self.timeout = timeout
        self.tool_timeout = tool_timeout
        self.max_results = max_results
        self.max_chars = max_chars
        self.cache_dir = cache_dir or default_cache_dir()
        self._channel: JediChannel | None = open_channel(self.cache_dir, worker_command)
        self._outlines: TextMemo[QueryResult[OutlineSymbol]] = TextMemo()

    def close(self) -> None:
        """Let go of the shared worker (the last user stops it)."""
        if self._channel is not None:
            close_channel(self._channel)
            self._channel = None

    # -------------------------------------------------------------- public queries

    async def definition(self, path: Path, line: int, column: int) -> QueryResult[SymbolLocation]:
        return await self._ask(QueryResult[SymbolLocation], "definition", path,
                               line=line, column=column)

    async def references(
        self, path: Path, line: int, column: int, include_declaration: bool = True
    ) -> QueryResult[SymbolLocation]:
        return await self._ask(QueryResult[SymbolLocation], "references", path, line=line,
                               column=column, include_declaration=include_declaration)

    async def hover(self, path: Path, line: int, column: int) -> QueryResult[HoverInfo]:
        return await self._ask(QueryResult[HoverInfo], "hover", path, line=line, column=column)

    async def document_symbols(self, path: Path) -> QueryResult[OutlineSymbol]:
        """The outline; kept per file until its text changes, so asking again about an
        unchanged buffer (editors do at every focus, scroll and breadcrumb) skips the worker."""
        text = await self._text(path)
        key = str(path)
        if text is not None and (known := self._outlines.get(key, text)) is not None:
            return known
        result = await self._ask(QueryResult[OutlineSymbol], "document_symbols", path,
                                 known_text=text)
        if text is not None and not (result.timed_out or result.skipped):
            self._outlines.put(key, text, result)
        return result

    async def workspace_symbols(
        self, query: str, limit: int | None = None
    ) -> QueryResult[SymbolLocation]:
        """Names defined in the project whose name starts with ``query`` (case-insensitive);
        a dotted query (``Cart.add``) looks up that exact qualified name. From the symbol
        index once it is built, from jedi before (or if the index fails). The first search
        starts the index's build (if nothing started it before) and, as any search during the
        build, waits a few seconds for it (BUILD_WAIT)."""
        if self.index is not None and not self.index.ready and self.index.failed is None:
            await self.index.wait_built(BUILD_WAIT)
        if self.index is not None and self.index.ready:
            try:
                return await self.index.search(query, limit)
            except (JediTimeout, JediWorkerError) as exc:  # the index is lost: jedi from now
                log.warning("symbol index search failed (%s); asking jedi", exc)
                self.index.ready = False
        return await self._ask(QueryResult[SymbolLocation], "workspace_symbols", None,
                               query=query, limit=limit)

    # -------------------------------------------------------------- plumbing

    async def _ask(self, result_type: type[Q], op: str, path: Path | None, *,
                   known_text: str | None = None, **args: Any) -> Q:
        """Ask the worker; ``known_text`` is ``path``'s text when the caller has read it."""
        if self._channel is None:
            raise RuntimeError("this JediIntel was closed")
        request: dict[str, Any] = {"op": op, "root": str(self.root),
                                   "max_results": self.max_results, **args}
        if path is not None:
            text = known_text if known_text is not None else await self._text(path)
            if text is None or len(text) > self.max_chars:
                size = "over the read limit" if text is None else f"{len(text):,} characters"
                why = (f"{path.name} is too large for Python code intelligence ({size}; "
                       f"the limit is {self.max_chars:,})")
                log.info("jedi query %s skipped: %s", op, why)
                return result_type(skipped=why)
            request |= {"path": str(path), "text": text}
        try:
            payload = await self._channel.ask(request, self.timeout)
        except JediTimeout:
            log.warning("jedi query %s timed out after %gs; its worker was killed and the "
                        "next query starts a fresh one", op, self.timeout)
            return result_type(timed_out=True)
        return result_type.model_validate(payload)

    async def _text(self, path: Path) -> str | None:
        try:
            return (await snapshot_async(self.documents, path)).text
        except FileTooLarge:
            return None


def _position_key(name: BaseName) -> tuple[str, int, int]:
    return (str(name.module_path or ""), name.line or 0, name.column or 0)


def _line_code(name: BaseName) -> str | None:
    try:
        return name.get_line_code().rstrip("\r\n")
    except Exception:  # jedi raises various errors for names without a module
        return None


def _parent_type(name: BaseName) -> str | None:
    try:
        parent = name.parent()
    except Exception:  # names without a scope (compiled modules) cannot answer
        return None
    return parent.type if parent is not None else None


def _unique(locations: Iterable[SymbolLocation]) -> Iterator[SymbolLocation]:
    seen: set[tuple[str, int, int]] = set()
    for loc in locations:
        key = (str(loc.path), loc.line, loc.column)
        if key not in seen:
            seen.add(key)
            yield loc


def _match_rank(name: str, query: str) -> int:
    if name == query:
        return 0
    if name.lower() == query.lower().rsplit(".", 1)[-1]:
        return 1
    return 2


def _word_span(text: str, line: int, column: int) -> Span:
    """The identifier under the cursor, so the editor can highlight what the hover is about."""
    lines = split_lines(text)
    line_text = lines[line] if 0 <= line < len(lines) else ""
    for match in _IDENTIFIER.finditer(line_text):
        if match.start() <= column <= match.end():
            return Span(line=line, column=match.start(), end_line=line, end_column=match.end())
    return Span(line=line, column=column, end_line=line, end_column=column)


# --------------------------------------------------------------------------- hover


def _hover_info(name: BaseName, span: Span) -> HoverInfo:
    signature = _signature_text(name)
    # Keywords have only pydoc text; for everything else the signature is shown separately.
    docstring = name.docstring(raw=name.type != "keyword").strip()
    parts = []
    if signature:
        parts.append(f"```python\n{signature}\n```")
    if docstring:
        parts.append(docstring)
    return HoverInfo(
        name=name.name,
        kind=name.type,
        signature=signature,
        docstring=docstring,
        markdown="\n\n---\n\n".join(parts),
        span=span,
    )


def _signature_text(name: BaseName) -> str | None:
    kind = name.type
    if kind == "property":
        types = _inferred_types(name)
        return f"property {name.name}" + (f": {' | '.join(types)}" if types else "")
    if kind in ("function", "class"):
        signatures = [s.to_string() for s in name.get_signatures()]
        prefix = "def " if kind == "function" else "class "
        if signatures:
            return "\n".join(prefix + s for s in signatures)
        return prefix + name.name
    if kind == "module":
        return f"module {name.full_name or name.name}"
    if kind == "keyword":
        return None
    if kind in ("statement", "param", "instance"):
        types = _inferred_types(name)
        if types:
            return f"{name.name}: {' | '.join(types)}"
    return name.description or name.name


def _inferred_types(name: BaseName) -> list[str]:
    try:
        inferred = name.infer()
    except Exception:  # inference of broken code may fail in many ways; hover is best effort
        return []
    return list(dict.fromkeys(n.name for n in inferred if n.name))


# --------------------------------------------------------------------------- outline

_OUTLINE_TYPES = frozenset({"class", "function", "statement", "property"})
_INSTANCE_NAMES = ("self", "cls")
_OWNER_BEFORE_DOT = re.compile(r"(\w+)\s*\.\s*$")

# The roles a name can play in the outline (None: it stays out).
SYMBOL, IMPORT, INSTANCE_ATTRIBUTE = "symbol", "import", "instance attribute"


def _outline_role(name: BaseName, lines: list[str]) -> str | None:
    """Whether and how a defined name appears in the outline: classes, functions and
    variables of modules and classes; imports (in functions too: what a function pulls in
    says what it does); ``self.x = ...`` in methods (as an attribute of the class). Other
    locals of functions would drown the outline."""
    if _is_import(name):
        return IMPORT
    kind = name.type
    if kind not in _OUTLINE_TYPES:
        return None
    if kind != "statement":
        return SYMBOL
    parent = _parent_type(name)
    if parent in ("module", "class"):
        return SYMBOL
    if parent == "function" and _assigned_on_instance(name, lines):
        return INSTANCE_ATTRIBUTE
    return None


def _assigned_on_instance(name: _Placed, lines: list[str]) -> bool:
    """``self.x`` / ``cls.x``: the text before the name is one of those and a dot."""
    line = (name.line or 1) - 1
    if not 0 <= line < len(lines):
        return False
    owner = _OWNER_BEFORE_DOT.search(lines[line][: name.column or 0])
    return owner is not None and owner.group(1) in _INSTANCE_NAMES


def _outline_kind(name: _Placed, parent_kind: str | None, lines: list[str], role: str) -> str:
    if role == IMPORT:
        return "import"
    if role == INSTANCE_ATTRIBUTE:
        return "attribute"
    kind = name.type
    if kind == "function":
        if any(d.startswith("property") for d in _decorators(name, lines)):
            return "property"
        return "method" if parent_kind == "class" else "function"
    if kind == "statement":
        if parent_kind == "class":
            return "attribute"
        return "constant" if name.name.isupper() else "variable"
    return kind


def _decorators(name: _Placed, lines: list[str]) -> list[str]:
    """Decorator texts on the lines just above the ``def`` (one-line decorators only)."""
    found: list[str] = []
    index = (name.line or 1) - 2
    while 0 <= index < len(lines) and lines[index].strip().startswith("@"):
        found.append(lines[index].strip()[1:])
        index -= 1
    return found


def _outline_symbol(name: BaseName, parent_kind: str | None, lines: list[str],
                    role: str) -> OutlineSymbol:
    start = name.get_definition_start_position() or (name.line, name.column)
    end = _definition_end(name) or (name.line, name.column + len(name.name))
    line = (name.line or 1) - 1
    column = name.column or 0
    kind = _outline_kind(name, parent_kind, lines, role)
    detail = name.description if kind in ("class", "function", "method", "property") else ""
    selection = Span(line=line, column=column, end_line=line, end_column=column + len(name.name))
    whole = Span(line=start[0] - 1, column=start[1], end_line=end[0] - 1, end_column=end[1])
    if not (_contains(whole, (selection.line, selection.column))
            and _contains(whole, (selection.end_line, selection.end_column))):
        whole = selection  # LSP requires the name inside the range
    return OutlineSymbol(name=name.name, kind=kind, detail=detail, range=whole,
                         selection=selection)


def _definition_end(name: BaseName) -> tuple[int, int] | None:
    """jedi's ``get_definition_end_position`` without its inference: that one asks the
    name's ``type``, which resolves every ``from x import y`` (parsing the imported modules;
    seconds on a cold cache) only to choose between two ends that are the same for an
    import. The definition node decides instead: a class or function ends before the
    newline of its last line, everything else where its node ends."""
    try:
        tree_name = name._name.tree_name
    except AttributeError:  # the internals changed: jedi's own (slower) answer
        return name.get_definition_end_position()
    if tree_name is None:
        return None
    definition = tree_name.get_definition()
    if definition is None:
        return tree_name.end_pos
    if definition.type in ("funcdef", "classdef"):
        last_leaf = definition.get_last_leaf()
        if last_leaf.type == "newline":
            return last_leaf.get_previous_leaf().end_pos
        return last_leaf.end_pos
    return definition.end_pos


class _Placed(Protocol):
    """What the outline's rules read of a defined name: jedi's Name, or outline.py's tree
    walk's (whose ``type`` is jedi's with imports left unresolved)."""

    @property
    def name(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> int | None: ...
    @property
    def type(self) -> str: ...


N = TypeVar("N", bound=_Placed)
# (name, the kind of the scope it sits in, the file's lines, its role) -> its outline entry
MakeSymbol = Callable[[N, "str | None", list[str], str], OutlineSymbol]


def _nest(names: list[tuple[N, str]], lines: list[str],
          build: MakeSymbol[N]) -> list[OutlineSymbol]:
    """Build the tree from source order: a symbol belongs to the innermost open scope; an
    instance attribute (``self.x``) to the innermost open class, once per name. ``build``
    makes each entry (from jedi's names here, from the tree walk's in outline.py)."""
    roots: list[OutlineSymbol] = []
    stack: list[OutlineSymbol] = []  # open classes and functions
    members: dict[int, set[str]] = {}  # id(class symbol) -> names of its children
    for name, role in names:
        position = (name.line or 1) - 1, name.column or 0
        while stack and not _contains(stack[-1].range, position):
            stack.pop()
        if role == INSTANCE_ATTRIBUTE:
            owner = next((s for s in reversed(stack) if s.kind == "class"), None)
            known = members.setdefault(id(owner), set())
            if owner is not None and name.name not in known:
                known.add(name.name)
                owner.children.append(build(name, "class", lines, role))
            continue
        parent = stack[-1] if stack else None
        symbol = build(name, _scope_kind(parent), lines, role)
        (parent.children if parent else roots).append(symbol)
        if parent is not None and parent.kind == "class":
            members.setdefault(id(parent), set()).add(symbol.name)
        if symbol.kind in ("class", "function", "method", "property"):
            stack.append(symbol)
    return roots


def _scope_kind(symbol: OutlineSymbol | None) -> str | None:
    if symbol is None:
        return "module"
    return "class" if symbol.kind == "class" else "function"


def _contains(span: Span, position: tuple[int, int]) -> bool:
    return (span.line, span.column) <= position <= (span.end_line, span.end_column)
