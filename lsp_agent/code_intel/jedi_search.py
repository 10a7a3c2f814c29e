"""A faster file search for jedi's references, with the same answers. Jedi worker only.

To find references (and, through ``dynamic_params``, the calls of a function whose parameters
it infers) jedi searches the project for files that contain the name: it walks the whole tree
and reads, decodes and regex-searches every file, stopping after 30 files that match (2,000
read). One references query runs that search dozens of times. Profiled on Django (885
files), the walks and the regex searches were about half of a query's time once the parse
trees were warm.

This module keeps jedi's search, its order and its limits, and makes two parts cheap:

- the project's files are walked once per query (an InferenceState is one query), with
  jedi's own walk, so its ``.gitignore`` and folder rules still apply;
- each file's set of words is kept between queries, keyed by its modification time and
  size, so "does this file contain the word ``connect``" is a set lookup. jedi's test is the
  regex ``\\bname\\b`` on the decoded text; for a name made of word characters it holds
  exactly when the name is one of the text's maximal runs of word characters, which is what
  the set holds. Other names, and prefix searches (``complete``), go to jedi's own code.

Only files that match are read again, and handed to jedi as before (parso's cache keeps
their parse trees). ``install()`` swaps jedi's two functions for these; a jedi whose
internals differ from the ones this was written against (0.20) is left alone.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
# jedi reads at most 2,000 files per search, always from the start of the walk, so a project
# of any size puts about that many in the cache (~15 KB each on Django); this only bounds
# the rare case of many folders' worth of files coming and going.
_MAX_CACHED_FILES = 5_000

FileKey = tuple[int, int]  # st_mtime_ns, st_size


class WordCache:
    """The words of each file read, valid while its modification time and size hold."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[FileKey, frozenset[str]]] = {}

    def words(self, path: str, checked: dict[str, FileKey | None]) -> frozenset[str] | None:
        """The words of ``path``; None when it is gone. ``checked`` holds the stats already
        taken in this query, so each file is stat'ed once per query."""
        key = checked[path] if path in checked else _stat_key(path)
        checked[path] = key
        if key is None:
            self._files.pop(path, None)
            return None
        cached = self._files.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        code = read_code(path)
        if code is None:
            return None
        words = frozenset(map(sys.intern, _WORD.findall(code)))
        if len(self._files) >= _MAX_CACHED_FILES:
            self._files.clear()
        self._files[path] = (key, words)
        return words

    def __len__(self) -> int:
        return len(self._files)


def _stat_key(path: str) -> FileKey | None:
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_mtime_ns, stat.st_size


def read_code(path: str) -> str | None:
    """The file's text decoded as jedi decodes it; None when it is gone."""
    from parso import python_bytes_to_unicode

    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        return None
    return python_bytes_to_unicode(raw, errors="replace")


class ProjectSearch:
    """jedi's ``_find_project_modules`` and ``search_in_file_ios``, cached as described above."""

    def __init__(self, references: Any, original_search: Callable[..., Iterator[Any]]):
        self._refs = references  # the jedi.inference.references module
        self._original_search = original_search
        self.words = WordCache()
        # Per query (InferenceState): the project's files in walk order, and the stats taken.
        self._files: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
        self._checked: weakref.WeakKeyDictionary[Any, dict[str, FileKey | None]] = (
            weakref.WeakKeyDictionary())

    def find_project_modules(self, inference_state: Any, module_contexts: Iterable[Any]
                             ) -> Iterator[Any]:
        skipped = {m.py__file__() for m in module_contexts}
        for file_io in self._project_files(inference_state):
            if file_io.path not in skipped:
                yield file_io

    def search_in_file_ios(self, inference_state: Any, file_io_iterator: Iterable[Any],
                           name: str, limit_reduction: int = 1, complete: bool = False
                           ) -> Iterator[Any]:
        if complete or not _WORD.fullmatch(name):
            yield from self._original_search(inference_state, file_io_iterator, name,
                                             limit_reduction=limit_reduction, complete=complete)
            return
        parse_limit = self._refs._PARSED_FILE_LIMIT / limit_reduction
        open_limit = self._refs._OPENED_FILE_LIMIT / limit_reduction
        checked = self._checked.setdefault(inference_state, {})
        opened = parsed = 0
        for file_io in file_io_iterator:
            opened += 1
            module = self._module_with(inference_state, file_io, name, checked)
            if module is not None:
                parsed += 1
                yield module
                if parsed >= parse_limit:
                    break
            if opened >= open_limit:
                break

    def _project_files(self, inference_state: Any) -> list[Any]:
        files = self._files.get(inference_state)
        if files is None:
            from jedi.file_io import FolderIO

            root = FolderIO(str(inference_state.project.path))
            files = self._files[inference_state] = list(
                self._refs.recurse_find_python_files(root))
        return files

    def _module_with(self, inference_state: Any, file_io: Any, name: str,
                     checked: dict[str, FileKey | None]) -> Any:
        """jedi's ``_check_fs`` with the word test first: the module context of the file
        when it contains ``name``, else None."""
        path = str(file_io.path)
        words = self.words.words(path, checked)
        if words is None or name not in words:
            return None
        code = read_code(path)
        if code is None:
            return None
        from jedi.file_io import KnownContentFileIO
        from jedi.inference.imports import load_module_from_path

        module = load_module_from_path(inference_state, KnownContentFileIO(file_io.path, code))
        if module.is_compiled():
            return None
        return module.as_context()


_installed: ProjectSearch | None = None


def install() -> ProjectSearch | None:
    """Swap jedi's project search for ProjectSearch (once per process); None when this
    jedi's internals are not the expected ones (jedi's own search stays)."""
    global _installed
    if _installed is not None:
        return _installed
    try:
        from jedi.inference import references
    except ImportError:
        return None
    expected = ("_find_project_modules", "search_in_file_ios", "recurse_find_python_files",
                "_PARSED_FILE_LIMIT", "_OPENED_FILE_LIMIT")
    if not all(hasattr(references, attr) for attr in expected):
        log.warning("jedi's project search changed; its references search is not cached")
        return None
    search = ProjectSearch(references, references.search_in_file_ios)
    references._find_project_modules = search.find_project_modules
    references.search_in_file_ios = search.search_in_file_ios
    _installed = search
    return search
