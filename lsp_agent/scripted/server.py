"""A local HTTP server that speaks Anthropic's Messages API and replays scripted turns.

The real ``anthropic`` SDK works against it unmodified (point ``base_url`` at it). It is used by
tests, benchmarks and the offline demo. The scenario format is documented in
``docs/scenarios.md``.

In-process::

    with ScriptedModelServer(Path("scenario.json")) as server:
        client = AsyncAnthropic(api_key="test", base_url=server.base_url)

As a subprocess: ``python -m lsp_agent.scripted.server --scenario FILE [--port 0]`` prints
``LISTENING http://127.0.0.1:PORT`` and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lsp_agent.scripted.engine import EXHAUSTED_TEXT, MISMATCH_PREFIX, Plan, ScriptedEngine
from lsp_agent.scripted.scenario import (
    ERROR_STATUS,
    Scenario,
    ScenarioError,
)
from lsp_agent.scripted.usage import estimate_request_tokens
from lsp_agent.scripted.wire import encode_sse, error_body

__all__ = [
    "EXHAUSTED_TEXT",
    "MISMATCH_PREFIX",
    "Scenario",
    "ScenarioError",
    "ScriptedModelServer",
    "create_app",
    "main",
]

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _api_error(status: int, error_type: str, message: str, **headers: str) -> JSONResponse:
    request_id = _request_id()
    return JSONResponse(
        error_body(error_type, message, request_id),
        status_code=status,
        headers={"request-id": request_id, **headers},
    )


def _is_authenticated(request: Request) -> bool:
    if request.headers.get("x-api-key"):
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    """The request's JSON object, or the error response the real API would give."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _api_error(400, "invalid_request_error", f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _api_error(400, "invalid_request_error", "request body must be a JSON object")
    return body


def _missing_field(body: dict[str, Any], required: dict[str, type]) -> str | None:
    for name, kind in required.items():
        if name not in body:
            return f"{name}: Field required"
        if not isinstance(body[name], kind) or isinstance(body[name], bool):
            return f"{name}: Input should be a valid {kind.__name__}"
    return None


async def _checked_request(
    request: Request, required: dict[str, type]
) -> dict[str, Any] | JSONResponse:
    if not _is_authenticated(request):
        return _api_error(401, "authentication_error", "x-api-key header is required")
    body = await _json_body(request)
    if isinstance(body, JSONResponse):
        return body
    problem = _missing_field(body, required)
    if problem:
        return _api_error(400, "invalid_request_error", problem)
    return body


def create_app(engine: ScriptedEngine) -> Starlette:
    """The ASGI app serving ``engine``: the Messages API plus the ``/_scripted`` controls."""

    async def messages(request: Request) -> Response:
        body = await _checked_request(request, {"model": str, "messages": list, "max_tokens": int})
        if isinstance(body, Response):
            return body
        plan = engine.plan(body)
        if plan.stall_ms:
            await asyncio.sleep(plan.stall_ms / 1000)
        if plan.http_error is not None:
            return _fault_response(plan)
        if body.get("stream"):
            return _stream_response(engine, plan)
        return _json_message_response(engine, plan)

    async def count_tokens(request: Request) -> Response:
        body = await _checked_request(request, {"model": str, "messages": list})
        if isinstance(body, Response):
            return body
        return JSONResponse(
            {"input_tokens": estimate_request_tokens(body)}, headers={"request-id": _request_id()}
        )

    async def recorded(_: Request) -> Response:
        return JSONResponse({"requests": engine.records()})

    async def replace_scenario(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            scenario = Scenario.from_data(body, source="posted scenario")
        except ScenarioError as exc:
            return _api_error(400, "invalid_request_error", str(exc))
        engine.load(scenario)
        return JSONResponse({"ok": True, "name": scenario.name, "turns": len(scenario.turns)})

    async def reset(_: Request) -> Response:
        engine.reset()
        return JSONResponse({"ok": True})

    async def not_found(_: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        error_type = "not_found_error" if status == 404 else "invalid_request_error"
        return _api_error(status, error_type, getattr(exc, "detail", "Not found"))

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/_scripted/requests", recorded, methods=["GET"]),
            Route("/_scripted/scenario", replace_scenario, methods=["POST"]),
            Route("/_scripted/reset", reset, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )


def _fault_response(plan: Plan) -> Response:
    fault = plan.http_error
    assert fault is not None
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    return _api_error(fault.http_status, fault.resolved_type(), fault.resolved_message(), **headers)


def _json_message_response(engine: ScriptedEngine, plan: Plan) -> Response:
    fault = plan.stream_error
    if fault is not None:
        # A non-streaming request cannot fail half-way: the same failure becomes an HTTP error.
        status = ERROR_STATUS.get(fault.stream_error, 500)
        return _api_error(status, fault.stream_error, fault.resolved_message())
    assert plan.message is not None
    engine.complete(plan)
    return JSONResponse(plan.message.as_json(), headers={"request-id": _request_id()})


def _stream_response(engine: ScriptedEngine, plan: Plan) -> Response:
    headers = {"request-id": _request_id(), "cache-control": "no-cache"}
    return StreamingResponse(
        _stream_events(engine, plan), media_type="text/event-stream", headers=headers
    )


async def _stream_events(engine: ScriptedEngine, plan: Plan) -> AsyncIterator[bytes]:
    assert plan.message is not None
    events = plan.message.events()
    # An injected error always arrives before message_stop, however large after_events is.
    cut = min(plan.stream_error.after_events, len(events) - 1) if plan.stream_error else None
    for index, (event_type, data) in enumerate(events):
        if cut is not None and index == cut:
            fault = plan.stream_error
            assert fault is not None
            yield encode_sse("error", error_body(fault.stream_error, fault.resolved_message()))
            return
        if event_type == "content_block_delta" and plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        if event_type == "message_stop":
            engine.complete(plan)
        yield encode_sse(event_type, data)


class ScriptedModelServer:
    """The scripted server on a background thread with its own event loop."""

    def __init__(
        self,
        scenario: Scenario | dict[str, Any] | Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._engine = ScriptedEngine(Scenario.coerce(scenario))
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the scripted model server is not running; call start() first")
        return self._base_url

    @property
    def scenario(self) -> Scenario:
        return self._engine.scenario

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of the Messages requests received so far, in order."""
        return [record["body"] for record in self._engine.records()]

    @property
    def records(self) -> list[dict[str, Any]]:
        """Everything recorded per Messages request: body, turn, attempt, outcome, ..."""
        return self._engine.records()

    def load(self, scenario: Scenario | dict[str, Any] | Path | str) -> None:
        """Replace the scenario and forget all state (log, counters, prompt cache)."""
        self._engine.load(Scenario.coerce(scenario))

    def reset(self) -> None:
        self._engine.reset()

    def start(self) -> str:
        if self._thread is not None:
            return self.base_url
        sock = _listening_socket(self._host, self._port)
        config = uvicorn.Config(
            create_app(self._engine),
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name="scripted-model-server", daemon=True
        )
        self._thread.start()
        self._wait_started()
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._base_url = f"http://{host}:{sock.getsockname()[1]}"
        return self._base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        # force_exit skips waiting for open streams; the loop's teardown cancels them.
        server.should_exit = True
        server.force_exit = True
        thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = self._base_url = None

    def __enter__(self) -> ScriptedModelServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to start(); a thread cannot raise to its owner
            self._failure = exc
        finally:
            sock.close()

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = self._failure or "did not start in time"
                raise RuntimeError(f"scripted model server failed to start: {reason}")
            time.sleep(0.002)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: only then does asyncio set TCP_NODELAY on accepted connections;
    # without it every response on a reused connection waits ~40 ms for Nagle.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lsp_agent.scripted.server",
        description="Serve a scripted Anthropic Messages API from a scenario file.",
    )
    parser.add_argument("--scenario", required=True, type=Path, help="scenario JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        server = ScriptedModelServer(args.scenario, host=args.host, port=args.port)
        base_url = server.start()
    except (ScenarioError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"LISTENING {base_url}", flush=True)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
