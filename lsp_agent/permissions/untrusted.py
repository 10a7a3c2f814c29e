"""Untrusted names (file names, paths from the disk or from git) as they are shown.

A file may be called ``fake.txt\\n/etc/passwd: created``: printed as is inside a tool result or
a permission prompt, it forges a line. Every name that is not entirely printable is shown as a
quoted string with escapes instead (Python's ``repr``): newlines, tabs, control characters,
and invisible or direction-changing Unicode (U+2028, U+202E, ...) become ``\\n``, ``\\u202e``.
Printable names are shown unchanged.
"""

from __future__ import annotations


def shown(name: str) -> str:
    """``name`` as it may be printed: unchanged when printable, else quoted and escaped."""
    return name if name.isprintable() else repr(name)
