"""procs/liveness.py: a running process is alive; one that exited is not, even before its
parent reaps it (a zombie); nonsense pids are not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from lsp_agent.procs.liveness import pid_alive


def test_running_exited_and_unreaped_processes():
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # it exits; not reaped yet, it is a zombie
    assert not pid_alive(child.pid)
    assert child.poll() == 0  # reaped only now
    assert not pid_alive(None) and not pid_alive(0) and not pid_alive(-1)
