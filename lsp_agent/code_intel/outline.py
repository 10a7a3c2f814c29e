"""Document outlines straight from parso's syntax tree: no jedi inference, no jedi Script.

The outline only needs what the tree says (which names a file defines, in which scope, over
which range), yet asking jedi for it costs a Script, a jedi value per defined name (locals
and parameters included) and, through ``Name.type``, the resolution of every ``from x import
y`` -- parsing the imported modules, seconds on a cold cache. This module walks the tree
itself and gives the same answer jedi's names give (the rules below mirror jedi's
``get_names(all_scopes=True, definitions=True)``, ``Name.type`` and ``Name.parent()``); the
jedi path in jedi_intel stays as the reference the tests compare against and as the
fallback when the walk meets a tree it does not expect.

Answers are cached per file by its text (a buffer asked again unchanged costs a string
comparison), and the parse goes through parso's diff cache, so an edited buffer is re-parsed
only where it changed. Runs in the jedi worker process: a huge buffer's parse can be killed
there like any jedi query.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.code_intel.jedi_intel import (
    _OUTLINE_TYPES,
    IMPORT,
    INSTANCE_ATTRIBUTE,
    SYMBOL,
    OutlineSymbol,
    QueryResult,
    Span,
    _assigned_on_instance,
    _capped,
    _contains,
    _nest,
    _outline_kind,
)
from lsp_agent.code_intel.text_memo import TextMemo
from lsp_agent.workspace.positions import split_lines

if TYPE_CHECKING:
    from parso.grammar import Grammar
    from parso.python.tree import Module, Name

CACHED_FILES = 64  # outlines kept (one per file, for its latest text)

# jedi's type of a defined name, by the node that defines it (TreeNameDefinition._API_TYPES).
_TYPE_BY_DEFINITION = {"import_name": "module", "import_from": "module", "funcdef": "function",
                       "param": "param", "classdef": "class"}
# What a scope is to ``Name.parent()``; comprehensions have no name and are looked through.
_SCOPE_TYPES = {"file_input": "module", "classdef": "class", "funcdef": "function",
                "lambdef": "function"}
_IMPORT_NODES = ("import_from", "import_name")
_DEFINES_SCOPE = ("class", "function")


@dataclass(frozen=True, slots=True)
class _Defined:
    """A defined name as the outline rules see it (what jedi's Name would say of it)."""

    leaf: Name
    definition: Any  # the defining node (parso), or None
    type: str  # jedi's Name.type, imports unresolved: class, function, statement, param, module

    @property
    def name(self) -> str:
        return self.leaf.value

    @property
    def line(self) -> int:  # 1-based, as jedi's
        return self.leaf.start_pos[0]

    @property
    def column(self) -> int:
        return self.leaf.start_pos[1]


class OutlineCache:
    """Outlines by file, each for the text it was computed from (see text_memo)."""

    def __init__(self, size: int = CACHED_FILES):
        self._memo: TextMemo[QueryResult[OutlineSymbol]] = TextMemo(max_entries=size)

    def outline(self, grammar: Grammar, path: Path, text: str,
                max_results: int | None) -> QueryResult[OutlineSymbol]:
        key = f"{path}\0{max_results}"
        if (known := self._memo.get(key, text)) is not None:
            return known
        module = grammar.parse(text, path=path, cache=False, diff_cache=True)
        result = outline_of(module, text, max_results)
        self._memo.put(key, text, result)
        return result


def outline_of(module: Module, text: str,
               max_results: int | None = None) -> QueryResult[OutlineSymbol]:
    """The outline of a parsed module whose source is ``text``."""
    lines = split_lines(text)
    leaves = [leaf for names in module.get_used_names().values() for leaf in names
              if leaf.is_definition()]
    leaves.sort(key=lambda leaf: leaf.start_pos)
    defined = (_defined(leaf) for leaf in leaves)
    wanted = ((d, role) for d in defined if (role := _role(d, lines)) is not None)
    flat, truncated = _capped(wanted, max_results)
    return QueryResult(items=_nest(flat, lines, _symbol), truncated=truncated)


def _defined(leaf: Name) -> _Defined:
    definition = leaf.get_definition()
    typed_by = leaf.get_definition(import_name_always=True)
    kind = _TYPE_BY_DEFINITION.get(typed_by.type, "statement") if typed_by is not None \
        else "statement"
    return _Defined(leaf, definition, kind)


def _role(name: _Defined, lines: list[str]) -> str | None:
    """jedi_intel._outline_role, on the tree."""
    if name.definition is not None and name.definition.type in _IMPORT_NODES:
        return IMPORT
    if name.type not in _OUTLINE_TYPES:
        return None
    if name.type != "statement":
        return SYMBOL
    parent = _parent_type(name.leaf)
    if parent in ("module", "class"):
        return SYMBOL
    if parent == "function" and _assigned_on_instance(name, lines):
        return INSTANCE_ATTRIBUTE
    return None


def _parent_type(leaf: Name) -> str | None:
    """The type of the scope jedi puts a statement's name in (``Name.parent()``): the
    innermost class, function, lambda or module, comprehensions looked through; a name
    written before the colon of a ``def``/``class`` (a default value, a base) belongs to
    the scope around it."""
    scope = _enclosing_scope(leaf)
    if scope.type in ("funcdef", "classdef"):
        colon = next(child for child in scope.children if child == ":")
        if leaf.start_pos < colon.start_pos:
            scope = _enclosing_scope(scope)
    while scope.type not in _SCOPE_TYPES:  # a comprehension: its scope has no name
        scope = _enclosing_scope(scope.parent)
    return _SCOPE_TYPES[scope.type]


def _enclosing_scope(node: Any) -> Any:
    """jedi's create_context ``parent_scope``: the nearest scope above ``node``."""
    while True:
        node = node.parent
        kind = node.type
        if kind == "comp_for":
            if node.children[1].type != "sync_comp_for":
                return node
        elif kind in ("file_input", "classdef", "funcdef", "lambdef", "sync_comp_for"):
            return node
        elif kind in ("argument", "testlist_comp"):
            if node.children[1].type in ("comp_for", "sync_comp_for"):
                return node.children[1]
        elif kind == "dictorsetmaker":
            for child in node.children[1:4]:
                if child.type in ("comp_for", "sync_comp_for"):
                    return child


def _extent(name: _Defined) -> tuple[tuple[int, int], tuple[int, int]]:
    """jedi's definition start and end positions (1-based lines): a class or function ends
    before the newline of its last line, everything else where its defining node ends."""
    definition = name.definition
    if definition is None:
        return name.leaf.start_pos, name.leaf.end_pos
    end = definition.end_pos
    if name.type in _DEFINES_SCOPE:
        last_leaf = definition.get_last_leaf()
        end = last_leaf.get_previous_leaf().end_pos if last_leaf.type == "newline" \
            else last_leaf.end_pos
    return definition.start_pos, end


def _symbol(name: _Defined, parent_kind: str | None, lines: list[str],
            role: str) -> OutlineSymbol:
    start, end = _extent(name)
    line, column = name.line - 1, name.column
    kind = _outline_kind(name, parent_kind, lines, role)
    detail = ""
    if kind in ("class", "function", "method", "property"):
        detail = ("def " if name.type == "function" else "class ") + name.name
    selection = Span(line=line, column=column, end_line=line, end_column=column + len(name.name))
    whole = Span(line=start[0] - 1, column=start[1], end_line=end[0] - 1, end_column=end[1])
    if not (_contains(whole, (selection.line, selection.column))
            and _contains(whole, (selection.end_line, selection.end_column))):
        whole = selection  # LSP requires the name inside the range
    return OutlineSymbol(name=name.name, kind=kind, detail=detail, range=whole,
                         selection=selection)
