"""One LSP notification, several parts of the server listening (preload, index, watcher)."""

from __future__ import annotations

from lsprotocol import types as lsp

from lsp_agent.server.app import create_server
from lsp_agent.server.fanout import on_notification


def handlers_of(server, method: str):
    return server.__dict__["_notification_handlers"][method]


def test_the_real_server_hears_initialized_and_did_save_in_every_part():
    server = create_server()  # two registrations of one method used to raise here
    # model preload (and the generated code cache's save), the watcher's tick; the symbol index
    # starts with its first use, not here
    assert len(handlers_of(server, lsp.INITIALIZED)) == 2
    assert len(handlers_of(server, lsp.TEXT_DOCUMENT_DID_SAVE)) == 2  # watcher, symbol index
    # stale diagnostics dropped, the watcher (quiet while typing, speculative fixes dropped)
    assert len(handlers_of(server, lsp.TEXT_DOCUMENT_DID_CHANGE)) == 2


def test_every_handler_runs_in_order_even_after_one_fails():
    server = create_server()
    heard: list[str] = []

    def broken(params):
        heard.append("broken")
        raise RuntimeError("boom")

    on_notification(server, "custom/thing", broken)
    on_notification(server, "custom/thing", lambda params: heard.append(f"second {params}"))
    dispatch = server.protocol.fm.features["custom/thing"]
    dispatch("p")
    assert heard == ["broken", "second p"]
