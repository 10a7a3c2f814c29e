"""Every process the server starts dies with it, even when the server is killed with SIGKILL.

* Shell commands and hooks may start background jobs, double-fork or call ``setsid``, so
  killing their process group, or ``PR_SET_PDEATHSIG`` on the shell, would miss some:
  - in the sandbox, bubblewrap runs the command in a PID namespace of its own
    (``--unshare-pid``) and dies with the server (``--die-with-parent``); when bubblewrap's
    init process in that namespace dies, the kernel kills every process in it;
  - otherwise ``guarded`` runs the command under the guard (``guard.py``): a small subreaper
    process that inherits every orphan of the command and kills them all when the read end of
    the *life pipe* reaches end of file. The server holds the pipe's only write end (it is
    never inherited), so end of file means the server has exited, however it exited.
* Programs the server runs itself (ripgrep, git, the bubblewrap probe) start no background
  processes: ``child_options()`` gives them ``PR_SET_PDEATHSIG`` (SIGKILL when the server
  dies) and the cleaned environment.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.procs.environment import EnvPolicy, child_env

GUARD = Path(__file__).with_name("guard.py")
PR_SET_PDEATHSIG = 1
SANDBOX_CONTAINMENT = frozenset({"--unshare-pid", "--die-with-parent"})


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()
_life: tuple[int, int, int] | None = None  # (owner pid, read end, write end)


def life_fd() -> int:
    """The read end of the life pipe (created on first use; again in a forked child, which
    must not count on its parent's)."""
    global _life
    if _life is None or _life[0] != os.getpid():
        read, write = os.pipe()  # both close-on-exec: only pass_fds hands the read end on
        _life = (os.getpid(), read, write)
    return _life[1]


def guarded(argv: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """(``argv`` to run instead, the fds to pass): the command under the guard, unless the
    sandbox already contains it (or this is not Linux, where the guard cannot work)."""
    if _prctl is None or not sys.executable or contained_by_sandbox(argv):
        return argv, ()
    fd = life_fd()
    return [sys.executable, "-I", "-S", str(GUARD), str(fd), "--", *argv], (fd,)


def contained_by_sandbox(argv: list[str]) -> bool:
    """Whether ``argv`` runs in bubblewrap with its own PID namespace, dying with us."""
    if not argv or Path(argv[0]).name != "bwrap" or "--" not in argv:
        return False
    return SANDBOX_CONTAINMENT <= set(argv[: argv.index("--")])


def die_with_server() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the server dies (None where
    that is not possible). Only a syscall runs between fork and exec."""
    prctl = _prctl
    if prctl is None:
        return None
    server = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != server:  # the server died before the line above
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def child_options(policy: EnvPolicy | None = None) -> dict[str, Any]:
    """Keyword arguments for ``subprocess`` / ``asyncio.create_subprocess_exec`` of a program
    that starts no background processes: the cleaned environment, death with the server."""
    return {"env": child_env(policy), "preexec_fn": die_with_server()}
