"""Less cyclic garbage collection while the server starts.

Importing pygls, pydantic and our modules makes some hundred thousand objects that live as long
as the server; the collector, run every few hundred allocations, scans the older ones again and
again meanwhile, for nothing: a few percent of the start's CPU before the initialize answer.
``serve`` pauses it once lsprotocol is imported, and it resumes once the first message
(normally ``initialize``) has been handled and its answer written.

lsprotocol is imported with the collector on: attrs builds each of its ~570 slotted classes
twice and drops the first, ~9 MB of cyclic garbage that the collector frees as it goes; held to
the end of the start it would stay in the server's memory.
"""

from __future__ import annotations

import asyncio
import gc

_paused = False


def pause() -> None:
    """Stop collecting until ``resume`` (nothing to do when collection is off already)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Collect again, if ``pause`` stopped it."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()


def resume_soon() -> None:
    """``resume`` after what the loop has ready now, the answer's write among it (the writer
    scheduled its flush first: tick_writer.py); at once without a running loop."""
    if not _paused:
        return
    try:
        asyncio.get_running_loop().call_soon(resume)
    except RuntimeError:
        resume()
