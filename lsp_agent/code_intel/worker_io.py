"""What the server's worker processes (jedi, the symbol index) share: dying with the server,
and a protocol channel that nothing printed can corrupt. Standard library only."""

from __future__ import annotations

import os
import signal
import sys
from typing import IO


def die_with_parent() -> None:
    """On Linux, be killed when the server dies, even in the middle of a jedi call."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # best effort: a closed stdin ends the worker anyway


def protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    """Our own copies of stdin and stdout; fd 1 then points at stderr, so nothing jedi or a
    library prints can corrupt the protocol."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, out
