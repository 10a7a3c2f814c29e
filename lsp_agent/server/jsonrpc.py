"""JSON-RPC rules pygls leaves out: every request gets an answer, client mistakes are warnings.

``RobustProtocol`` receives decoded JSON from our transport (lsp_agent/server/transport.py)
instead of pygls's reader, so that:

* a message that is not a JSON-RPC request is answered -32600, a request whose params do not
  fit its LSP type -32602 (pygls drops both without a word);
* requests before ``initialize`` are answered -32002 and requests after ``shutdown`` -32600,
  as LSP asks; notifications then are dropped, except ``exit``;
* ``exit`` ends the transport with code 0 after ``shutdown`` and 1 without (pygls raises
  SystemExit inside a handler, which loses the code and, over TCP, logs a traceback);
* a request the server gave up on (timeout, cancelled turn) is withdrawn with
  ``$/cancelRequest``, so the editor can close its dialog, and its late answer is ignored;
* errors caused by the client are logged as one-line warnings (tracebacks at debug level).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from typing import Any

import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    MsgId,
)

from lsp_agent.server.framing import BadInput

log = logging.getLogger(__name__)

E = lsp.ErrorCodes
# Errors that report a mistake of the client: a warning line, not an error with a traceback.
CLIENT_ERROR_CODES = {E.ParseError, E.InvalidRequest, E.MethodNotFound, E.InvalidParams,
                      E.ServerNotInitialized, lsp.LSPErrorCodes.RequestCancelled,
                      lsp.LSPErrorCodes.ContentModified}
# What the server answers a request with in each state that does not serve it.
REFUSALS = {
    "uninitialized": (E.ServerNotInitialized, "the server is not initialized: send initialize"),
    "initialized-twice": (E.InvalidRequest, "initialize was already received"),
    "shutting-down": (E.InvalidRequest, "the server is shutting down: only exit is accepted"),
}
ABANDONED_KEPT = 1024  # ids of withdrawn requests remembered, to ignore their late answers


class RobustProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self.shutdown_received = False
        self.exit_code: int | None = None  # set by exit: the transport stops reading
        self.closed = False  # the client is gone or said exit: nothing more is sent
        self._abandoned: OrderedDict[MsgId, None] = OrderedDict()

    # -- input from the transport ----------------------------------------------------------

    def receive(self, data: Any) -> None:
        """Handle one decoded JSON value from the client."""
        problem = envelope_problem(data)
        if problem is not None:
            if not isinstance(data, dict):
                self._refuse(None, E.InvalidRequest, f"not a JSON-RPC message: {problem}", None)
            elif "method" in data and "id" in data:
                self._refuse(valid_id(data["id"]), E.InvalidRequest,
                             f"not a JSON-RPC message: {problem}", data["method"])
            else:  # a notification or an answer: nobody waits for a reply
                log.warning("dropped a malformed message from the client: %s", problem)
            return
        try:
            message = self._structure(data)
        except Exception as exc:
            self._unreadable(data, exc)
            return
        self.handle_message(message)

    def reject_input(self, bad: BadInput) -> None:
        """Input the transport could not frame or decode: a warning, and an answer if owed."""
        log.warning("bad input from the client: %s", bad.reason)
        log.debug("the bad input began with %r", bad.sample[:120])
        if bad.reply:
            # JSON-RPC answers an unreadable request with id null: pygls's hint says str | int.
            self._send_response(bad.request_id, error=lsp.ResponseError(  # type: ignore[arg-type]
                code=int(E.ParseError), message=f"parse error: {bad.reason}"))

    def _structure(self, data: dict[str, Any]) -> Any:
        """The typed message, as pygls's ``structure_message`` builds it, for the top level only."""
        method = data.get("method")
        if "id" in data and "error" in data:
            kind: Any = lsp.ResponseErrorMessage
        elif "id" in data and method is not None:
            kind = self.get_message_type(method) or JsonRPCRequestMessage
        elif "id" in data:
            kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
        else:
            kind = self.get_message_type(method or "") or JsonRPCNotification
        return self._converter.structure(data, kind)

    def _unreadable(self, data: dict[str, Any], exc: Exception) -> None:
        detail = "; ".join(cattrs.transform_error(exc)[:5]) if isinstance(
            exc, cattrs.BaseValidationError) else str(exc)
        log.debug("unreadable message %s", data.get("method") or data.get("id"), exc_info=exc)
        method, msg_id = data.get("method"), data.get("id")
        if method is not None and msg_id is not None:
            self._refuse(msg_id, E.InvalidParams, f"invalid params: {detail}", method)
        elif method is not None:
            log.warning("dropped notification %s with invalid params: %s", method, detail)
        else:  # the client's answer to one of our requests does not fit its type
            log.warning("unreadable answer to request %s: %s", msg_id, detail)
            waiting = self._request_futures.pop(msg_id, None) if msg_id is not None else None
            if waiting is not None and not waiting.done():
                waiting.set_exception(JsonRpcException(
                    message=f"the client's answer could not be read: {detail}"))

    def _refuse(self, msg_id: MsgId | None, code: int, message: str, method: Any) -> None:
        log.warning("answered %s request %s with %d: %s", method or "a", msg_id, code, message)
        self._send_response(msg_id,  # type: ignore[arg-type]  # null for an unreadable id
                            error=lsp.ResponseError(code=int(code), message=message))

    # -- the lifecycle ------------------------------------------------------------------------

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        refusal = self._lifecycle_refusal(method)
        if refusal is None:
            super().handle_message(message)
        elif hasattr(message, "id"):
            code, text = REFUSALS[refusal]
            self._refuse(message.id, code, text, method)
        else:
            log.log(logging.DEBUG if self.shutdown_received else logging.WARNING,
                    "dropped notification %s: %s", method, REFUSALS[refusal][1])

    def _lifecycle_refusal(self, method: str | None) -> str | None:
        if method is None or method == lsp.EXIT:  # answers to our requests; exit always works
            return None
        if method == lsp.INITIALIZE:
            if self.initialize_received:
                return "initialized-twice"
            self.initialize_received = True
            return None
        if not self.initialize_received:
            return "uninitialized"
        if self.shutdown_received:
            return "shutting-down"
        self.shutdown_received = method == lsp.SHUTDOWN  # later requests are refused at once
        return None

    @lsp_method(lsp.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]  # no handler to yield to
        self.exit_code = 0 if self.shutdown_received else 1
        log.info("exit after %s: code %d", "shutdown" if self.shutdown_received else "no shutdown",
                 self.exit_code)

    # -- output ------------------------------------------------------------------------------

    def _send_data(self, data: Any) -> None:
        if self.closed:  # late events of cancelled turns: the client reads no more
            return
        super()._send_data(data)

    def send_body(self, body: bytes) -> None:
        """Send a message already serialised to UTF-8 JSON (event_frames.py), framed and
        written as pygls's ``_send_data`` does for the messages it serialises itself."""
        if self.closed:
            return
        if self.writer is None:
            log.error("cannot send: no transport")
            return
        header = (f"Content-Length: {len(body)}\r\nContent-Type: {self.CONTENT_TYPE}; "
                  f"charset={self.CHARSET}\r\n\r\n").encode() if self._include_headers else b""
        try:  # our transports' writers (transport.py) write at once and return nothing
            self.writer.write(header + body)
        except BrokenPipeError:
            raise  # as pygls: the caller learns the client has gone
        except Exception:
            log.exception("sending a message failed")

    def _send_handler_result(self, future: Any, *, msg_id: MsgId) -> None:
        error = None if future.cancelled() else future.exception()
        if isinstance(error, JsonRpcException) and error.code in CLIENT_ERROR_CODES:
            self._request_futures.pop(msg_id, None)
            log.warning("request %s failed: %s", msg_id, error.message)
            log.debug("request %s failed", msg_id, exc_info=error)
            self._send_response(msg_id, error=error.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    # -- requests to the client ------------------------------------------------------------

    async def request_or_withdraw(self, method: str, params: Any, seconds: float) -> Any:
        """Ask the client; when the asker stops waiting (timeout or cancel), withdraw the ask."""
        msg_id = str(uuid.uuid4())
        try:
            return await asyncio.wait_for(
                self.send_request_async(method, params, msg_id=msg_id), seconds)
        except (TimeoutError, asyncio.CancelledError):
            self.withdraw_request(msg_id)
            raise

    def withdraw_request(self, msg_id: MsgId) -> None:
        """Send ``$/cancelRequest`` for a request still waiting, and ignore its late answer."""
        waiting = self._request_futures.pop(msg_id, None)
        if waiting is None:  # already answered
            return
        waiting.cancel()
        self._result_types.pop(msg_id, None)
        self._abandoned[msg_id] = None
        while len(self._abandoned) > ABANDONED_KEPT:
            self._abandoned.popitem(last=False)
        self.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))

    def _handle_response(self, msg_id: MsgId, result: Any = None, error: Any = None) -> None:
        if self._abandoned.pop(msg_id, False) is None:  # the answer to a withdrawn request
            log.debug("ignored the late answer to withdrawn request %s", msg_id)
            return
        super()._handle_response(msg_id, result, error)


def valid_id(value: Any) -> MsgId | None:
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def envelope_problem(data: Any) -> str | None:
    """What makes ``data`` no JSON-RPC 2.0 message (LSP has no batches), or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__} instead of an object"
    if data.get("jsonrpc") != "2.0":
        return 'no "jsonrpc": "2.0"'
    if "method" in data and not isinstance(data["method"], str):
        return "method is not a string"
    null_id_error = data.get("id", 0) is None and "error" in data  # allowed for parse errors
    if "id" in data and valid_id(data["id"]) is None and not null_id_error:
        return "id is neither a number nor a string"
    if "method" not in data and "id" not in data:
        return "neither a method nor an id"
    return None
