"""``${VAR}`` and ``${VAR:-default}`` in configuration values (Claude Code's syntax)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(text: str, env: Mapping[str, str], missing: list[str] | None = None) -> str:
    """``text`` with variables replaced; an unset variable without a default becomes empty
    and its name is appended to ``missing`` (the caller reports it)."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None and (value or default is None):
            return value
        if default is not None:
            return default
        if missing is not None:
            missing.append(name)
        return ""

    return _VAR.sub(one, text)


def expand_all(value: Any, env: Mapping[str, str], missing: list[str] | None = None) -> Any:
    """``expand`` through strings, lists and the values of objects (keys stay as written)."""
    if isinstance(value, str):
        return expand(value, env, missing)
    if isinstance(value, list):
        return [expand_all(v, env, missing) for v in value]
    if isinstance(value, dict):
        return {k: expand_all(v, env, missing) for k, v in value.items()}
    return value
