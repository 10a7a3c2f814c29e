"""The real ``lsp-agent serve`` process fed raw bytes: bad framing, bad JSON, bad params and
lifecycle mistakes each get an answer (or a warning), and the next request is served.

Every read has a timeout, so a server that goes deaf fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from tests.e2e_harness import processes_with, unique_duration

pytestmark = pytest.mark.e2e

WAIT = 30.0


def frame(message: dict[str, Any] | bytes, length: int | None = None) -> bytes:
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % (len(data) if length is None else length) + data


def request(msg_id: int, method: str, params: Any = None) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    return message if params is None else {**message, "params": params}


def notification(method: str, params: Any = None) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "method": method}
    return message if params is None else {**message, "params": params}


def hover(msg_id: int, position: Any) -> dict[str, Any]:
    return request(msg_id, "textDocument/hover",
                   {"textDocument": {"uri": "file:///nowhere/a.py"}, "position": position})


def initialize(msg_id: int, root: Path) -> dict[str, Any]:
    return request(msg_id, "initialize",
                   {"processId": None, "rootUri": root.as_uri(), "capabilities": {}})


class Peer:
    """The client's end: writes raw bytes, reads the server's framed messages with timeouts."""

    def __init__(self, reader: IO[bytes], write: Any):
        self._write = write
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(reader,), daemon=True).start()

    def _read(self, reader: IO[bytes]) -> None:
        try:
            while True:
                length = None
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if not line or length is None:
                    break
                self.inbox.put(json.loads(reader.read(length)))
        finally:
            self.inbox.put(None)

    def send(self, raw: bytes) -> None:
        self._write(raw)

    def answer(self, msg_id: Any) -> dict[str, Any]:
        """The server's response to ``msg_id``, whenever it came."""
        while True:
            for i, message in enumerate(self.received):
                if message.get("id") == msg_id and "method" not in message:
                    return self.received.pop(i)
            try:
                message = self.inbox.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no answer to {msg_id!r} within {WAIT} s") from None
            assert message is not None, f"the server closed its output before answering {msg_id}"
            self.received.append(message)


class Server:
    def __init__(self, env: dict[str, str], *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "serve", *args], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log_lines: list[str] = []
        self.logged = threading.Condition()
        self.drain = threading.Thread(target=self._drain_log, daemon=True)
        self.drain.start()

    def _drain_log(self) -> None:
        for line in self.proc.stderr:
            with self.logged:
                self.log_lines.append(line.decode(errors="replace"))
                self.logged.notify_all()

    def stdio_peer(self) -> Peer:
        def write(raw: bytes) -> None:
            self.proc.stdin.write(raw)
            self.proc.stdin.flush()

        return Peer(self.proc.stdout, write)

    def wait_for_log(self, pattern: str) -> re.Match[str]:
        with self.logged:
            found: list[re.Match[str]] = []

            def seen() -> bool:
                found[:] = [m for m in map(re.compile(pattern).search, self.log_lines) if m]
                return bool(found)

            assert self.logged.wait_for(seen, WAIT), f"no log line matching {pattern!r}"
        return found[0]

    def exit_code(self) -> int:
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError("the server did not exit") from None

    @property
    def log(self) -> str:
        with self.logged:
            return "".join(self.log_lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        # The log reader ends at the end of stderr; closing the pipe under it raises in it.
        self.drain.join(WAIT)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()


@pytest.fixture
def env(tmp_path: Path, model) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("ANTHROPIC_", "LSP_AGENT_", "XDG_"))}  # fmt: skip
    return {**clean, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "LSP_AGENT_STATE_DIR": str(tmp_path / "st"),
            "LSP_AGENT_CACHE_DIR": str(tmp_path / "jedi"), "ANTHROPIC_BASE_URL": model.base_url,
            "ANTHROPIC_API_KEY": "test-key"}


@pytest.fixture
def server(env):
    running = Server(env)
    yield running
    running.kill()


@pytest.fixture
def peer(server: Server, tmp_path: Path) -> Peer:
    """A client that has initialized the server."""
    client = server.stdio_peer()
    client.send(frame(initialize(1, tmp_path)) + frame(notification("initialized", {})))
    assert "result" in client.answer(1)
    return client


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    assert "error" in answer, answer
    return answer["error"]["code"], answer["error"]["message"]


# -- framing --------------------------------------------------------------------------------

BAD_HEADERS = {
    "too short": lambda data: frame(data, 15),
    "too long": lambda data: frame(data, len(data) + 400),
    "not a number": lambda data: b"Content-Length: twelve\r\n\r\n" + data,
    "missing": lambda data: b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
                            + data,
}


@pytest.mark.parametrize("bad_header", BAD_HEADERS)
def test_a_bad_header_is_answered_and_the_next_request_served(peer, server, bad_header):
    bad = BAD_HEADERS[bad_header](json.dumps(request(2, "agent/listSessions", {})).encode())
    peer.send(bad + frame(request(3, "agent/listSessions", {})))
    assert error_of(peer.answer(2))[0] == -32700  # the broken request still gets its answer
    assert peer.answer(3)["result"]["sessions"] == []
    assert "WARNING" in server.wait_for_log(r"WARNING .*bad input from the client").group(0)


def test_malformed_json_is_answered_parse_error_with_a_null_id(peer, server):
    peer.send(frame(b'{"jsonrpc": "2.0", "method": "agent/listSe') + frame(request(3, "shutdown")))
    code, message = error_of(peer.answer(None))
    assert code == -32700 and "not JSON" in message
    assert peer.answer(3)["result"] is None


def test_a_batch_is_answered_invalid_request(peer):
    peer.send(frame(b'[{"jsonrpc": "2.0", "id": 2, "method": "shutdown"}]'))
    assert error_of(peer.answer(None))[0] == -32600


# -- params ---------------------------------------------------------------------------------


def test_lsp_request_with_bad_params_is_answered_invalid_params(peer, server):
    peer.send(frame(hover(2, "x")) + frame(hover(3, {"line": 0, "character": 0})))
    code, message = error_of(peer.answer(2))
    assert code == -32602 and "position" in message
    assert "result" in peer.answer(3)
    # A client's mistake is one warning line, not an error with a traceback.
    assert server.wait_for_log(r"WARNING .*textDocument/hover request 2 with -32602")
    assert "Traceback" not in server.log and " ERROR " not in server.log


def test_agent_request_with_bad_params_logs_a_warning_without_traceback(peer, server):
    peer.send(frame(request(2, "agent/prompt", {"text": "no session"})))
    assert error_of(peer.answer(2))[0] == -32602
    assert server.wait_for_log(r"WARNING .*request 2 failed: invalid params: sessionId")
    assert "Traceback" not in server.log and " ERROR " not in server.log


def test_empty_params_sent_as_a_list_are_accepted(peer, tmp_path):
    peer.send(frame(request(2, "agent/newSession", [])))
    session = peer.answer(2)["result"]
    assert session["sessionId"] and session["workspaceUri"] == tmp_path.as_uri()


# -- lifecycle ------------------------------------------------------------------------------


def test_requests_before_initialize_are_answered_server_not_initialized(server, tmp_path):
    peer = server.stdio_peer()
    peer.send(frame(notification("textDocument/didClose", {"textDocument": {"uri": "file:///a"}}))
              + frame(request(1, "agent/listSessions", {})))
    assert error_of(peer.answer(1))[0] == -32002
    peer.send(frame(initialize(2, tmp_path)) + frame(request(3, "agent/listSessions", {})))
    assert "result" in peer.answer(2)
    assert peer.answer(3)["result"]["sessions"] == []


def test_requests_after_shutdown_are_refused_and_exit_ends_with_0(peer, server):
    peer.send(frame(request(2, "shutdown")) + frame(request(3, "agent/listSessions", {})))
    assert peer.answer(2)["result"] is None
    assert error_of(peer.answer(3))[0] == -32600
    peer.send(frame(notification("exit")))  # stdin stays open: exit alone ends the process
    assert server.exit_code() == 0
    assert "Traceback" not in server.log


def test_exit_without_shutdown_ends_with_1(peer, server):
    peer.send(frame(notification("exit")))
    assert server.exit_code() == 1


def test_exit_before_initialize_ends_with_1(server):
    server.stdio_peer().send(frame(notification("exit")))
    assert server.exit_code() == 1


# -- TCP (for debugging) --------------------------------------------------------------------


def test_tcp_client_errors_are_warnings_and_exit_ends_quietly(env, tmp_path):
    server = Server(env, "--tcp", "127.0.0.1:0")
    try:
        port = int(server.wait_for_log(r"listening on 127\.0\.0\.1:(\d+) ").group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            peer = Peer(sock.makefile("rb"), sock.sendall)
            peer.send(frame(initialize(1, tmp_path)))
            assert "result" in peer.answer(1)
            peer.send(frame(request(2, "agent/prompt", {"text": "no session"})))
            assert error_of(peer.answer(2))[0] == -32602
            peer.send(frame(request(3, "shutdown")))
            assert peer.answer(3)["result"] is None
            peer.send(frame(notification("exit")))
            assert server.exit_code() == 0
        assert "Traceback" not in server.log and "Unhandled exception" not in server.log
        assert " ERROR " not in server.log
    finally:
        server.kill()


def test_exit_during_a_turn_kills_the_turns_processes(peer, server, model, tmp_path):
    # A marker in the host's process table: in the sandbox's PID namespace the command's own
    # pids mean nothing outside.
    marker = unique_duration()
    model.load({"turns": [{"content": [{"type": "tool_use", "name": "Bash", "input": {
        "command": f"sleep {marker} & wait"}}]}]})
    peer.send(frame(request(2, "agent/newSession", {"mode": "bypassPermissions"})))
    session = peer.answer(2)["result"]["sessionId"]
    peer.send(frame(request(3, "agent/prompt", {"sessionId": session, "text": "sleep"})))
    assert wait_until(lambda: processes_with(marker))
    peer.send(frame(notification("exit")))
    assert server.exit_code() == 1
    assert wait_until(lambda: not processes_with(marker)), "the command outlived the server"


def wait_until(condition: Any) -> bool:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

