"""The symbol index process: the symbols of every Python file under a workspace root, from
Python's ``ast``, searched by name. The server's side is ``symbol_index.SymbolIndex``; this
module imports only the standard library, so the process stays small (its memory is the index).

Protocol (as the jedi worker's): one JSON object per line; a start-up line answered
``{"ready": true}``, then ``{"op": "build", "root"}``, ``{"op": "update", "path", "text"}``
(``text`` null: read the disk; a missing file is forgotten), ``{"op": "search", "query",
"limit"}`` and ``{"op": "stats"}``, each answered ``{"ok": ...}`` or ``{"error", "type"}``.
"""

from __future__ import annotations

import ast
import bisect
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsp_agent.code_intel.worker_io import die_with_parent, protocol_streams

MAX_FILE_CHARS = 2_000_000  # as for jedi: larger files are generated, not written
MAX_FILES = 100_000  # past this the tree is not a project; the index stays off
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
PYTHON_SUFFIXES = (".py", ".pyi")

# One symbol: name, kind, 0-based line, code-point column, qualified name.
Symbol = tuple[str, str, int, int, str]


# --------------------------------------------------------------------------- the index


class Index:
    """The symbols of every Python file under a root, in the index process."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, list[Symbol]] = {}
        # Every symbol by lower-cased name, sorted: a prefix is a bisect away. Rebuilt at the
        # first search after a change (cheap next to parsing; edits come one file at a time).
        self._by_name: list[tuple[str, str, Symbol]] = []
        self._keys: list[str] = []
        self._stale = True

    def build(self) -> dict[str, Any]:
        started = time.perf_counter()
        complete = True
        for count, path in enumerate(_python_files(self.root)):
            if count >= MAX_FILES:
                complete = False
                break
            self.update(path, None)
        self._starting_with("")  # sort now, not at the first search
        return {"files": len(self.files), "symbols": self.symbol_count(), "complete": complete,
                "seconds": round(time.perf_counter() - started, 3)}

    def update(self, path: Path, text: str | None) -> int:
        if text is None:
            try:
                if path.stat().st_size > MAX_FILE_CHARS * 4:
                    return 0
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:  # deleted or unreadable: nothing defined there any more
                self._forget(path)
                return 0
        if len(text) > MAX_FILE_CHARS:
            self._forget(path)
            return 0
        symbols = file_symbols(text, _module_name(self.root, path))
        if symbols is not None:  # a file that does not parse keeps its last symbols
            self.files[str(path)] = symbols
            self._stale = True
        return len(self.files.get(str(path), ()))

    def _forget(self, path: Path) -> None:
        if self.files.pop(str(path), None) is not None:
            self._stale = True

    def search(self, query: str, limit: int | None) -> dict[str, Any]:
        text = query.strip()
        if not text:
            return {"items": []}
        name = text.rsplit(".", 1)[-1]
        last = name.lower()
        found = self._starting_with(last)
        if "." in text:  # a qualified name: the last part whole, the rest must match too
            dotted = text.lower()
            found = [(path, s) for path, s in found if s[0].lower() == last
                     and (s[4].lower() == dotted or s[4].lower().endswith("." + dotted))]
        matches = sorted(found, key=lambda m: (_match_rank(m[1][0], name), m[0], m[1][2]))
        truncated = limit is not None and len(matches) > limit
        shown = matches[:limit] if limit is not None else matches
        return {"items": [_location(path, s) for path, s in shown], "truncated": truncated}

    def _starting_with(self, prefix: str) -> list[tuple[str, Symbol]]:
        if self._stale:
            self._by_name = sorted(
                ((sys.intern(s[0].lower()), path, s)
                 for path, symbols in self.files.items() for s in symbols),
                key=lambda entry: entry[0])
            self._keys = [entry[0] for entry in self._by_name]
            self._stale = False
        start = bisect.bisect_left(self._keys, prefix)
        end = bisect.bisect_left(self._keys, prefix + "\U0010ffff", lo=start)
        return [(path, s) for _, path, s in self._by_name[start:end]]

    def symbol_count(self) -> int:
        return sum(len(symbols) for symbols in self.files.values())

    def stats(self) -> dict[str, Any]:
        return {"files": len(self.files), "symbols": self.symbol_count(), "rss_kb": _rss_kb()}


def _match_rank(name: str, wanted: str) -> int:
    """The name as typed first, then in another case, then longer names."""
    if name == wanted:
        return 0
    return 1 if name.lower() == wanted.lower() else 2


def _location(path: str, symbol: Symbol) -> dict[str, Any]:
    name, kind, line, column, full_name = symbol
    end = column if kind == "module" else column + len(name)
    return {"path": path, "line": line, "column": column, "end_line": line, "end_column": end,
            "name": name, "kind": kind, "full_name": full_name}


def _python_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(Path(folder) / d))
        for name in sorted(files):
            if name.endswith(PYTHON_SUFFIXES):
                yield Path(folder) / name


def _skipped_dir(path: Path) -> bool:
    """Hidden folders, caches, installed packages and virtual environments."""
    return (path.name.startswith(".") or path.name in SKIPPED_DIRS
            or (path / "pyvenv.cfg").exists())


def _module_name(root: Path, path: Path) -> str:
    try:
        parts = list(path.relative_to(root).with_suffix("").parts)
    except ValueError:
        parts = [path.stem]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or path.parent.name


# --------------------------------------------------------------------------- symbols of a file

_DEF_KEYWORDS = re.compile(r"(?:async\s+)?(?:def|class)\s+")
# LSP's (and Python's) line ends; workspace.positions has the same rule but imports lsprotocol,
# which the index process does not need.
_LINE_END = re.compile(r"\r\n|\r|\n")


def file_symbols(text: str, module: str) -> list[Symbol] | None:
    """The file's symbols, or None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # half-typed code, or a NUL byte
        return None
    lines = _LINE_END.split(text)
    symbols: list[Symbol] = [(module.rsplit(".", 1)[-1], "module", 0, 0, module)]
    _scope(tree.body, module, lines, symbols, in_function=False)
    return symbols


def _scope(body: list[ast.stmt], owner: str, lines: list[str], out: list[Symbol],
           in_function: bool) -> None:
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else _function_kind(node)
            line, column = _name_position(node, lines)
            full = f"{owner}.{node.name}"
            out.append((sys.intern(node.name), kind, line, column, full))
            _scope(node.body, full, lines, out, in_function=kind != "class")
        elif in_function:
            _nested_definitions(node, owner, lines, out)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in _assigned_names(target):
                    line = name.lineno - 1
                    column = _columns(lines, line, name.col_offset)
                    out.append((sys.intern(name.id), "statement", line, column,
                                f"{owner}.{name.id}"))
        else:
            for block in _blocks(node):
                _scope(block, owner, lines, out, in_function=False)


def _nested_definitions(node: ast.stmt, owner: str, lines: list[str],
                        out: list[Symbol]) -> None:
    """Classes and functions inside a function's if/for/with/try blocks."""
    for block in _blocks(node):
        _scope(block, owner, lines, out, in_function=True)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists inside a compound statement (if, for, while, with, try, match)."""
    for field in ("body", "orelse", "finalbody"):
        block = getattr(node, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for handler in getattr(node, "handlers", ()):
        yield handler.body
    for case in getattr(node, "cases", ()):
        yield case.body


def _assigned_names(target: ast.expr) -> Iterator[ast.Name]:
    if isinstance(target, ast.Name):
        yield target
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _assigned_names(element)
    elif isinstance(target, ast.Starred):
        yield from _assigned_names(target.value)


def _function_kind(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    for decorator in node.decorator_list:
        name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(
            decorator, "id", "")
        if name in ("property", "cached_property"):
            return "property"
    return "function"


def _name_position(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                   lines: list[str]) -> tuple[int, int]:
    """Where the name after ``def``/``class`` is (ast points at the keyword)."""
    line = node.lineno - 1
    column = _columns(lines, line, node.col_offset)
    text = lines[line] if line < len(lines) else ""
    keyword = _DEF_KEYWORDS.match(text, column)
    return line, keyword.end() if keyword else column


def _columns(lines: list[str], line: int, utf8_offset: int) -> int:
    """ast counts columns in UTF-8 bytes; positions here are code points."""
    text = lines[line] if line < len(lines) else ""
    if text.isascii():
        return utf8_offset
    return len(text.encode("utf-8")[:utf8_offset].decode("utf-8", errors="replace"))


def _rss_kb() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for row in status:
                if row.startswith("VmRSS:"):
                    return int(row.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- the process


def main() -> None:
    die_with_parent()
    requests, out = protocol_streams()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")
        out.flush()

    if not requests.readline():  # the start-up line (shared with the jedi worker's protocol)
        return
    send({"ready": True})
    index: Index | None = None
    for line in requests:
        request = json.loads(line)
        try:
            op = request["op"]
            if op == "build":
                index = Index(Path(request["root"]))
                send({"ok": index.build()})
            elif index is None:
                send({"error": "the index is not built", "type": "RuntimeError"})
            elif op == "update":
                send({"ok": index.update(Path(request["path"]), request.get("text"))})
            elif op == "search":
                send({"ok": index.search(request["query"], request.get("limit"))})
            else:
                send({"ok": index.stats()})
        except Exception as exc:  # reported to the server, which falls back to jedi
            send({"error": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__})


if __name__ == "__main__":
    main()
