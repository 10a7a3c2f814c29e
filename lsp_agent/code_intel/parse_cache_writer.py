"""parso's disk cache written after the answer, not during the query. Jedi worker only.

parso keeps each parsed file in memory and also pickles it into jedi's cache folder, so the
next process loads it instead of parsing again. The pickling is done inside the query that
parsed the file: profiled on Django, it was about a fifth of the CPU of a references query
that meets files for the first time (one query parses dozens of files). Nothing in the
answer needs the pickle, so ``DeferredPickles`` takes parso's write, keeps it, and the worker
writes the pending pickles between queries, one file at a time and only while no request
is waiting (``flush``). A query that arrives meanwhile waits for one file's write at most.

A pickle is written only if parso still holds that very parse of the file: a tree that was
re-parsed since (a later edit, the diff parser working on the same tree) is not saved, so the
cache never pairs a file's modification time with other text. A worker that is killed loses
its pending pickles, which only costs a parse in a later process.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Callable
from typing import IO, Any

log = logging.getLogger(__name__)

MAX_PENDING = 5_000  # parse trees are in memory anyway; this only bounds the bookkeeping

SaveFunction = Callable[..., None]


class DeferredPickles:
    """Stands in for ``parso.cache._save_to_file_system``: keeps the writes for ``flush``."""

    def __init__(self, save: SaveFunction, current: Callable[[Any, Any], Any]):
        self._save = save  # parso's own writer
        self._current = current  # (hashed grammar, path) -> the item parso holds now
        self._pending: dict[tuple[Any, Any], tuple[Any, Any]] = {}

    def __call__(self, hashed_grammar: Any, path: Any, item: Any, cache_path: Any = None) -> None:
        key = (hashed_grammar, path)
        self._pending.pop(key, None)  # the latest parse goes last
        if len(self._pending) >= MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        self._pending[key] = (item, cache_path)

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Write pending pickles, oldest first, until none is left or ``should_stop()``;
        the number written."""
        written = 0
        while self._pending and not should_stop():
            key = next(iter(self._pending))
            item, cache_path = self._pending.pop(key)
            if self._current(*key) is not item:
                continue  # parsed again since: that parse has its own entry, or none
            try:
                self._save(key[0], key[1], item, cache_path=cache_path)
                written += 1
            except OSError as exc:  # a cache that cannot be written only costs time later
                log.debug("parso cache not written for %s: %s", key[1], exc)
        return written


def input_waiting(stream: IO[bytes]) -> Callable[[], bool]:
    """A test for "a request has arrived on ``stream``" that does not read it."""
    fd = stream.fileno()

    def waiting() -> bool:
        ready, _, _ = select.select([fd], [], [], 0)
        return bool(ready)

    return waiting


_installed: DeferredPickles | None = None


def install() -> DeferredPickles | None:
    """Defer parso's pickling in this process (once); None where it stays as it was: a
    parso whose cache internals differ, or a platform whose pipes ``select`` cannot watch."""
    global _installed
    if _installed is not None:
        return _installed
    if os.name != "posix":
        return None
    try:
        from parso import cache
    except ImportError:
        return None
    save = getattr(cache, "_save_to_file_system", None)
    if save is None or not isinstance(getattr(cache, "parser_cache", None), dict):
        log.warning("parso's cache changed; its pickles are written during queries")
        return None

    def current(hashed_grammar: Any, path: Any) -> Any:
        return cache.parser_cache.get(hashed_grammar, {}).get(path)

    _installed = DeferredPickles(save, current)
    cache._save_to_file_system = _installed
    return _installed
