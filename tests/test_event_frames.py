"""agent/event notifications are serialised once by pydantic (server/event_frames.py) instead of
through pygls's converter: the client must read exactly the message it read before.

Each test compares against the old path, pygls's ``notify`` with the params the server used
to build, on the same protocol class: same JSON document, a Content-Length that counts bytes,
the same headers.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from pygls.io_ import StdoutWriter

from lsp_agent.server import protocol as p
from lsp_agent.server.app import create_server
from lsp_agent.server.event_frames import event_body, notify_event
from lsp_agent.types import events as ev

EVENTS: list[ev.AgentEvent] = [
    ev.TurnStarted(prompt="fix the bug"),
    ev.ModelRequest(model="claude-x", round=3),
    ev.TextDelta(text="plain ASCII"),
    ev.TextDelta(text="é, 日本語, emoji 🎉, quotes \" and \\ and \n, \u2028, \x00"),
    ev.TextDelta(text="a lone surrogate \udc80 from a broken stream"),
    ev.ToolInputComplete(tool_use_id="t1", name="Read",
                         input={"path": "a.py", "nested": {"list": [1, 2.5, None, True]},
                                "big": 10 ** 30, "small": 1e-7, "tuple": (1, 2)}),
    ev.ToolResult(tool_use_id="t1", name="Read", content="     1\tx = 1\n", started_at=1.25,
                  finished_at=1796155584.7010872),
    ev.ProposalCreated(proposal_id="p1", tool_use_id="t1", files=[ev.FileChangeView(
        uri="file:///a.py", path="a.py", is_new=True, diff="+x",
        hunks=[ev.HunkView(id="h1", header="@@ -0,0 +1 @@", diff="+x")])]),
    ev.TodosUpdated(todos=[ev.TodoView(content="Fix it", status="in_progress",
                                       active_form="Fixing it")]),
    ev.CostReport(turn=ev.SessionCost(), session=ev.SessionCost(by_model=[
        ev.ModelCost(model="m", usage=ev.Usage(input_tokens=3))])),
    ev.ErrorEvent(kind="internal", message="boom"),
]
for number, event in enumerate(EVENTS, 1):
    event.session_id, event.seq = "abc123def456", number


def frames(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of each LSP message in ``data``."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode("ascii").split("\r\n"))
        length = int(headers["Content-Length"])
        out.append((headers, rest[:length]))
        data = rest[length:]
    return out


def sent_by(send: Any) -> tuple[dict[str, str], bytes]:
    server = create_server()
    out = io.BytesIO()
    server.protocol.set_writer(StdoutWriter(out), include_headers=True)
    send(server)
    [frame] = frames(out.getvalue())
    return frame


def the_old_way(server: Any, event: ev.AgentEvent) -> None:
    server.protocol.notify(p.EVENT, {"sessionId": event.session_id, "seq": event.seq,
                                     "event": event.wire()})


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.type}-{e.seq}")
def test_the_client_reads_the_same_message_as_before(event):
    old_headers, old_body = sent_by(lambda server: the_old_way(server, event))
    new_headers, new_body = sent_by(lambda server: notify_event(server.protocol, event))
    assert new_headers == {**old_headers, "Content-Length": str(len(new_body))}
    assert json.loads(new_body) == json.loads(old_body)


def test_the_server_sends_its_events_this_way():
    """AgentServer.send_event goes through event_frames (non-ASCII travels as UTF-8 bytes,
    which pygls's encoder would have escaped)."""
    event = EVENTS[3]
    _, body = sent_by(lambda server: server.send_event(event))
    assert body == event_body(event)
    assert "日本語".encode() in body
    assert json.loads(body)["params"]["event"]["text"] == event.text


def test_a_lone_surrogate_is_escaped_not_dropped():
    event = EVENTS[4]
    body = event_body(event)
    assert b"\\udc80" in body
    assert json.loads(body)["params"]["event"]["text"] == event.text


def test_nothing_is_sent_once_the_client_is_gone():
    def send(server: Any) -> None:
        server.protocol.closed = True
        notify_event(server.protocol, EVENTS[0])

    server = create_server()
    out = io.BytesIO()
    server.protocol.set_writer(StdoutWriter(out), include_headers=True)
    send(server)
    assert out.getvalue() == b""
