"""Markdown files with a YAML-style frontmatter block, as Claude Code's skills, commands and
agents use it. The subset these files use: ``key: value`` lines with plain, quoted, boolean,
number and ``[a, b]`` values, ``key:`` followed by ``- item`` lines, and ``|`` / ``>`` blocks.
No YAML library is needed for that, and a file outside the subset is reported, not guessed.
"""

from __future__ import annotations

import re
from typing import Any

_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:(?:\s+(.*))?$")
MAX_FRONTMATTER_LINES = 200


class FrontmatterError(ValueError):
    pass


def split(text: str) -> tuple[dict[str, Any], str]:
    """(frontmatter, body). No frontmatter: ({}, text). Raises FrontmatterError."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, min(len(lines), MAX_FRONTMATTER_LINES)) if
                   lines[i].strip() == "---")
    except StopIteration:
        raise FrontmatterError("the frontmatter block is not closed by a '---' line") from None
    body = "\n".join(lines[end + 1:])
    return parse(lines[1:end]), body.lstrip("\n")


def parse(lines: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        match = _KEY.match(line.rstrip())
        if match is None or line[:1].isspace():
            raise FrontmatterError(f"line {i + 2}: expected 'key: value', got {line.strip()!r}")
        key, raw = match.group(1), (match.group(2) or "").strip()
        i += 1
        if raw in ("|", ">", "|-", ">-"):
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i][:1].isspace()):
                block.append(lines[i].strip())
                i += 1
            data[key] = ("\n" if raw.startswith("|") else " ").join(block).strip()
        elif raw == "":
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(scalar(lines[i].strip()[2:].strip()))
                i += 1
            data[key] = items if items else None
        else:
            data[key] = scalar(raw)
    return data


def scalar(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [scalar(part.strip()) for part in _split_list(inner)] if inner else []
    if raw.startswith(("[", "{")):
        raise FrontmatterError(f"unsupported value {raw!r}")
    lowered = raw.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw.split(" #", 1)[0].rstrip()


def _split_list(inner: str) -> list[str]:
    """Split ``a, "b, c", d(e, f)`` at top-level commas."""
    parts, depth, quote, current = [], 0, "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def tool_list(value: Any) -> list[str]:
    """``allowed-tools`` as rules: a list, or one string of comma-separated rules (commas
    inside parentheses belong to the rule)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in _split_list(str(value))]
