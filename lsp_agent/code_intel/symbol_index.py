"""An index of the workspace's Python symbols, for ``workspace/symbol`` and WorkspaceSymbols.

jedi answers a workspace search by walking and parsing the project on every query, which on a
large project costs seconds at p95. The index does that once, in the background, and answers
from memory afterwards:

- It lives in its own child process (``python -m lsp_agent.code_intel.symbol_index``): building
  it parses every file (CPU-bound, would hold the server's GIL), and its memory is then the
  process's own, measurable and freed with it. The server talks to it through one thread, so
  the event loop never waits, and requests reach it in order: a search sent after an update
  sees that update.
- Built after ``initialized`` (``SymbolIndex.start``); until the build is done ``ready`` is
  false and callers fall back to jedi, so early answers are slower, never wrong.
- Kept fresh: open, changed and closed buffers (their text, coalesced), saved files and the
  client's file-watcher events are re-read; a buffer that does not parse keeps its last
  symbols.
- Symbols come from Python's ``ast``: classes, functions and methods at any depth, variables
  of modules and classes, and each file's module. The same set as the jedi search it
  replaces: no parameters, locals or imports.

Matching is jedi's: a case-insensitive prefix of the name; a dotted query (``Cart.add``) must
match the end of the qualified name. Exact names come first, then by path and line.
"""

from __future__ import annotations

import ast
import asyncio
import bisect
import concurrent.futures
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.code_intel.jedi_worker import JediTimeout, JediWorker, JediWorkerError

if TYPE_CHECKING:  # the index process itself never imports jedi
    from lsp_agent.code_intel.jedi_intel import QueryResult, SymbolLocation

log = logging.getLogger(__name__)

INDEX_MODULE = "lsp_agent.code_intel.symbol_index"
BUILD_TIMEOUT = 600.0  # a very large tree on a busy machine; past it the index stays off
QUERY_TIMEOUT = 30.0
MAX_FILE_CHARS = 2_000_000  # as for jedi: larger files are generated, not written
MAX_FILES = 100_000  # past this the tree is not a project; the index stays off
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})
PYTHON_SUFFIXES = (".py", ".pyi")

# One symbol: name, kind, 0-based line, code-point column, qualified name.
Symbol = tuple[str, str, int, int, str]


# --------------------------------------------------------------------------- server side


class SymbolIndex:
    """The server's handle on the index process of one workspace root."""

    def __init__(self, root: Path, command: list[str] | None = None):
        self.root = Path(root).resolve()
        self._worker = JediWorker(Path(), command or [sys.executable, "-m", INDEX_MODULE])
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="symbol-index")
        self._pending: dict[str, str | None] = {}  # path -> buffer text (None: read the disk)
        self._pending_lock = threading.Lock()
        self.started = False
        self.ready = False
        self.failed: str | None = None
        self.built: dict[str, Any] = {}  # files, symbols and seconds of the last build

    def start(self) -> concurrent.futures.Future[None]:
        """Build the index in the background; ``ready`` once it is done. Changes noted from
        now on are applied after the build, in order."""
        self.started = True
        return self._thread.submit(self._build)

    def changed(self, path: Path, text: str | None) -> None:
        """``path`` has new text (an editor buffer) or changed on disk (``text`` None).
        Changes are coalesced: only the latest text of each file is sent."""
        if (not self.started or path.suffix not in PYTHON_SUFFIXES
                or not path.is_relative_to(self.root)):
            return
        with self._pending_lock:
            first = not self._pending
            self._pending[str(path)] = text
        if first:
            self._thread.submit(self._flush)

    async def search(self, query: str, limit: int | None = None) -> QueryResult[SymbolLocation]:
        from lsp_agent.code_intel.jedi_intel import QueryResult, SymbolLocation

        loop = asyncio.get_running_loop()
        request = {"op": "search", "query": query, "limit": limit}
        payload = await loop.run_in_executor(self._thread, self._call, request)
        return QueryResult[SymbolLocation].model_validate(payload)

    async def stats(self) -> dict[str, Any]:
        """Files, symbols and the index process's resident memory (KB)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._call, {"op": "stats"})

    def close(self) -> None:
        self.ready = False
        self._worker.kill()
        self._thread.shutdown(wait=False, cancel_futures=True)

    # -------------------------------------------------------------- in the thread

    def _call(self, request: dict[str, Any], timeout: float = QUERY_TIMEOUT) -> Any:
        return self._worker.call(request, timeout)

    def _build(self) -> None:
        try:
            self.built = self._call({"op": "build", "root": str(self.root)}, BUILD_TIMEOUT)
        except (JediTimeout, JediWorkerError, OSError) as exc:
            self.failed = str(exc)
            log.warning("symbol index of %s not built (%s); workspace symbols use jedi",
                        self.root, exc)
            return
        if self.built.get("complete"):
            self.ready = True
            log.info("symbol index of %s: %s", self.root, self.built)
        else:
            self.failed = f"more than {MAX_FILES} files"
            log.warning("symbol index of %s: %s; workspace symbols use jedi", self.root,
                        self.failed)

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for path, text in pending.items():
            try:
                self._call({"op": "update", "path": path, "text": text})
            except (JediTimeout, JediWorkerError, OSError) as exc:
                self.ready = False  # the index lost track: jedi answers from now on
                self.failed = f"update of {path} failed: {exc}"
                log.warning("symbol index: %s; workspace symbols use jedi", self.failed)
                return


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
    from lsp_agent.code_intel.jedi_worker import _die_with_parent, _frames

    _die_with_parent()
    requests, out = _frames()

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
