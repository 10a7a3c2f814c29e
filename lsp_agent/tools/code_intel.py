"""Agent tools for Python code intelligence: definition, references, hover and symbols.

The model is poor at counting columns, so tools take a symbol name plus the 1-based line it
appears on (as numbered by Read) and find the column themselves.

Answers from code intelligence are complete; the tools show at most a fixed number of entries
(``SHOWN``) and say when they show fewer than exist, with a way to narrow the question. Each
query is bounded by the provider's ``tool_timeout``: past it the tool stops waiting (the query
is cancelled) and says so.

Results may point into other files; lines from secret files (``permissions.secrets``) are not
shown, and hover text of a name defined in one is withheld: only Read, which asks the user,
shows their content.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from lsp_agent.code_intel.api import CodeIntel
from lsp_agent.code_intel.jedi_intel import (
    OutlineSymbol,
    QueryResult,
    SymbolLocation,
    find_symbol_column,
    identifiers_on_line,
    is_python_path,
)
from lsp_agent.tools.base import Tool, ToolContext, ToolError
from lsp_agent.workspace.documents import FileReadError, snapshot_async

NEARBY_LINES = 3
SECRET_LINE = "(line not shown: secret file; Read asks the user first)"
# How many entries each tool shows at most; more are counted and the tool says so.
SHOWN = {"Definition": 50, "References": 200, "DocumentSymbols": 300}
# How to narrow a question when not everything is shown.
NARROWER = {
    "References": "narrow with Grep in one folder, or ask about a more specific name",
    "DocumentSymbols": "Read the part of the file you need, or use WorkspaceSymbols with a name",
    "WorkspaceSymbols": "narrow with a longer prefix or a dotted name such as `Cart.add`",
    "Definition": "ask about a more specific name",
}
Q = TypeVar("Q", bound=QueryResult)


# --------------------------------------------------------------------------- inputs


class SymbolAtLine(BaseModel):
    path: str = Field(description="Python file, relative to the workspace or absolute.")
    symbol: str = Field(
        description="The name as written in the code, e.g. `total` or `cart.add` (dotted "
        "names resolve the last part)."
    )
    line: int = Field(ge=1, description="1-based line where the symbol appears, as shown by Read.")


class DocumentSymbolsInput(BaseModel):
    path: str = Field(description="Python file, relative to the workspace or absolute.")


class WorkspaceSymbolsInput(BaseModel):
    query: str = Field(
        min_length=1,
        description="Start of a name (case-insensitive), e.g. `Price` finds `PriceCalculator`; "
        "or a dotted name such as `Cart.add`.",
    )
    limit: int = Field(default=50, ge=1, le=200,
                       description="Maximum number of results shown (all are counted).")


# --------------------------------------------------------------------------- shared steps


def _intel_for(ctx: ToolContext, path: Path, hint: str) -> CodeIntel:
    if ctx.code_intel is None:
        raise ToolError(f"Code intelligence is not available in this session; use Grep {hint}.")
    # With the editor bridge, other languages are answered by the editor's language servers.
    if not is_python_path(path) and not ctx.code_intel.handles_all_languages:
        kind = path.suffix or "extensionless"
        raise ToolError(
            f"Code intelligence for {kind} files is not available (Python only); use Grep {hint}."
        )
    return ctx.code_intel


async def _read(ctx: ToolContext, path: Path) -> str:
    try:
        return (await snapshot_async(ctx.documents, path)).text
    except FileNotFoundError as exc:
        raise ToolError(f"File not found: {ctx.display(path)}") from exc
    except FileReadError as exc:
        raise ToolError(str(exc)) from exc


def _locate(text: str, line: int, symbol: str, shown_path: str) -> tuple[int, int, str]:
    """0-based (line, column) of ``symbol`` near 1-based ``line``, and a note if it moved."""
    total = len(text.splitlines())
    if line > total:
        raise ToolError(f"Line {line} is past the end of {shown_path} ({total} lines).")
    wanted = line - 1
    for offset in _nearest_offsets(NEARBY_LINES):
        candidate = wanted + offset
        column = find_symbol_column(text, candidate, symbol)
        if column is not None:
            note = ""
            if offset:
                note = f"Note: `{symbol}` is not on line {line}; used line {candidate + 1}.\n"
            return candidate, column, note
    names = ", ".join(identifiers_on_line(text, wanted)) or "none"
    raise ToolError(
        f"`{symbol}` does not appear as a whole word on line {line} of {shown_path} or within "
        f"{NEARBY_LINES} lines of it. Identifiers on line {line}: {names}. "
        "Check the line number with Read."
    )


def _nearest_offsets(radius: int) -> list[int]:
    offsets = [0]
    for distance in range(1, radius + 1):
        offsets += [-distance, distance]
    return offsets


async def _bounded(intel: CodeIntel, query: Awaitable[Q], hint: str) -> Q:
    """The query's answer within the tools' limit; past it the query is cancelled (its worker
    freed) and the model is told so."""
    limit = _tool_limit(intel)
    try:
        return await asyncio.wait_for(query, limit)
    except TimeoutError:
        raise ToolError(
            f"Code intelligence did not answer within {limit:g}s (the tools' time limit; "
            f"large project or complex code), so the query was cancelled. Retry once, or use "
            f"Grep {hint}."
        ) from None


def _tool_limit(intel: CodeIntel) -> float:
    return float(getattr(intel, "tool_timeout", None) or intel.timeout)


def _check_timeout(result: QueryResult, intel: CodeIntel, hint: str) -> None:
    if result.skipped:
        raise ToolError(f"Code intelligence skipped this: {result.skipped}. Use Grep {hint}.")
    if result.timed_out:
        raise ToolError(
            f"Code intelligence timed out after {intel.timeout:g}s (large project or complex "
            f"code). Retry once, or use Grep {hint}."
        )


def _truncation_note(result: QueryResult, shown: int, total: int, tool: str) -> str:
    """Says when fewer entries are shown than exist, and how to narrow the question."""
    more = "+" if result.truncated else ""
    if shown >= total and not result.truncated:
        return ""
    return f"\n(showing {shown} of {total}{more}; {NARROWER[tool]})"


def _where(ctx: ToolContext, loc: SymbolLocation) -> str:
    return f"{ctx.display(loc.path)}:{loc.line + 1}"


def _line_text(ctx: ToolContext, loc: SymbolLocation) -> str | None:
    """The location's source line, unless it lies in a secret file."""
    if ctx.file_rules.is_secret(loc.path):
        return SECRET_LINE
    return loc.line_text


async def _secret_definition(intel: CodeIntel, ctx: ToolContext, path: Path, line: int,
                             column: int) -> SymbolLocation | None:
    """Where the name at this position is defined, when that is in a secret file."""
    try:
        found = await _bounded(intel, intel.definition(path, line, column), "for the name")
    except ValueError:
        return None
    return next((loc for loc in found.items if ctx.file_rules.is_secret(loc.path)), None)


async def _query_setup(
    args: SymbolAtLine, ctx: ToolContext
) -> tuple[CodeIntel, Path, int, int, str]:
    path = ctx.resolve(args.path)
    hint = f"for `{args.symbol}`"
    intel = _intel_for(ctx, path, hint)
    text = await _read(ctx, path)
    line, column, note = _locate(text, args.line, args.symbol, ctx.display(path))
    return intel, path, line, column, note


def _bad_position(exc: ValueError) -> ToolError:
    return ToolError(f"Code intelligence could not use that position: {exc}")


# --------------------------------------------------------------------------- tools


class Definition(Tool):
    name = "Definition"
    description = (
        "Find where a Python name is defined, following imports, aliases and re-exports across "
        "files. Give the symbol and the 1-based line it appears on (as shown by Read). Prefer "
        "this over Grep to find the one definition a usage refers to."
    )
    input_model = SymbolAtLine
    access = "read"

    async def call(self, args: SymbolAtLine, ctx: ToolContext) -> str:
        intel, path, line, column, note = await _query_setup(args, ctx)
        hint = f"for `def {args.symbol}` or `class {args.symbol}`"
        try:
            result = await _bounded(intel, intel.definition(path, line, column), hint)
        except ValueError as exc:
            raise _bad_position(exc) from exc
        _check_timeout(result, intel, hint)
        if not result.items:
            return note + (
                f"No definition found for `{args.symbol}` at {ctx.display(path)}:{line + 1} "
                "(builtin, dynamically created, or not resolvable statically)."
            )
        lines = [f"Definition of `{args.symbol}`:"]
        shown = result.items[: SHOWN["Definition"]]
        for loc in shown:
            qualified = f" ({loc.full_name})" if loc.full_name else ""
            lines.append(f"{_where(ctx, loc)}  {loc.kind}{qualified}")
            if (text := _line_text(ctx, loc)) is not None:
                lines.append(f"    {text.strip()}")
        return note + "\n".join(lines) + _truncation_note(
            result, len(shown), len(result.items), "Definition")


class References(Tool):
    name = "References"
    description = (
        "Find every use of a Python name across the project (imports, calls, attribute "
        "accesses), grouped by file with line numbers and line text; includes the definition. "
        "Give the symbol and the 1-based line it appears on. Prefer this over Grep before "
        "renaming or changing a signature: it skips same-named unrelated symbols, strings and "
        "comments."
    )
    input_model = SymbolAtLine
    access = "read"

    async def call(self, args: SymbolAtLine, ctx: ToolContext) -> str:
        intel, path, line, column, note = await _query_setup(args, ctx)
        try:
            result = await _bounded(intel, intel.references(path, line, column),
                                    f"for `{args.symbol}`")
        except ValueError as exc:
            raise _bad_position(exc) from exc
        _check_timeout(result, intel, f"for `{args.symbol}`")
        if not result.items:
            return note + f"No references found for `{args.symbol}`."
        return note + _format_references(ctx, args.symbol, result)


def _format_references(ctx: ToolContext, symbol: str, result: QueryResult) -> str:
    shown = result.items[: SHOWN["References"]]
    by_file: dict[str, dict[int, str]] = defaultdict(dict)
    for loc in shown:
        by_file[ctx.display(loc.path)][loc.line + 1] = (_line_text(ctx, loc) or "").strip()
    count = len(result.items)
    files = len({loc.path for loc in result.items})
    more = "+" if result.truncated else ""
    out = [f"{count}{more} references to `{symbol}` in {files} file{'s' if files != 1 else ''}:"]
    for shown_path, lines in by_file.items():
        out.append(shown_path)
        out.extend(f"  {number}: {text}" for number, text in sorted(lines.items()))
    return "\n".join(out) + _truncation_note(result, len(shown), count, "References")


class Hover(Tool):
    name = "Hover"
    description = (
        "Show the signature and docstring of a Python name (function, class, method, module) "
        "or the inferred type of a variable. Give the symbol and the 1-based line it appears "
        "on. Cheaper than opening the defining file when you only need how to call something."
    )
    input_model = SymbolAtLine
    access = "read"

    async def call(self, args: SymbolAtLine, ctx: ToolContext) -> str:
        intel, path, line, column, note = await _query_setup(args, ctx)
        try:
            result = await _bounded(intel, intel.hover(path, line, column),
                                    f"for `{args.symbol}`")
        except ValueError as exc:
            raise _bad_position(exc) from exc
        _check_timeout(result, intel, f"for `{args.symbol}`")
        if not result.items or not result.items[0].markdown:
            return note + f"No information available for `{args.symbol}`."
        if secret := await _secret_definition(intel, ctx, path, line, column):
            return note + (f"`{args.symbol}` is defined in a secret file ({_where(ctx, secret)}); "
                           "its hover text is not shown. Read that file to ask the user for it.")
        info = result.items[0]
        return note + f"`{args.symbol}` ({info.kind}):\n{info.markdown}"


class DocumentSymbols(Tool):
    name = "DocumentSymbols"
    description = (
        "Outline of a Python file: classes with their methods and attributes, functions and "
        "module-level variables, with 1-based line numbers. Use it to find your way around a "
        "large file before reading parts of it."
    )
    input_model = DocumentSymbolsInput
    access = "read"

    async def call(self, args: DocumentSymbolsInput, ctx: ToolContext) -> str:
        path = ctx.resolve(args.path)
        intel = _intel_for(ctx, path, "for `^class |^def ` in the file")
        await _read(ctx, path)  # clear errors for missing or unreadable files
        hint = "for `^class |^def ` in the file"
        result = await _bounded(intel, intel.document_symbols(path), hint)
        _check_timeout(result, intel, hint)
        shown = ctx.display(path)
        if not result.items:
            return f"{shown}: no classes, functions or variables defined."
        rows = [row for symbol in result.items for row in _outline_rows(symbol)]
        visible = rows[: SHOWN["DocumentSymbols"]]
        return (
            f"{shown}: {len(rows)} symbols\n"
            + "\n".join(visible)
            + _truncation_note(result, len(visible), len(rows), "DocumentSymbols")
        )


def _outline_rows(symbol: OutlineSymbol) -> list[str]:
    return [
        f"{'  ' * depth}{item.kind} {item.name} (line {item.selection.line + 1})"
        for depth, item in symbol.walk()
    ]


class WorkspaceSymbols(Tool):
    name = "WorkspaceSymbols"
    description = (
        "Find classes, functions, methods, modules and module-level variables defined anywhere "
        "in the project's Python code by the start of their name (or a dotted name such as "
        "`Cart.add`). Prefer this over Grep to locate where something is defined when you do "
        "not know the file."
    )
    input_model = WorkspaceSymbolsInput
    access = "read"

    async def call(self, args: WorkspaceSymbolsInput, ctx: ToolContext) -> str:
        intel = ctx.code_intel
        if intel is None:
            raise ToolError(
                f"Code intelligence is not available in this session; use Grep for `{args.query}`."
            )
        result = await _bounded(intel, intel.workspace_symbols(args.query),
                                f"for `{args.query}`")
        _check_timeout(result, intel, f"for `{args.query}`")
        if not result.items:
            return f"No Python symbols starting with `{args.query}` in the workspace."
        rows = [_symbol_row(ctx, loc) for loc in result.items[: args.limit]]
        total = len(result.items)
        more = "+" if result.truncated else ""
        header = f"{total}{more} symbols matching `{args.query}`:"
        return header + "\n" + "\n".join(rows) + _truncation_note(
            result, len(rows), total, "WorkspaceSymbols")


def _symbol_row(ctx: ToolContext, loc: SymbolLocation) -> str:
    qualified = f"  ({loc.full_name})" if loc.full_name and loc.full_name != loc.name else ""
    return f"{loc.kind} {loc.name}  {_where(ctx, loc)}{qualified}"


CODE_INTEL_TOOLS: list[type[Tool]] = [
    Definition,
    References,
    Hover,
    DocumentSymbols,
    WorkspaceSymbols,
]
