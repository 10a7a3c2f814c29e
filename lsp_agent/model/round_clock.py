"""Client-side timestamps of each model request, for the benchmarks only.

The model server can time a round from outside (a response's last byte to the next request's
arrival: bench/timed_model.py), but not say which part of it was the agent and which the HTTP
client. This clock says it from inside: the model service marks when a response's last event
was read, when the response was closed, when the next request's body was handed to the SDK's
client, when the SDK handed it to httpx and when httpcore had written it.

Off unless ``LSP_AGENT_ROUND_CLOCK`` names a file when this module is first imported (or a
benchmark calls ``enable``): then each mark appends one line, ``<mark> <seconds> <cpu>``: seconds
of ``time.monotonic()`` (the model server's clock too) and the CPU time of the thread that
marked (``time.thread_time()``: what the agent's process worked, whatever else the machine
ran). Off, a mark is one function call that
returns at once, and the SDK's client is left as it is.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Any

ENV = "LSP_AGENT_ROUND_CLOCK"

# The marks, in the order one request makes them.
REQUEST_HANDED = "request_handed"  # body serialized, handed to the SDK's client
REQUEST_TO_HTTPX = "request_to_httpx"  # the SDK built it and handed it to httpx
REQUEST_SENT = "request_sent"  # httpcore starts writing the request to the socket
RESPONSE_READ = "response_read"  # the response's last event read (its body consumed)
# Not a moment but a duration: the seconds the agent spent on the response's events while it
# streamed (from an event handed over to the next one asked for).
EVENTS_HANDLED = "events_handled"
STREAM_CLOSED = "stream_closed"  # the response closed, its connection back in the pool
MARKS = (REQUEST_HANDED, REQUEST_TO_HTTPX, REQUEST_SENT, RESPONSE_READ, EVENTS_HANDLED,
         STREAM_CLOSED)
# httpcore's trace event for the moment it starts writing the request: the model server's app
# starts on the headers, its body may follow in another write.
_WRITING = "http11.send_request_headers.started"

_fd: int | None = None
_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()


def enable(path: str | os.PathLike[str] | None) -> None:
    """Append marks to ``path`` from now on; None turns the clock off."""
    global _fd
    if _fd is not None:
        os.close(_fd)
        _fd = None
    if path:
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def enabled() -> bool:
    return _fd is not None


def mark(name: str, seconds: float | None = None) -> None:
    """Mark ``name`` now (or with ``seconds``, a duration)."""
    if _fd is None:
        return
    value = time.monotonic() if seconds is None else seconds
    os.write(_fd, f"{name} {value:.6f} {time.thread_time():.6f}\n".encode())


def instrument(client: Any) -> None:
    """With the clock on, have the SDK's httpx client mark when it gets a request and when
    httpcore wrote it (an httpx request hook that adds httpcore's ``trace`` extension). Once
    per client; nothing when the clock is off."""
    if _fd is None or client in _instrumented:
        return
    http = getattr(client, "_client", None)  # the SDK's httpx.AsyncClient
    if http is None or not hasattr(http, "event_hooks"):
        return
    hooks = http.event_hooks
    hooks["request"] = [*hooks.get("request", []), _on_request]
    http.event_hooks = hooks
    _instrumented.add(client)


async def _on_request(request: Any) -> None:
    mark(REQUEST_TO_HTTPX)
    request.extensions = {**request.extensions, "trace": _trace}


async def _trace(event: str, _info: dict[str, Any]) -> None:
    if event == _WRITING:
        mark(REQUEST_SENT)


def read(path: str | os.PathLike[str]) -> list[tuple[str, float, float]]:
    """The marks a file holds, (name, seconds, thread CPU seconds), in order; a torn last line
    (a killed process) is skipped."""
    out = []
    with open(path, encoding="utf-8") as marks:
        for line in marks:
            fields = line.split()
            try:
                out.append((fields[0], float(fields[1]), float(fields[2])))
            except (IndexError, ValueError):
                continue
    return out


enable(os.environ.get(ENV))
