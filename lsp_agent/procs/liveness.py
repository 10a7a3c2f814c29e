"""Whether a process is still running, by pid (for records that outlive their writer: a warm
server's first client, a worktree's owner)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """A process with this pid exists and has not exited (a zombie, exited but not yet reaped
    by its parent, counts as gone)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: it exists
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
