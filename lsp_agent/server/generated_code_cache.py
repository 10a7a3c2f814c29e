"""A cache of the code attrs generates, so that a server start does not compile it again.

lsprotocol defines some 570 attrs classes. For each one attrs writes the source of its methods
(``__init__``, ``__eq__``, ``__repr__``...) and compiles it when the class is defined: about a
third of importing lsprotocol, some 0.2 s of every start before the server can answer
``initialize``, the same text every time. Python caches the bytecode of modules, not of code
made at run time; this caches that code by the same rules as Python's own bytecode cache:

- where Python keeps the bytecode of attrs itself (its ``__pycache__``, or under
  ``PYTHONPYCACHEPREFIX``), in one file per Python version (the bytecode format);
- written only when Python writes bytecode (not with ``PYTHONDONTWRITEBYTECODE``), and then
  only if this start compiled a good part of what it used (the first start, a new library);
- each entry keyed by a hash of the exact source and file name attrs compiles, so a changed
  library only misses; an unreadable or foreign file is ignored, and the code compiles as
  without the cache. The code runs exactly as attrs would run its own: the same source, file
  name and compiler flags, evaluated with attrs's own globals and locals.

Installed by ``serve`` before pygls (and so lsprotocol) is imported; saved once the client
sent ``initialized``, on a thread, holding just what this start used.
"""

from __future__ import annotations
import __future__

import hashlib
import importlib.util
import logging
import marshal
import os
import sys
import tempfile
import threading
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = b"lsp-agent generated code 1"  # with Python's magic number: the file's header


class GeneratedCodeCache:
    """Compiled code by the hash of its source and file name, loaded from and saved to ``path``."""

    def __init__(self, path: Path, flags: int):
        self.path = path
        self.flags = flags  # the compiler flags of the module whose compile() this replaces
        self._stored: dict[bytes, types.CodeType] = {}
        self._used: dict[bytes, types.CodeType] = {}
        self._compiled = 0  # misses: code the file did not hold
        self._saved = False
        self._lock = threading.Lock()

    def load(self) -> None:
        try:
            data = self.path.read_bytes()
        except OSError:
            return  # no cache yet
        try:
            header, magic, entries = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            log.debug("generated code cache %s unreadable; ignored", self.path)
            return
        if header != FORMAT or magic != importlib.util.MAGIC_NUMBER or not isinstance(
                entries, dict):
            return  # another version's: rewritten when this one saves
        self._stored = {key: code for key, code in entries.items()
                        if isinstance(key, bytes) and isinstance(code, types.CodeType)}

    def code(self, script: str, filename: str) -> types.CodeType:
        key = hashlib.blake2b(f"{filename}\0{script}".encode(), digest_size=32).digest()
        with self._lock:
            found = self._stored.get(key)
            if found is None:
                found = compile(script, filename, "exec", flags=self.flags, dont_inherit=True)
                self._compiled += 1
            if not self._saved:
                self._used[key] = found
        return found

    def save(self) -> bool:
        """Write what this start used, if it had to compile a good part of it (a tenth); True
        when written. A few misses every start are expected: a hashable frozen class's
        ``__hash__`` source holds a seed that differs per process (cattrs has one), and
        rewriting the whole file for it would gain nothing. Once: what the start needed is
        known by then, and the tables are let go."""
        with self._lock:
            if self._saved:
                return False
            self._saved = True
            entries, self._used, self._stored = self._used, {}, {}
            if self._compiled * 10 < len(entries) or not entries or sys.dont_write_bytecode:
                return False
        data = marshal.dumps((FORMAT, importlib.util.MAGIC_NUMBER, entries))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, self.path)  # whole or not at all, for a start that reads it
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:  # a read-only install: as Python's bytecode, not cached
            log.debug("generated code cache not saved: %s", exc)
            return False
        return True


_installed: GeneratedCodeCache | None = None


def install() -> GeneratedCodeCache | None:
    """Let attrs take its generated code from the cache (once per process). None when this
    attrs has no such step to replace (then it compiles as always)."""
    global _installed
    if _installed is not None:
        return _installed
    try:
        from attr import _make
    except ImportError:
        return None
    original = getattr(_make, "_compile_and_eval", None)
    source = getattr(_make, "__file__", None)
    if not callable(original) or not source:
        return None
    cache = GeneratedCodeCache(cache_path(Path(source)), future_flags(vars(_make)))
    cache.load()
    setattr(_make, "_compile_and_eval", _evaluator(cache))  # noqa: B010 (a private hook)
    _installed = cache
    return cache


def save_soon() -> None:
    """Save the cache on a thread (nothing to do when nothing new was compiled)."""
    if _installed is not None:
        threading.Thread(target=_installed.save, name="lsp-agent-code-cache",
                         daemon=True).start()


def cache_path(module_file: Path) -> Path:
    """Next to the module's own bytecode (``__pycache__`` or the pycache prefix)."""
    pyc = Path(importlib.util.cache_from_source(str(module_file)))
    return pyc.with_name(f"{module_file.stem}.{sys.implementation.cache_tag}.generated")


def future_flags(module_globals: Mapping[str, Any]) -> int:
    """The compiler flags a ``compile()`` call in that module inherits: its future imports."""
    flags = 0
    for value in module_globals.values():
        if isinstance(value, __future__._Feature):
            flags |= value.compiler_flag
    return flags


def _evaluator(cache: GeneratedCodeCache) -> Callable[..., None]:
    def compile_and_eval(script: str, globs: dict[str, Any] | None,
                         locs: Mapping[str, object] | None = None, filename: str = "") -> None:
        eval(cache.code(script, filename), globs, locs)  # attrs's own step, its code

    return compile_and_eval
