"""stdio and TCP transports: our framing (framing.py) and protocol rules (jsonrpc.py) in place of
pygls's reader loop, which goes deaf after one bad header (docs/upstream/pygls-framing.md).

Both return the process exit code: what ``exit`` decided, or 0 when the client just went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO

from lsp_agent.server import start_gc
from lsp_agent.server.framing import BadInput, FrameReader
from lsp_agent.server.tick_writer import TickWriter

if TYPE_CHECKING:
    from pygls.server import JsonRPCServer

    from lsp_agent.server.jsonrpc import RobustProtocol

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
INTERRUPTED = 130  # Ctrl-C, as shells report it (128 + SIGINT)
STOP_GRACE_S = 10.0  # how long stopping after Ctrl-C may take
QUEUED_CHUNKS = 16  # read-ahead of the stdin thread; more waits until the loop catches up


async def run_connection(protocol: RobustProtocol, frames: FrameReader) -> int:
    """Feed the client's messages to the protocol until ``exit`` or the end of the input."""
    while protocol.exit_code is None:
        item = await frames.next()
        if item is None:
            log.info("the client closed the connection")
            break
        try:
            if isinstance(item, BadInput):
                protocol.reject_input(item)
            else:
                protocol.receive(item.data)
        except (BrokenPipeError, ConnectionError):
            log.warning("the client stopped reading; ending the connection")
            break
        except Exception:  # a bug of ours: that one message fails, the server keeps serving
            log.exception("could not handle a message")
        start_gc.resume_soon()  # paused while the server started (start_gc.py)
    protocol.closed = True
    return protocol.exit_code or 0


def serve_stdio(server: JsonRPCServer, stdin: BinaryIO | None = None,
                stdout: BinaryIO | None = None) -> int:
    protocol: Any = server.protocol

    def client_gone() -> None:
        protocol.closed = True

    # The messages of one loop iteration in one write (tick_writer.py).
    writer = TickWriter(stdout or sys.stdout.buffer, on_broken=client_gone)
    protocol.set_writer(writer)

    async def main() -> int:
        reads = _threaded_reads(stdin or sys.stdin.buffer)
        return await run_connection(protocol, FrameReader(reads))

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        with contextlib.suppress(OSError, ValueError):  # the loop is gone: what it left
            writer.flush()
        server.shutdown()


def _threaded_reads(stream: BinaryIO) -> Callable[[], Awaitable[bytes]]:
    """Chunks of ``stream`` read by a daemon thread (a blocked read never holds up exit)."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_CHUNKS)
    read = _raw_read(stream)

    def pump() -> None:
        chunk = b"-"
        while chunk:
            try:
                chunk = read()
            except (OSError, ValueError):  # closed or broken: the same as the end
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
            except Exception:  # the loop is gone: the server is exiting
                return

    threading.Thread(target=pump, name="lsp-agent-stdin", daemon=True).start()
    return chunks.get


def _raw_read(stream: BinaryIO) -> Callable[[], bytes]:
    """os.read on the descriptor: a thread blocked in a buffered read would hold the buffer's
    lock, and the interpreter aborts when it cannot take that lock at exit."""
    try:
        return partial(os.read, stream.fileno(), CHUNK_BYTES)
    except (AttributeError, OSError, ValueError):  # an in-memory stream (tests)
        return partial(getattr(stream, "read1", stream.read), CHUNK_BYTES)


def serve_tcp(server: JsonRPCServer, host: str, port: int) -> int:
    """Serve one client over TCP (for debugging); the server ends with its connection."""
    protocol: Any = server.protocol

    async def main() -> int:
        finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        connected = False

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connected
            if connected:
                log.warning("refused a second client: one connection at a time")
                writer.close()
                return
            connected = True
            protocol.set_writer(writer)
            try:
                code = await run_connection(protocol,
                                            FrameReader(partial(reader.read, CHUNK_BYTES)))
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.run cancels this task, and the stream's done-callback would
                # log a cancelled connection task as an error with a traceback.
                return
            except Exception as exc:
                finished.set_exception(exc)
                return
            finally:
                writer.close()
            finished.set_result(code)

        # Ctrl-C ends the server as a finished connection would (code 130), rather than through
        # asyncio's KeyboardInterrupt path; the clean-up after it is bounded (_stop_watchdog).
        def on_sigint() -> None:
            _stop_watchdog(INTERRUPTED)
            if not finished.done():
                finished.set_result(INTERRUPTED)

        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_sigint)
        listener = await asyncio.start_server(on_client, host, port)
        # Said whatever the log level: whoever started it needs the address (port 0 picks one).
        addresses = ", ".join(_address(s.getsockname()) for s in listener.sockets)
        print(f"lsp-agent: listening on {addresses} (LSP over TCP, one client; Ctrl-C stops)",
              file=sys.stderr, flush=True)
        async with listener:
            return await finished

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        server.shutdown()


def _stop_watchdog(code: int) -> None:
    """End the process with ``code`` if stopping takes longer than STOP_GRACE_S, saying where
    it waited (every thread's stack): a stop that hangs must neither keep the terminal nor go
    unexplained."""
    def give_up() -> None:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"lsp-agent: did not stop within {STOP_GRACE_S:g} s; where it "
                             "waited:\n")
            sys.stderr.flush()
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(code)

    timer = threading.Timer(STOP_GRACE_S, give_up)
    timer.daemon = True
    timer.start()


def _address(sockname: tuple[Any, ...]) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
