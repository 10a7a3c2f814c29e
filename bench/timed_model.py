"""The scripted model server with timestamps: when each Messages request arrived and when its
response was sent in full, plus the request's size. Benchmarks read them to measure, at the
model's side of the wire, what an agent does between two requests.

Run as a process of its own (so its work never shares a GIL with the agent measured):

    python bench/timed_model.py --scenario FILE

prints ``LISTENING http://127.0.0.1:PORT``. Next to the scripted server's own endpoints
(docs/scenarios.md) it serves ``GET /_timing``: ``{"requests": [{"arrived", "ended",
"bytes", "has_tools", "status"}, ...]}``. Times are ``time.monotonic()`` (CLOCK_MONOTONIC,
one clock for every process on the machine, namespaces included). Loading a scenario or a
reset also forgets the timings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import lsp_agent.scripted.server as scripted  # noqa: E402

Scope = dict[str, Any]


class TimingMiddleware:
    """ASGI middleware: timestamps every POST /v1/messages at arrival and at its last byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if path == "/_timing":
            await self._send_json(send, {"requests": self.snapshot()})
            return
        if path in ("/_scripted/reset", "/_scripted/scenario"):
            with self._lock:
                self.records.clear()
        if path != "/v1/messages":
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"arrived": time.monotonic(), "ended": None, "bytes": 0,
                                  "has_tools": None, "status": None}
        with self._lock:
            self.records.append(record)
        body = bytearray()

        async def counting_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                record["bytes"] = len(body)
                if not message.get("more_body"):
                    record["has_tools"] = b'"tools"' in body and _has_tools(bytes(body))
            return message

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record["ended"] = time.monotonic()

        await self.app(scope, counting_receive, timed_send)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records]

    @staticmethod
    async def _send_json(send: Any, data: Any) -> None:
        payload = json.dumps(data).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _has_tools(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("tools"))
    except (ValueError, AttributeError):
        return False


def serve(scenario: Path) -> int:
    original = scripted.create_app

    def timed_app(engine: Any) -> Any:
        return TimingMiddleware(original(engine))

    scripted.create_app = timed_app
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = scripted.ScriptedModelServer(scenario)
    print(f"LISTENING {server.start()}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


class TimedModel:
    """Client side: start the timed server as a subprocess, load scenarios, read the log."""

    def __init__(self, python: str, workdir: Path, env: dict[str, str],
                 start_timeout: float = 30) -> None:
        import subprocess

        first = workdir / "timed-model-scenario.json"
        first.write_text(json.dumps({"name": "idle", "turns": []}))
        self._proc = subprocess.Popen([python, str(Path(__file__)), "--scenario", str(first)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, env=env)
        line = _read_line(self._proc, start_timeout)
        if not line.startswith("LISTENING "):
            self.close()
            raise RuntimeError(f"timed model server did not start: {line!r}")
        self.base_url = line.split()[1]

    def load(self, scenario: dict[str, Any]) -> None:
        self._post("/_scripted/scenario", scenario)

    def reset(self) -> None:
        self._post("/_scripted/reset", {})

    def timings(self) -> list[dict[str, Any]]:
        return self._get("/_timing")["requests"]

    def records(self) -> list[dict[str, Any]]:
        return self._get("/_scripted/requests")["requests"]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except Exception:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> TimedModel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as resp:
            return json.load(resp)

    def _post(self, path: str, data: dict[str, Any]) -> None:
        request = urllib.request.Request(self.base_url + path, data=json.dumps(data).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()


def _read_line(proc: Any, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return "(no output within the start timeout)"
    return proc.stdout.readline().strip()


def gaps_ms(timings: list[dict[str, Any]]) -> list[float]:
    """Per pair of consecutive requests: the next request's arrival minus the end of the
    previous response (what the agent did in between, tool runs included), in ms."""
    out = []
    for previous, current in itertools.pairwise(timings):
        if previous["ended"] is not None:
            out.append((current["arrived"] - previous["ended"]) * 1000)
    return out


# The parts of a round the client's own clock splits it into (lsp_agent/model/round_clock.py),
# ms each; their sum is the gap at the model server.
CLOCK_PARTS = ("receive", "agent", "send_sdk", "send_httpx", "to_server")
# Not parts of the gap: closing the response (within "agent") and the agent's handling of the
# response's events while it streamed (before the last one was read; partly within "receive").
CLOCK_EXTRAS = ("close", "streaming", "agent_cpu")


def clock_rounds(marks: list[tuple[str, float, float]], timings: list[dict[str, Any]],
                 tools_ms: list[float]) -> list[dict[str, float]]:
    """Per pair of consecutive requests, the gap at the model server split by the client's
    marks, in ms: ``receive`` (the response's last byte sent -> its last event read by the
    client), ``agent`` (that -> the next request handed to the SDK, minus the tool's run
    ``tools_ms[i]``: the agent's own time), ``send_sdk`` (-> the SDK handed it to httpx),
    ``send_httpx`` (-> httpcore starts writing it), ``to_server`` (-> it arrived at the model
    server's app); and CLOCK_EXTRAS. ``marks`` and ``timings`` are the same requests, in order
    (the last ``len(timings)`` requests of ``marks``); [] when they do not pair up."""
    from lsp_agent.model import round_clock as rc

    requests: list[dict[str, float]] = []
    for name, seconds, cpu in marks:
        if name == rc.REQUEST_HANDED:
            requests.append({})
        if requests:
            requests[-1].setdefault(name, seconds)
            requests[-1].setdefault(f"{name}.cpu", cpu)
    requests = requests[len(requests) - len(timings):] if len(requests) >= len(timings) else []
    out = []
    for i, (previous, current) in enumerate(itertools.pairwise(requests)):
        ended, arrived = timings[i]["ended"], timings[i + 1]["arrived"]
        needed = (rc.RESPONSE_READ, rc.REQUEST_TO_HTTPX, rc.REQUEST_SENT)
        if ended is None or rc.RESPONSE_READ not in previous or \
                any(m not in current for m in needed[1:]) or i >= len(tools_ms):
            return []
        read, handed = previous[rc.RESPONSE_READ], current[rc.REQUEST_HANDED]
        out.append({
            "receive": (read - ended) * 1000,
            "agent": (handed - read) * 1000 - tools_ms[i],
            "send_sdk": (current[rc.REQUEST_TO_HTTPX] - handed) * 1000,
            "send_httpx": (current[rc.REQUEST_SENT] - current[rc.REQUEST_TO_HTTPX]) * 1000,
            "to_server": (arrived - current[rc.REQUEST_SENT]) * 1000,
            "close": (previous.get(rc.STREAM_CLOSED, read) - read) * 1000,
            "streaming": previous.get(rc.EVENTS_HANDLED, 0.0) * 1000,
            # The CPU the agent's thread spent in "agent" (the tool's run on a worker thread
            # not counted): its own work, whatever the machine's load.
            "agent_cpu": (current[f"{rc.REQUEST_HANDED}.cpu"]
                          - previous[f"{rc.RESPONSE_READ}.cpu"]) * 1000,
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, type=Path)
    return serve(parser.parse_args(argv).scenario)


if __name__ == "__main__":
    sys.exit(main())
