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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, type=Path)
    return serve(parser.parse_args(argv).scenario)


if __name__ == "__main__":
    sys.exit(main())
