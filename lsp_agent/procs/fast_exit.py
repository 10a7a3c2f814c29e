"""Leaving the process without the interpreter's teardown.

Once a program is done, CPython still spends a noticeable time tearing down its modules (about
half a second once the SDK and its ~1,500 pydantic models are loaded) before the process ends:
time a user of ``lsp-agent run`` waits for, and an editor waits for after ``exit``.
``exit_now`` first does what that teardown does that matters -- waits for the non-daemon
threads and runs the ``atexit`` handlers (the transcript writers drain and close there, logging
flushes) -- flushes stdout and stderr, and then ends the process with ``os._exit``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

# How long the end may wait for threads and atexit handlers: a thread stuck in a read must not
# keep an exiting server alive (an editor would wait on it forever).
GRACE_ENV = "LSP_AGENT_EXIT_GRACE_SECONDS"
DEFAULT_GRACE_S = 10.0


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after the teardown's work that matters, not the rest;
    within a grace period, after which it ends all the same."""
    _start_watchdog(code)
    # The interpreter's own order at exit: threads first (threading._shutdown also runs the
    # hooks of concurrent.futures), then the atexit handlers.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(Exception):
            shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(code)


def _grace_seconds() -> float:
    try:
        return max(0.1, float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S)))
    except ValueError:
        return DEFAULT_GRACE_S


def _start_watchdog(code: int) -> None:
    def give_up() -> None:
        with contextlib.suppress(Exception):
            sys.stderr.write("lsp-agent: a thread or exit handler did not finish; exiting anyway\n")
            sys.stderr.flush()
        os._exit(code)

    watchdog = threading.Timer(_grace_seconds(), give_up)
    watchdog.daemon = True  # never waited for by the shutdown it guards
    watchdog.start()
