"""Protocol conformance: an editor client written from docs/protocol.md alone.

The client below speaks raw JSON-RPC over the server's stdio (Content-Length framing) and
plays the editor: it answers ``agent/requestPermission``, applies ``workspace/applyEdit`` to
its buffers or to disk, and reviews proposals with ``agent/review``. It imports nothing from
the server's client code, so a change to the wire format that the docs do not describe fails
here. The model is the scripted model server playing ``fixtures/scenarios/conformance_fix.json``
on a small project the test creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from lsp_agent.scripted.server import ScriptedModelServer

pytestmark = pytest.mark.e2e

SCENARIO = (
    Path(__file__).resolve().parent.parent / "fixtures" / "scenarios" / "conformance_fix.json"
)
WAIT = 30.0  # upper bound for any single wait on the server
PROMPT = "The slugify tests fail. Find the bug in slugify and fix it."

TEXTUTIL = '''\
"""Small text helpers."""

import re
import unicodedata

__all__ = ["slugify", "title_case", "truncate"]


def title_case(text: str) -> str:
    """Capitalise each word."""
    return " ".join(word.capitalize() for word in text.split())


def truncate(text: str, width: int, suffix: str = "...") -> str:
    """Cut ``text`` to ``width`` characters, ending with ``suffix`` when cut."""
    if len(text) <= width:
        return text
    return text[: max(0, width - len(suffix))] + suffix


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by hyphens: "Hello, World!" -> "hello-world"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    return "_".join(words)
'''

TEST_TEXTUTIL = """\
import unittest

from textutil import slugify, title_case, truncate


class TextutilTests(unittest.TestCase):
    def test_slugify_joins_words_with_hyphens(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")

    def test_slugify_drops_accents(self):
        self.assertEqual(slugify("Crème brûlée 2"), "creme-brulee-2")

    def test_title_case(self):
        self.assertEqual(title_case("a tale of two"), "A Tale Of Two")

    def test_truncate(self):
        self.assertEqual(truncate("abcdefgh", 6), "abc...")


if __name__ == "__main__":
    unittest.main()
"""

BUGGY_LINE = '    return "_".join(words)\n'
FIXED_LINE = '    return "-".join(words)\n'
USER_TYPING = "# Checked by the user while the agent worked.\n"


# ---------------------------------------------------------------------------- the raw client


class RpcError(Exception):
    def __init__(self, method: str, error: dict[str, Any]):
        super().__init__(f"{method}: {error.get('code')} {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message", "")


Handler = Callable[[Any], Awaitable[Any]]


class RawClient:
    """JSON-RPC 2.0 over a subprocess's stdio, with LSP's Content-Length framing.

    ``transcript`` keeps every message the server sent, in arrival order, as
    ``(kind, method, payload)`` with kind "notification", "request" or "response".
    """

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.transcript: list[tuple[str, str, Any]] = []
        self.stderr = bytearray()
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._listeners: list[Callable[[str, Any], None]] = []
        self._arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failures: list[BaseException] = []  # from handlers and spawned client tasks
        self._reader = asyncio.create_task(self._read_loop())
        self._stderr_reader = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str]) -> RawClient:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lsp_agent", "serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=str(cwd), env=env,
        )  # fmt: skip
        return cls(proc)

    # -- sending ----------------------------------------------------------------------------

    async def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await self.proc.stdin.drain()

    async def send_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; returns its id and the future of its result."""
        self._next_id += 1
        msg_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = (method, future)
        # A test may walk away from a request (the server answers it at shutdown): mark the
        # outcome retrieved so asyncio does not warn; awaiting the future still raises.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        await self._write({"id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any, within: float = WAIT) -> Any:
        _, future = await self.send_request(method, params)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            raise AssertionError(
                f"no answer to {method} within {within:g} s{self._tail()}"
            ) from None

    async def notify(self, method: str, params: Any) -> None:
        await self._write({"method": method, "params": params})

    def on_request(self, method: str, handler: Handler) -> None:
        self._handlers[method] = handler

    def on_message(self, listener: Callable[[str, Any], None]) -> None:
        """Called with (method, params) for each server notification, in arrival order."""
        self._listeners.append(listener)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(task.exception())

    # -- receiving --------------------------------------------------------------------------

    async def _read_message(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        length = None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            raise AssertionError("a message without Content-Length header")
        return json.loads(await self.proc.stdout.readexactly(length))

    async def _read_loop(self) -> None:
        try:
            while (message := await self._read_message()) is not None:
                self._dispatch(message)
        finally:
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(AssertionError(f"the server closed{self._tail()}"))
            self._arrived.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:  # a response to one of our requests
            name, future = self._pending.pop(message["id"])
            self.transcript.append(("response", name, message))
            if future.done():
                pass
            elif "error" in message:
                future.set_exception(RpcError(name, message["error"]))
            else:
                future.set_result(message.get("result"))
        elif "id" in message:
            self.transcript.append(("request", method, message.get("params")))
            self.spawn(self._answer(message["id"], method, message.get("params")))
        else:
            self.transcript.append(("notification", method, message.get("params")))
            for listener in self._listeners:
                listener(method, message.get("params"))
        self._arrived.set()

    async def _answer(self, msg_id: Any, method: str, params: Any) -> None:
        handler = self._handlers.get(method)
        if handler is None:
            error = {"code": -32601, "message": f"client does not handle {method}"}
            await self._write({"id": msg_id, "error": error})
            return
        try:
            result = await handler(params)
        except Exception as exc:  # the server must see a JSON-RPC error, not silence
            await self._write({"id": msg_id, "error": {"code": -32603, "message": str(exc)}})
            raise
        await self._write({"id": msg_id, "result": result})

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk
            del self.stderr[:-20_000]

    def _tail(self) -> str:
        failed = "".join(f"\nclient task failed: {exc!r}" for exc in self.failures)
        log = self.stderr.decode(errors="replace")[-4000:]
        return f"{failed}\n--- server stderr (tail) ---\n{log}"

    async def wait_until(self, what: str, condition: Callable[[], Any], within: float = WAIT):
        """Wait until ``condition()`` is truthy (checked after each message); returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (found := condition()):
            remaining = deadline - loop.time()
            if remaining <= 0 or self._reader.done():
                raise AssertionError(f"timed out waiting for {what}{self._tail()}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        return found

    # -- views on the transcript ------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        return [
            p for kind, m, p in self.transcript if kind == "notification" and m == "agent/event"
        ]

    def requests(self, method: str) -> list[Any]:
        return [p for kind, m, p in self.transcript if kind == "request" and m == method]

    def index_of(self, kind: str, method: str, match: Callable[[Any], bool]) -> int:
        for index, (k, m, payload) in enumerate(self.transcript):
            if k == kind and m == method and match(payload):
                return index
        raise AssertionError(f"no {kind} {method} matched in the transcript")

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.request("shutdown", None, within=5)
            await self.notify("exit", None)
            await asyncio.wait_for(self.proc.wait(), 5)
        if self.proc.returncode is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 5)
        for task in [self._reader, self._stderr_reader, *self._tasks]:
            task.cancel()
        await asyncio.gather(self._reader, self._stderr_reader, *self._tasks,
                             return_exceptions=True)  # fmt: skip


# ---------------------------------------------------------------------------- the editor


def offset_at(text: str, line: int, character: int) -> int:
    """Offset of an LSP position (ASCII text, so UTF-16 columns are code points)."""
    lines = text.splitlines(keepends=True)
    if line >= len(lines):
        return len(text)
    content = lines[line].rstrip("\r\n")
    return sum(len(each) for each in lines[:line]) + min(character, len(content))


def apply_text_edits(text: str, edits: list[dict[str, Any]]) -> str:
    spans = []
    for edit in edits:
        start, end = edit["range"]["start"], edit["range"]["end"]
        spans.append((offset_at(text, start["line"], start["character"]),
                      offset_at(text, end["line"], end["character"]), edit["newText"]))  # fmt: skip
    for start, end, new_text in sorted(spans, key=lambda s: s[0], reverse=True):
        text = text[:start] + new_text + text[end:]
    return text


def path_of(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(unquote(parsed.path))


class Editor:
    """Open buffers with versions; applies WorkspaceEdits the way an editor does."""

    def __init__(self, client: RawClient):
        self.client = client
        self.buffers: dict[str, tuple[int, str]] = {}
        client.on_request("workspace/applyEdit", self.apply_edit)

    async def open(self, uri: str, version: int) -> None:
        text = path_of(uri).read_text()
        self.buffers[uri] = (version, text)
        await self.client.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "python",
                    "version": version,
                    "text": text,
                }
            },
        )

    async def type_text(self, uri: str, line: int, text: str) -> None:
        """The user inserts ``text`` at the start of ``line``: one incremental change."""
        version, current = self.buffers[uri]
        at = {"line": line, "character": 0}
        change = {"range": {"start": at, "end": at}, "text": text}
        await self.change(
            uri,
            version + 1,
            apply_text_edits(current, [{"range": change["range"], "newText": text}]),
            [change],
        )

    async def change(self, uri: str, version: int, new_text: str, changes: list[Any]) -> None:
        self.buffers[uri] = (version, new_text)
        await self.client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes},
        )

    async def apply_edit(self, params: dict[str, Any]) -> dict[str, Any]:
        edit = params["edit"]
        changes = edit.get("documentChanges")
        if changes is None:  # a client that did not declare documentChanges gets this map
            changes = [{"textDocument": {"uri": uri, "version": None}, "edits": edits}
                       for uri, edits in edit.get("changes", {}).items()]
        for change in changes:
            reason = await self._apply_change(change)
            if reason:
                return {"applied": False, "failureReason": reason}
        return {"applied": True}

    async def _apply_change(self, change: dict[str, Any]) -> str | None:
        if change.get("kind") == "create":
            path = path_of(change["uri"])
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
            return None
        if "textDocument" not in change:
            return f"unsupported document change {change}"
        uri, version = change["textDocument"]["uri"], change["textDocument"]["version"]
        if uri in self.buffers:
            open_version, text = self.buffers[uri]
            if version is not None and version != open_version:
                return f"{uri} is at version {open_version}, the edit is for {version}"
            new_text = apply_text_edits(text, change["edits"])
            await self.change(uri, open_version + 1, new_text, [{"text": new_text}])
            return None
        if version is not None:
            return f"{uri} is not open, yet the edit is pinned to version {version}"
        path = path_of(uri)
        path.write_text(apply_text_edits(path.read_text(), change["edits"]))
        return None


# ---------------------------------------------------------------------------- fixtures


def run_project_tests(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unittest", "-q", "test_textutil"],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = (tmp_path / "textproj").resolve()
    root.mkdir()
    (root / "textutil.py").write_text(TEXTUTIL)
    (root / "test_textutil.py").write_text(TEST_TEXTUTIL)
    return root


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(SCENARIO) as server:
        yield server


@pytest.fixture
def server_env(tmp_path: Path, model: ScriptedModelServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "LSP_AGENT_"))}  # fmt: skip
    env.update(
        ANTHROPIC_BASE_URL=model.base_url,
        ANTHROPIC_API_KEY="test",
        LSP_AGENT_STATE_DIR=str(tmp_path / "state"),
        LSP_AGENT_CACHE_DIR=str(tmp_path / "cache"),
        LSP_AGENT_BACKOFF_BASE="0.01",
        # The scenario's Bash calls run `python`: make it this interpreter.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


@pytest.fixture
async def client(project: Path, server_env: dict[str, str]):
    raw = await RawClient.start(project, server_env)
    try:
        yield raw
    finally:
        await raw.close()


async def initialize(client: RawClient, root: Path, capabilities: dict[str, Any]) -> Any:
    result = await client.request(
        "initialize",
        {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities},
    )
    await client.notify("initialized", {})
    return result


def allow_permissions(client: RawClient) -> None:
    async def answer(params: dict[str, Any]) -> dict[str, Any]:
        return {"decision": "allow"}

    client.on_request("agent/requestPermission", answer)


def review_on_proposal(
    client: RawClient, reviews: list[Any], before: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """On each proposal_created event: run ``before`` (the user's typing), then accept all
    hunks by their ids, as a user clicking "accept" on each hunk would."""

    async def review(event: dict[str, Any]) -> None:
        await before(event)
        ids = [hunk["id"] for file in event["files"] for hunk in file["hunks"]]
        reviews.append(
            await client.request("agent/review", {"proposalId": event["proposalId"], "accept": ids})
        )

    def listener(method: str, params: Any) -> None:
        if method == "agent/event" and params["event"]["type"] == "proposal_created":
            client.spawn(review(params["event"]))

    client.on_message(listener)


async def nothing(event: dict[str, Any]) -> None:
    return None


async def run_fix_session(client: RawClient, project: Path) -> tuple[str, Any]:
    session = await client.request("agent/newSession", {"workspaceUri": project.as_uri()})
    return session["sessionId"], session


def assert_sequence_numbers(events: list[dict[str, Any]]) -> None:
    by_session: dict[str, list[int]] = {}
    for params in events:
        assert params["seq"] == params["event"]["seq"]
        assert params["sessionId"] == params["event"]["sessionId"]
        by_session.setdefault(params["sessionId"], []).append(params["seq"])
    for seqs in by_session.values():
        assert all(a < b for a, b in itertools.pairwise(seqs)), seqs


def events_of(client: RawClient, kind: str) -> list[dict[str, Any]]:
    return [p["event"] for p in client.events() if p["event"]["type"] == kind]


def event_types(client: RawClient) -> list[str]:
    return [params["event"]["type"] for params in client.events()]


def assert_scenario_followed(model: ScriptedModelServer) -> None:
    outcomes = [(record["turn"], record["outcome"], record.get("mismatch"))
                for record in model.records]  # fmt: skip
    assert [o[:2] for o in outcomes] == [(n, "ok") for n in range(5)], outcomes


# ---------------------------------------------------------------------------- tests


async def test_initialize_advertises_protocol_version(client: RawClient, project: Path):
    result = await initialize(client, project, {})
    agent = result["capabilities"]["experimental"]["lspAgent"]
    assert agent["protocolVersion"] == "1.1"
    assert "agent/prompt" in agent["methods"] and "agent/review" in agent["methods"]
    assert agent["clientRequests"] == ["agent/requestPermission"]
    commands = result["capabilities"]["executeCommandProvider"]["commands"]
    assert {"lspAgent.fix", "lspAgent.explain", "lspAgent.change"} <= set(commands)


async def test_json_rpc_errors_leave_the_server_usable(client: RawClient, project: Path):
    await initialize(client, project, {})
    with pytest.raises(RpcError) as unknown:
        await client.request("agent/noSuchMethod", {})
    assert unknown.value.code == -32601
    assert await client.request("agent/listSessions", {}) == {"sessions": []}

    session_id, _ = await run_fix_session(client, project)
    with pytest.raises(RpcError) as missing_text:
        await client.request("agent/prompt", {"sessionId": session_id})
    assert missing_text.value.code == -32602
    assert "text" in missing_text.value.message
    with pytest.raises(RpcError) as wrong_type:
        await client.request("agent/prompt", {"sessionId": session_id, "text": 42})
    assert wrong_type.value.code == -32602
    with pytest.raises(RpcError) as no_session:
        await client.request("agent/prompt", {"sessionId": "nope", "text": "hi"})
    assert no_session.value.code == -32602
    with pytest.raises(RpcError) as no_proposal:
        await client.request("agent/review", {"proposalId": "p-none", "accept": "all"})
    assert no_proposal.value.code == -32602
    sessions = (await client.request("agent/listSessions", {}))["sessions"]
    assert [(s["sessionId"], s["busy"]) for s in sessions] == [(session_id, False)]


async def test_fix_on_a_file_the_editor_has_not_opened(
    client: RawClient, project: Path, model: ScriptedModelServer
):
    assert run_project_tests(project).returncode != 0
    await initialize(client, project, {"workspace": {"applyEdit": True}})
    allow_permissions(client)
    Editor(client)
    reviews: list[Any] = []
    review_on_proposal(client, reviews, nothing)
    session_id, session = await run_fix_session(client, project)
    assert session["workspaceUri"] == project.as_uri()

    ended = await client.request("agent/prompt", {"sessionId": session_id, "text": PROMPT})

    assert ended["stopReason"] == "end_turn" and ended["rounds"] == 5, ended
    assert client.failures == []
    assert_scenario_followed(model)
    assert run_project_tests(project).returncode == 0
    assert (project / "textutil.py").read_text() == TEXTUTIL.replace(BUGGY_LINE, FIXED_LINE)

    events = client.events()
    assert_sequence_numbers(events)
    types = event_types(client)
    assert types[0] == "turn_started" and types[-1] == "turn_ended"
    assert types.count("proposal_created") == 1 and types.count("proposal_resolved") == 1

    asked = client.requests("agent/requestPermission")
    assert [(a["sessionId"], a["tool"]) for a in asked] == [(session_id, "Bash")] * 2
    decided = [p["event"] for p in events if p["event"]["type"] == "permission_decided"]
    assert [(d["decision"], d["source"]) for d in decided] == [("allow", "user")] * 2

    created = next(p["event"] for p in events if p["event"]["type"] == "proposal_created")
    [file] = created["files"]
    assert file["uri"] == (project / "textutil.py").as_uri() and "version" not in file
    hunk_ids = [h["id"] for h in file["hunks"]]
    assert hunk_ids == ["f1.h1"]

    proposal_at = client.index_of(
        "notification", "agent/event", lambda p: p["event"]["type"] == "proposal_created"
    )
    apply_at = client.index_of("request", "workspace/applyEdit", lambda p: True)
    assert proposal_at < apply_at
    [apply] = client.requests("workspace/applyEdit")
    # The client declared applyEdit but not documentChanges: a plain changes map, no annotations.
    assert list(apply["edit"]) == ["changes"]
    [(edited_uri, edits)] = apply["edit"]["changes"].items()
    assert edited_uri == file["uri"] and all("annotationId" not in e for e in edits)

    assert reviews == [{"proposalId": created["proposalId"], "status": "accepted",
                        "applied": hunk_ids, "rejected": [], "conflicts": [],
                        "conflictDetails": []}]  # fmt: skip
    resolved = next(p["event"] for p in events if p["event"]["type"] == "proposal_resolved")
    assert (resolved["status"], resolved["accepted"]) == ("accepted", hunk_ids)
    last_result = [p["event"] for p in events if p["event"]["type"] == "tool_result"][-1]
    assert last_result["name"] == "Bash" and not last_result["isError"]
    assert "OK" in last_result["content"]


async def test_review_rebases_the_fix_onto_the_users_typing(
    client: RawClient, project: Path, model: ScriptedModelServer
):
    assert run_project_tests(project).returncode != 0
    capabilities = {
        "window": {"workDoneProgress": True},
        "workspace": {"applyEdit": True,
                      "workspaceEdit": {"documentChanges": True, "changeAnnotationSupport": {}}},
    }
    await initialize(client, project, capabilities)
    allow_permissions(client)
    editor = Editor(client)

    async def accept_progress(params: Any) -> None:
        return None

    client.on_request("window/workDoneProgress/create", accept_progress)
    uri = (project / "textutil.py").as_uri()

    async def user_types_far_from_the_bug(event: dict[str, Any]) -> None:
        assert event["files"][0]["version"] == 7  # the proposal was made on the open buffer
        await editor.type_text(uri, 1, USER_TYPING)  # version 8

    reviews: list[Any] = []
    review_on_proposal(client, reviews, user_types_far_from_the_bug)
    session_id, _ = await run_fix_session(client, project)
    await editor.open(uri, 7)

    ended = await client.request("agent/prompt", {"sessionId": session_id, "text": PROMPT})

    assert ended["stopReason"] == "end_turn" and ended["rounds"] == 5, ended
    assert client.failures == []
    assert_scenario_followed(model)
    [apply] = client.requests("workspace/applyEdit")
    [doc_edit] = apply["edit"]["documentChanges"]
    assert doc_edit["textDocument"] == {"uri": uri, "version": 8}
    assert all(e["annotationId"] == "lsp-agent" for e in doc_edit["edits"])
    assert "lsp-agent" in apply["edit"]["changeAnnotations"]
    expected = TEXTUTIL.replace(BUGGY_LINE, FIXED_LINE).replace(
        "\n\n", "\n" + USER_TYPING + "\n", 1
    )
    assert editor.buffers[uri] == (9, expected)
    assert (project / "textutil.py").read_text() == expected  # written by the server
    assert run_project_tests(project).returncode == 0
    [review] = reviews
    assert (review["status"], review["applied"], review["conflicts"]) == ("accepted", ["f1.h1"], [])
    assert_sequence_numbers(client.events())

    def progress(kind: str) -> list[Any]:
        return [
            p
            for k, m, p in client.transcript
            if k == "notification" and m == "$/progress" and p["value"]["kind"] == kind
        ]

    await client.wait_until("the end of work done progress", lambda: progress("end"))
    [begin] = progress("begin")
    assert begin["value"]["cancellable"] is True
    assert begin["token"] == progress("end")[0]["token"]
    assert client.requests("window/workDoneProgress/create")[0]["token"] == begin["token"]


async def start_turn_held_at_permission(
    client: RawClient, project: Path
) -> tuple[str, int, asyncio.Future[Any]]:
    """Start the fix turn and leave its first permission request (Bash) unanswered."""
    asked = asyncio.Event()

    async def never_answer(params: dict[str, Any]) -> dict[str, Any]:
        asked.set()
        await asyncio.Event().wait()  # the user walked away; cancelled at teardown
        raise AssertionError("unreachable")

    client.on_request("agent/requestPermission", never_answer)
    session_id, _ = await run_fix_session(client, project)
    prompt_id, prompt = await client.send_request(
        "agent/prompt", {"sessionId": session_id, "text": PROMPT}
    )
    await asyncio.wait_for(asked.wait(), WAIT)
    return session_id, prompt_id, prompt


async def test_cancel_request_stops_the_turn_and_frees_the_session(
    client: RawClient, project: Path
):
    await initialize(client, project, {})
    session_id, prompt_id, prompt = await start_turn_held_at_permission(client, project)
    with pytest.raises(RpcError) as busy:
        await client.request("agent/prompt", {"sessionId": session_id, "text": "again"})
    assert busy.value.code == -32600

    await client.notify("$/cancelRequest", {"id": prompt_id})

    with pytest.raises(RpcError) as cancelled:
        await asyncio.wait_for(prompt, WAIT)
    assert cancelled.value.code == -32800
    [ended] = await client.wait_until("turn_ended", lambda: events_of(client, "turn_ended"))
    assert ended["stopReason"] == "cancelled"
    [listed] = (await client.request("agent/listSessions", {}))["sessions"]
    assert listed["busy"] is False
    ended = await client.request("agent/prompt", {"sessionId": session_id, "text": "Go on."})
    assert ended["stopReason"] == "end_turn"


async def test_an_unanswered_permission_request_names_its_session_and_tool(
    client: RawClient, project: Path
):
    await initialize(client, project, {})
    session_id, _, _ = await start_turn_held_at_permission(client, project)
    [asked] = client.requests("agent/requestPermission")
    assert asked["sessionId"] == session_id
    assert asked["tool"] == "Bash" and asked["input"]["command"].startswith("python -m unittest")


async def test_agent_cancel_ends_the_pending_prompt_with_stop_reason_cancelled(
    client: RawClient, project: Path
):
    await initialize(client, project, {})
    session_id, _, prompt = await start_turn_held_at_permission(client, project)

    assert await client.request("agent/cancel", {"sessionId": session_id}) == {"cancelled": True}

    ended = await asyncio.wait_for(prompt, WAIT)
    assert ended["stopReason"] == "cancelled"
    assert events_of(client, "turn_ended")[-1]["stopReason"] == "cancelled"
    assert await client.request("agent/cancel", {"sessionId": session_id}) == {"cancelled": False}
