"""An index of the workspace's Python symbols, for ``workspace/symbol`` and WorkspaceSymbols.

jedi answers a workspace search by walking and parsing the project on every query, which on a
large project costs seconds at p95. The index does that once, in the background, and answers
from memory afterwards:

- It lives in its own child process (``python -m lsp_agent.code_intel.index_worker``): building
  it parses every file (CPU-bound, would hold the server's GIL), and its memory is then the
  process's own, measurable and freed with it. The server talks to it through one thread, so
  the event loop never waits, and requests reach it in order: a search sent after an update
  sees that update.
- Built on its first use (``SymbolIndex.start``): the first Python buffer the editor opens,
  the first workspace-symbol search (the editor's or an agent tool's). A server that never
  sees Python starts no index process. A search waits a few seconds for a build under way
  (``wait_built``: a build takes about as long as one jedi search of the project, or less);
  past that, and whenever the index failed, callers fall back to jedi, so those answers are
  slower, never wrong.
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

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.code_intel.index_worker import MAX_FILES, PYTHON_SUFFIXES
from lsp_agent.code_intel.jedi_worker import JediTimeout, JediWorker, JediWorkerError

if TYPE_CHECKING:  # the index process itself never imports jedi
    from lsp_agent.code_intel.jedi_intel import QueryResult, SymbolLocation

log = logging.getLogger(__name__)

INDEX_MODULE = "lsp_agent.code_intel.index_worker"
BUILD_TIMEOUT = 600.0  # a very large tree on a busy machine; past it the index stays off
QUERY_TIMEOUT = 30.0
BUILD_WAIT = 5.0  # how long a search waits for a build under way before jedi answers it


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
        # The editor's open buffers (path, text), read when the build starts: they may differ
        # from the disk the build reads.
        self.open_buffers: Callable[[], list[tuple[Path, str]]] | None = None
        self._build_done: concurrent.futures.Future[None] | None = None

    def start(self) -> concurrent.futures.Future[None]:
        """Build the index in the background, once: later calls return the same build.
        ``ready`` once it is done. The open buffers and the changes noted from now on are
        applied after the build, in order."""
        if self._build_done is None:
            self.started = True
            self._build_done = self._thread.submit(self._build)
            for path, text in self.open_buffers() if self.open_buffers is not None else []:
                self.changed(path, text)
        return self._build_done

    async def wait_built(self, within: float) -> bool:
        """Start the build if need be and wait for it, ``within`` seconds at most (it goes on
        after); whether the index is ready."""
        build = self.start()
        if not build.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(build)), within)
        return self.ready

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
