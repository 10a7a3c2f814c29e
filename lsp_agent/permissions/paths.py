"""Where a path really points, and which paths are protected.

Paths are compared after ``realpath`` (symlinks and ``..`` resolved). Protected names are
compared case-insensitively, so ``.ENV`` or ``.Git/config`` on a case-insensitive file system
are caught as well. The tables themselves live in ``secrets``.
"""

from __future__ import annotations

import os
import re
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


def is_inside(path: Path, roots: list[Path], *, resolved: bool = False) -> bool:
    """Whether ``path`` is one of ``roots`` or below one, both compared as real paths;
    ``resolved``: ``path`` is already ``real()`` (not resolved again)."""
    subject = path if resolved else real(path)
    return any(subject == r or subject.is_relative_to(r) for r in (real(x) for x in roots))


def secret_reason(path: Path, rules: FileRules = DEFAULT_RULES) -> str | None:
    """Why reading ``path`` needs the user's consent (it looks like a secret), or None."""
    if why := process_secret_reason(str(path)):
        return why
    return rules.secret_reason(path)


def protected_reason(path: Path, rules: FileRules = DEFAULT_RULES) -> str | None:
    """Why writing ``path`` always needs the user's consent, or None."""
    return rules.protected_reason(path)


# Files of /proc that expose what another process holds: its environment (the language
# server's holds its API key) and its memory. (file name, what it is) -- matched in
# /proc/<pid>/ and /proc/<pid>/task/<tid>/, pid written as a number, self, or anything else.
_PROCESS_SECRETS = (
    ("environ", "environment"),
    ("mem", "memory"),
)
_PROC_FILE = re.compile(r"/proc/([^/\s'\"]+)/(?:task/[^/\s'\"]+/)?("
                        + "|".join(name for name, _ in _PROCESS_SECRETS) + r")\b")


def process_secret_reason(text: str) -> str | None:
    """Why a path or a command line naming a process's environment or memory needs consent
    (a secret read, asked in every mode), or None."""
    match = _PROC_FILE.search(text)
    if match is None:
        return None
    pid, name = match.groups()
    what = dict(_PROCESS_SECRETS)[name]
    if pid == str(os.getpid()):
        return f"{match.group(0)}: the language server's {what}, which holds its API key"
    if pid.isdigit():
        return f"{match.group(0)}: the {what} of another process, which can hold credentials"
    return (f"{match.group(0)}: the {what} of a running process, which can hold credentials "
            "such as the language server's API key")
