"""One glob language for every path pattern we match: the Glob tool, permission rules and the
secret/protected-path tables. Callers differ only in a few switches, not in how they read
``*``, ``?`` and ``**``.

* ``*`` and ``?`` stay within one path segment; ``**`` crosses segments, and ``**/`` also
  matches zero folders.
* ``[abc]`` / ``[!abc]`` are character classes (``classes=True``); otherwise ``[`` is literal,
  which permission rules need for folders such as ``app/[id]/``.
* ``{a,b}`` are alternatives (``braces=True``).
* ``dir/**`` at the end also matches the folder itself when ``folder_itself=True``.

The result is a regular expression (text) over ``/``-joined paths, to be full-matched.
"""

from __future__ import annotations

import re


def glob_to_regex(glob: str, *, classes: bool = True, braces: bool = False,
                  folder_itself: bool = False) -> str:
    suffix = ""
    if folder_itself and glob.endswith("/**"):
        glob, suffix = glob[:-3], "(?:/.*)?"
    return _translate(glob, classes, braces) + suffix


def _translate(glob: str, classes: bool, braces: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif classes and char == "[" and (end := _class_end(glob, i)) > 0:
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif braces and char == "{" and (end := _brace_end(glob, i)) > 0:
            alternatives = _split_top_level(glob[i + 1 : end])
            out.append("(?:" + "|".join(_translate(alt, classes, braces)
                                        for alt in alternatives) + ")")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """Index of the ``]`` closing a class opened at ``start``; -1 when there is none."""
    i = start + 1
    if i < len(glob) and glob[i] == "!":
        i += 1
    if i < len(glob) and glob[i] == "]":
        i += 1  # a leading ] is a literal member
    return glob.find("]", i)


def _brace_end(glob: str, start: int) -> int:
    depth = 0
    for i in range(start, len(glob)):
        if glob[i] == "{":
            depth += 1
        elif glob[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top_level(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts
