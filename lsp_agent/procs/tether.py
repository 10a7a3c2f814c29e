"""Tether: run a long-lived program (an MCP server) so that it and everything it starts dies
with the server, when the spawner cannot pass the life pipe (the ``mcp`` package starts stdio
servers itself, without ``pass_fds`` or ``preexec_fn``).

    python -I -S tether.py -- PROGRAM ARG...

The tether asks the kernel for SIGKILL when its parent (the server) dies, makes a pipe of its
own and runs the program under the guard (``guard.py``) with the pipe's read end as the life
fd. When the server dies, the tether is killed, its write end closes, and the guard's keeper
stops the program and every process it started. SIGTERM to the tether is passed on to the
program; the tether exits with the program's status. Standard library only (fast to start).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
GUARD = Path(__file__).with_name("guard.py")


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") + 1 >= len(argv):
        print("usage: tether.py -- PROGRAM ARG...", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the server died before the line above
        return 1
    read, write = os.pipe()
    try:
        child = subprocess.Popen([sys.executable, "-I", "-S", str(GUARD), str(read), "--",
                                  *command], pass_fds=(read,))
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127
    os.close(read)

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    os.close(write)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
