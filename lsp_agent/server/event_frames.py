"""``agent/event`` notifications serialised once, straight to the bytes that go on the wire.

pygls's ``notify`` builds an attrs message around the params, walks the whole params tree
through its cattrs converter and then encodes it with ``json.dumps``: about 25 us per event,
for the several events every model round sends. The event is a pydantic model already, and
pydantic writes its JSON in Rust (about 2 us), so the frame is assembled here around that:
the same JSON document as before (same keys, values and nesting; only the whitespace and the
escaping of non-ASCII characters differ, which JSON readers do not see), the same
``Content-Length``/``Content-Type`` header, sent through the protocol's writer like any other
message (RobustProtocol.send_body).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lsp_agent.server.methods import EVENT

if TYPE_CHECKING:
    from lsp_agent.server.jsonrpc import RobustProtocol
    from lsp_agent.types import events as ev

_PREFIX = '{"method": "' + EVENT + '", "jsonrpc": "2.0", "params": {"sessionId": '


def event_json(event: ev.AgentEvent) -> str:
    """The event as on the wire (``Wire.wire()``'s fields, serialised)."""
    try:
        return event.model_dump_json(by_alias=True, exclude_none=True)
    except ValueError:
        # pydantic refuses what UTF-8 cannot hold (a lone surrogate from a broken model
        # stream or file): the standard encoder escapes it, as the old path did.
        return json.dumps(event.wire())


def event_body(event: ev.AgentEvent) -> bytes:
    """The JSON-RPC notification carrying ``event``, UTF-8 encoded."""
    return (f"{_PREFIX}{json.dumps(event.session_id)}, \"seq\": {int(event.seq)}, "
            f"\"event\": {event_json(event)}}}}}").encode()


def notify_event(protocol: RobustProtocol, event: ev.AgentEvent) -> None:
    protocol.send_body(event_body(event))
