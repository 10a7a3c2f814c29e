"""Nothing started by a test outlives its event loop: a subprocess transport closed by the
garbage collector after the loop ended fails ("Event loop is closed"), which pytest reports as
a PytestUnraisableExceptionWarning in some later, unrelated test."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
from pathlib import Path
from typing import Any

from lsp_agent.permissions.hooks import run_bounded


def test_a_cancelled_hook_is_reaped_before_its_event_loop_ends(tmp_path: Path):
    started = tmp_path / "started"

    async def cancel_a_running_hook() -> None:
        hook = asyncio.ensure_future(run_bounded(f"touch {started}; sleep 30", "", tmp_path, 60))
        for _ in range(500):  # until the hook runs (bounded: at most ~10 s)
            if started.exists():
                break
            await asyncio.sleep(0.02)
        assert started.exists()
        hook.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hook

    unraisable: list[Any] = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(cancel_a_running_hook())
        loop.close()  # at once, as a test's loop is closed when the test returns
        for watcher in threading.enumerate():  # asyncio's child watchers hold the transports
            if "waitpid-" in watcher.name:
                watcher.join(10)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert [str(u.exc_value) for u in unraisable] == []
