"""TickWriter (server/tick_writer.py): the messages of one loop iteration go out as one write,
in order, by the end of the next iteration; none is held back outside a loop, past the size
limit or when the transport ends; a client that stopped reading ends the sending."""

from __future__ import annotations

import asyncio
import io
import threading

from lsp_agent.server import tick_writer
from lsp_agent.server.tick_writer import TickWriter


class Stream(io.BytesIO):
    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.broken = broken

    def write(self, data) -> int:  # type: ignore[override]
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        self.writes.append(bytes(data))
        return super().write(data)


async def test_one_iterations_messages_are_one_write_in_order():
    stream = Stream()
    writer = TickWriter(stream)
    for n in range(5):
        writer.write(f"message {n};".encode())
    assert stream.writes == []  # not yet: the iteration may send more
    await asyncio.sleep(0)
    assert stream.writes == [b"message 0;message 1;message 2;message 3;message 4;"]
    writer.write(b"next")
    await asyncio.sleep(0)
    assert stream.writes[1:] == [b"next"]


async def test_a_write_from_a_thread_goes_out_at_once_after_what_was_pending():
    stream = Stream()
    writer = TickWriter(stream)
    writer.write(b"first;")
    thread = threading.Thread(target=writer.write, args=(b"from a thread",))
    thread.start()
    thread.join(10)
    assert stream.getvalue() == b"first;from a thread"


def test_outside_a_loop_a_write_goes_out_at_once():
    stream = Stream()
    TickWriter(stream).write(b"now")
    assert stream.writes == [b"now"]


async def test_a_large_backlog_is_written_without_waiting(monkeypatch):
    monkeypatch.setattr(tick_writer, "MAX_PENDING_BYTES", 10)
    stream = Stream()
    writer = TickWriter(stream)
    writer.write(b"12345")
    writer.write(b"678901")
    assert stream.writes == [b"12345678901"]


async def test_flush_writes_what_the_loop_would_have():
    stream = Stream()
    writer = TickWriter(stream)
    writer.write(b"last words")
    writer.flush()  # the transport ends: its loop will not run the scheduled flush
    assert stream.getvalue() == b"last words"
    await asyncio.sleep(0)
    assert stream.writes == [b"last words"]


async def test_a_client_that_stopped_reading_is_reported_once_not_raised():
    gone: list[bool] = []
    writer = TickWriter(Stream(broken=True), on_broken=lambda: gone.append(True))
    writer.write(b"lost")
    await asyncio.sleep(0)
    assert gone == [True]
