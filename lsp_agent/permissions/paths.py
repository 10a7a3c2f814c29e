"""Where a path really points, and which paths are protected.

Paths are compared after ``realpath`` (symlinks and ``..`` resolved). Protected names are
compared case-insensitively, so ``.ENV`` or ``.Git/config`` on a case-insensitive file system
are caught as well.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

# Writing these always asks, in every mode (they change how git, the shell or this agent behave,
# or they hold secrets).
_PROTECTED_DIRS = (".git", ".ssh", ".gnupg", ".aws", ".kube", ".docker")
_SETTINGS_DIRS = (".lsp-agent", ".claude")
_SECRET_NAMES = (
    ".env", ".env.*", "*.env", ".netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx",
    "*.jks", "*.keystore", "credentials", "credentials.*", "*.kdbx", "secrets.*",
)
_SHELL_DOTFILES = (
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv",
    ".zprofile", ".zlogin", ".cshrc", ".tcshrc", ".kshrc", ".inputrc", ".gitconfig",
    ".gitmodules", ".gitattributes", ".envrc", ".pythonrc", ".curlrc", ".wgetrc",
)


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


def secret_reason(path: Path) -> str | None:
    """Why reading ``path`` needs the user's consent (it looks like a secret), or None."""
    if why := process_secret_reason(str(path)):
        return why
    parts = [p.casefold() for p in real(path).parts]
    name = parts[-1] if parts else ""
    if any(fnmatch.fnmatchcase(name, pat) for pat in _SECRET_NAMES):
        return f"{path} looks like a secret (credentials or keys)"
    for secret_dir in (".ssh", ".gnupg", ".aws", ".kube", ".docker"):
        if secret_dir in parts[:-1]:
            return f"{path} is inside {secret_dir}, which holds credentials"
    return None


def protected_reason(path: Path) -> str | None:
    """Why writing ``path`` always needs the user's consent, or None."""
    parts = [p.casefold() for p in real(path).parts]
    name = parts[-1] if parts else ""
    for directory in _PROTECTED_DIRS:
        if directory in parts[:-1] or name == directory:
            return f"{path} is inside {directory}: changing it can run code or leak secrets"
    for directory in _SETTINGS_DIRS:
        if directory in parts[:-1] and fnmatch.fnmatchcase(name, "settings*.json"):
            return f"{path} is a permission settings file"
    if parts[-2:-1] == ["lsp-agent"] and ".config" in parts:
        return f"{path} is a permission settings file"
    if name in _SHELL_DOTFILES:
        return f"{path} is a configuration file that runs code (shell or git start-up)"
    return secret_reason(path)


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
