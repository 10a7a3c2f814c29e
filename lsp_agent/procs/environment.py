"""What the server's subprocesses inherit from its environment, and the server's own secrets.

Every process the server starts (Bash commands, hooks, ripgrep, git, bubblewrap) gets
``child_env()``: the server's environment minus the variables matched by ``NEVER_INHERITED``
(credentials by name, and the server's own configuration), plus the settings' ``hideEnv``,
minus the settings' ``passEnv`` for the rows that allow it.

``seal_server_secrets()`` runs once when ``lsp-agent serve`` starts. It takes the server's
credentials (``SERVER_SECRETS``) out of ``os.environ``, so that no subprocess -- including
those that libraries start with the default environment -- can inherit them; blanks them in
the process's initial environment block, which ``/proc/<pid>/environ`` shows to every process
of the same user; and marks the process not dumpable, so that processes of the same user can
neither read its ``/proc/<pid>/environ`` and ``/proc/<pid>/mem`` nor attach a debugger. The
model client gets the key from ``server_secret()``.
"""

from __future__ import annotations

import ctypes
import fnmatch
import functools
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# The credentials the server itself uses: sealed at start-up, never passed on, not even by
# ``passEnv``.
SERVER_SECRETS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


@dataclass(frozen=True)
class HiddenVariable:
    pattern: str  # fnmatch pattern over the upper-cased name
    why: str
    passable: bool  # whether the settings' passEnv may let it through


NEVER_INHERITED: tuple[HiddenVariable, ...] = (
    *(HiddenVariable(name, "the language server's credentials", False)
      for name in SERVER_SECRETS),
    HiddenVariable("LSP_AGENT_*", "the language server's own configuration", True),
    # Generic credential names: API keys, access tokens, client secrets, passwords.
    *(HiddenVariable(f"*{marker}*", "named like a credential", True) for marker in (
        "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL")),
)

PR_SET_DUMPABLE = 4
_sealed: dict[str, str] = {}


@dataclass(frozen=True)
class EnvPolicy:
    """The settings' additions to ``NEVER_INHERITED`` (``sandbox.hideEnv``, ``sandbox.passEnv``;
    names or fnmatch patterns, compared case-insensitively)."""

    hide: tuple[str, ...] = ()
    passed: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> EnvPolicy:
        return cls(_patterns(raw.get("hideEnv")), _patterns(raw.get("passEnv")))

    def hidden(self, name: str) -> bool:
        return _hidden(self, name)


@functools.lru_cache(maxsize=4096)
def _hidden(policy: EnvPolicy, name: str) -> bool:
    """Cached: the same names and policies come back with every command (dozens of names
    times a dozen patterns cost about 2 ms per command otherwise)."""
    upper = name.upper()
    if any(fnmatch.fnmatchcase(upper, p) for p in policy.hide):
        return True
    rule = next((r for r in NEVER_INHERITED if fnmatch.fnmatchcase(upper, r.pattern)), None)
    if rule is None:
        return False
    return not (rule.passable and any(fnmatch.fnmatchcase(upper, p) for p in policy.passed))


DEFAULT_POLICY = EnvPolicy()


def child_env(policy: EnvPolicy | None = None) -> dict[str, str]:
    """The environment for a subprocess: the server's, without what must not be inherited."""
    policy = policy or DEFAULT_POLICY
    return {name: value for name, value in os.environ.items() if not policy.hidden(name)}


def command_env(policy: EnvPolicy | None = None) -> dict[str, str]:
    """The environment of a shell command or hook: ``child_env``, and nothing waits on a
    pager or a password prompt (nobody can answer them)."""
    env = child_env(policy)
    env.update(PAGER="cat", GIT_PAGER="cat", GIT_TERMINAL_PROMPT="0")
    return env


def server_secret(name: str) -> str | None:
    """One of the server's credentials: sealed at start-up, or still in the environment (when
    the server runs in-process, as in tests and ``lsp-agent run``'s client)."""
    return _sealed.get(name) or os.environ.get(name)


def seal_server_secrets() -> list[str]:
    """Move the server's credentials out of reach of its subprocesses; the names sealed."""
    names = [name for name in SERVER_SECRETS if name in os.environ]
    for name in names:
        _sealed[name] = os.environ.pop(name)  # also unsetenv(): gone for every child
        _forget_posix_copy(name)
    if sys.platform.startswith("linux"):
        _blank_initial_environment(names)
        _forbid_inspection()
    if names:
        log.info("sealed %s: no subprocess inherits them", ", ".join(names))
    return names


def _forget_posix_copy(name: str) -> None:
    # ``os.environ`` was copied from ``posix.environ``, which keeps the start-up values.
    import posix

    posix.environ.pop(name.encode(), None)


def _blank_initial_environment(names: Iterable[str]) -> None:
    """Overwrite ``NAME=value`` with NULs in the environment block the kernel shows as
    ``/proc/self/environ`` (unsetenv only drops the pointer to it; the bytes stay)."""
    wanted = {name.encode() for name in names}
    if not wanted:
        return
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
        fd = os.open("/proc/self/mem", os.O_RDWR)
        try:
            block = os.pread(fd, end - start, start)
            offset = 0
            for entry in block.split(b"\0"):
                if entry.split(b"=", 1)[0] in wanted:
                    os.pwrite(fd, b"\0" * len(entry), start + offset)
                offset += len(entry) + 1
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError) as exc:
        log.warning("could not blank the credentials in /proc/self/environ: %s", exc)


def _forbid_inspection() -> None:
    """Not dumpable: /proc/<pid>/environ, mem, maps... belong to root, and ptrace is refused
    to processes of the same user (root and CAP_SYS_PTRACE are not stopped)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")
    except (OSError, AttributeError) as exc:
        log.warning("could not make the server process undumpable: %s", exc)


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v.upper() for v in value if isinstance(v, str) and v)
