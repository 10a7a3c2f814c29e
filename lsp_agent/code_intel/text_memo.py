"""Answers kept per file for the text they were computed from.

An outline depends on the file's text only, so an answer can be kept until the text changes:
each entry holds the text it was computed from and is used only while the file's text is still
equal to it (identical in practice: the same buffer object, or a string comparison). That is
stricter than a document version, which a client may bump without changing the text, and
needs no invalidation hooks: an edit, a save or a change on disk simply no longer matches.
Bounded by entries and by the characters of the texts held; the least recently used go first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 64
MAX_CHARS = 8_000_000  # texts held at most (a few large buffers, or many ordinary files)


class TextMemo(Generic[V]):
    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS):
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[str, tuple[str, V]] = OrderedDict()
        self._chars = 0

    def get(self, key: str, text: str) -> V | None:
        """The value kept for ``key`` if it was computed from ``text``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != text:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, text: str, value: V) -> None:
        self.forget(key)
        if len(text) > self.max_chars:
            return  # would push out everything else and still not fit
        self._entries[key] = (text, value)
        self._chars += len(text)
        while len(self._entries) > self.max_entries or self._chars > self.max_chars:
            _, (old_text, _) = self._entries.popitem(last=False)
            self._chars -= len(old_text)

    def forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._chars -= len(entry[0])

    def __len__(self) -> int:
        return len(self._entries)
