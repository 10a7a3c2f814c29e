"""Where a path really points, and which paths are protected.

Paths are compared after ``realpath`` (symlinks and ``..`` resolved). Protected names are
compared case-insensitively, so ``.ENV`` or ``.Git/config`` on a case-insensitive file system
are caught as well. The tables themselves live in ``secrets``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules


def real(path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """The real absolute path: ``~`` expanded, relative to ``base``, symlinks and ``..`` gone.

    A path that does not exist yet resolves through its deepest existing parent.
    """
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return Path(os.path.realpath(p))


def is_inside(path: Path, roots: list[Path]) -> bool:
    resolved = real(path)
    return any(resolved == r or resolved.is_relative_to(r) for r in (real(x) for x in roots))


def secret_reason(path: Path, rules: FileRules = DEFAULT_RULES) -> str | None:
    """Why reading ``path`` needs the user's consent (it looks like a secret), or None."""
    return rules.secret_reason(path)


def protected_reason(path: Path, rules: FileRules = DEFAULT_RULES) -> str | None:
    """Why writing ``path`` always needs the user's consent, or None."""
    return rules.protected_reason(path)
