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


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` after the teardown's work that matters, not the rest."""
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
