"""What the server writes to stdout within one turn of the event loop, as one write.

A model round sends several messages within microseconds of each other (the streamed text,
the tool call, its start, the usage, the result, a progress report...). Written one by one,
each costs a ``write`` system call, and each wakes the client, which on a small machine then
competes with the server for a CPU in the middle of the round. Here the messages of one loop
iteration are joined and written once, when the loop gets to the flush it scheduled with the
first of them (``call_soon``: after the callbacks that are ready, before the loop waits for
anything): nothing waits longer than the iteration it was sent in, and the order is kept.

Written at once instead: from a thread that runs no loop (a write is never left to a loop
that may not come back to it), and past ``MAX_PENDING_BYTES``. ``flush`` writes what is
pending (the transport calls it when it ends, as the loop will not run the scheduled flush).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 1 << 20


class TickWriter:
    def __init__(self, stream: BinaryIO, on_broken: Callable[[], None] | None = None):
        self._stream = stream
        self._on_broken = on_broken  # the client stopped reading (a deferred write failed)
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._lock = threading.Lock()  # handlers pygls runs on threads may write too

    def write(self, data: bytes) -> None:
        with self._lock:
            self._pending.append(data)
            self._size += len(data)
            if self._size < MAX_PENDING_BYTES and self._schedule():
                return
        self.flush()

    def _schedule(self) -> bool:
        """Whether a flush on the running loop will write what is pending."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a thread: at once (with what the loop left pending, in order)
            return False
        if self._scheduled:
            return True
        loop.call_soon(self._flush_scheduled)
        self._scheduled = True
        return True

    def _flush_scheduled(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError) as exc:  # a broken pipe, a closed stream: the client left
            log.warning("the client stopped reading (%s); sending nothing more", exc)
            if self._on_broken is not None:
                self._on_broken()

    def flush(self) -> None:
        with self._lock:
            self._scheduled = False
            if not self._pending:
                return
            data = b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            self._stream.write(data)
            self._stream.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._stream.close()
