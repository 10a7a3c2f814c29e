"""Connections to MCP servers: one owner task per server, restarts with backoff, status.

The ``mcp`` package requires a client to be closed by the task that opened it, so each server
has an owner task that opens the connection, lists the tools, then waits until it is told to
stop or the connection is lost (a call fails with "connection closed"), and starts again after
a backoff. Stdio servers run tethered (procs/tether.py): they and everything they start die
with the server, even when it is killed; their stderr goes to a log file, not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal, TextIO, cast

from lsp_agent.extensions.mcp_config import ServerSpec
from lsp_agent.tools.base import ToolError

log = logging.getLogger(__name__)

State = Literal["starting", "connected", "failed", "needs_approval", "disabled", "stopped"]
TETHER = Path(__file__).resolve().parents[1] / "procs" / "tether.py"
MAX_RESTARTS = 5
MAX_TOOLS_PER_SERVER = 1000


def startup_timeout() -> float:
    """Seconds a server may take to start and list its tools (``MCP_TIMEOUT``, ms)."""
    try:
        return max(1.0, int(os.environ["MCP_TIMEOUT"]) / 1000)
    except (KeyError, ValueError):
        return 30.0


def backoff(attempt: int) -> float:
    base = float(os.environ.get("LSP_AGENT_BACKOFF_BASE", "0.5"))
    return min(30.0, base * 2 ** (attempt - 1))


class McpServer:
    def __init__(self, spec: ServerSpec, log_dir: Path,
                 on_change: Callable[[McpServer], None] = lambda _s: None):
        self.spec = spec
        self.state: State = "stopped"
        self.error: str | None = spec.error
        self.tools: list[Any] = []  # the server's tool descriptions (mcp_types.Tool)
        self.prompts: list[Any] = []  # its prompts (offered as /mcp__server__prompt)
        self.restarts = 0
        self._log_dir = log_dir
        self._on_change = on_change
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()  # set when connected or given up
        # Set by a list_changed notification of a server on an older protocol version.
        self._lists_changed = asyncio.Event()
        self._relisting = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.spec.error is not None:
            self._set("failed", self.spec.error)
            self._ready.set()
            return
        if self._owner is not None and not self._owner.done():
            return
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self.restarts = 0
        self._set("starting", None)
        self._owner = asyncio.create_task(self._own(), name=f"mcp:{self.spec.name}")

    async def stop(self) -> None:
        self._stop.set()
        owner, self._owner = self._owner, None
        if owner is not None and not owner.done():
            try:
                await asyncio.wait_for(asyncio.shield(owner), 10)
            except (TimeoutError, asyncio.CancelledError):
                owner.cancel()
                await asyncio.gather(owner, return_exceptions=True)
        if self.state in ("starting", "connected", "failed"):
            self._set("stopped", self.error)
        self._ready.set()

    async def restart(self) -> None:
        await self.stop()
        self.error = None
        self.start()

    def mark(self, state: State) -> None:
        """Set a state decided outside (needs approval, disabled)."""
        self._set(state, None)

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    # -- calls ---------------------------------------------------------------------------

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        timeout: float) -> Any:  # noqa: ASYNC109 - also sent to the server
        if self.state in ("starting",) or (self.state == "failed" and self._owner is not None
                                           and not self._owner.done()):
            await self.wait_ready(min(timeout, startup_timeout()))
        client = self._client
        if client is None or self.state != "connected":
            raise ToolError(self.unavailable())
        from mcp.shared.exceptions import MCPError

        try:
            return await client.call_tool(name, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if "closed" in str(exc).lower():
                self._lost.set()  # the owner restarts the server
                raise ToolError(f"The MCP server {self.spec.name} stopped during the call "
                                f"({exc}); it is being restarted.") from None
            if "timed out" in str(exc).lower():
                # Restarted: an answer still arriving (a huge one the mcp package reads
                # slowly) must not keep loading in the background.
                self._lost.set()
                raise ToolError(f"The MCP server {self.spec.name} did not answer {name} within "
                                f"{timeout:g} s; the call was stopped and the server is being "
                                "restarted.") from None
            raise ToolError(f"MCP server {self.spec.name}: {exc}") from None

    async def get_prompt(self, name: str, arguments: dict[str, str]) -> str:
        """An MCP prompt's messages as one text (for a slash command)."""
        client = await self._ready_client()
        result = await asyncio.wait_for(client.get_prompt(name, arguments), startup_timeout())
        return "\n\n".join(_content_text(m.content) for m in result.messages)

    async def read_resource(self, uri: str) -> str:
        """A resource's text contents (binary contents are described, not included)."""
        client = await self._ready_client()
        result = await asyncio.wait_for(client.read_resource(uri), startup_timeout())
        return "\n".join(_resource_text(c) for c in result.contents)

    async def list_resources(self, limit: int) -> list[Any]:
        """Up to ``limit`` of the server's resource descriptions (mcp_types.Resource), from a
        connected server only: a list for completion must not wait for one that starts."""
        client = self._client
        if client is None or self.state != "connected":
            return []
        if getattr(client.server_capabilities, "resources", None) is None:
            return []
        result = await asyncio.wait_for(client.list_resources(), startup_timeout())
        resources = list(result.resources)
        cursor = getattr(result, "next_cursor", None)
        while cursor and len(resources) < limit:
            result = await asyncio.wait_for(client.list_resources(cursor=cursor),
                                            startup_timeout())
            resources += result.resources
            cursor = getattr(result, "next_cursor", None)
        return resources[:limit]

    async def _ready_client(self) -> Any:
        if self.state == "starting":
            await self.wait_ready(startup_timeout())
        if self._client is None or self.state != "connected":
            raise ToolError(self.unavailable())
        return self._client

    def unavailable(self) -> str:
        why = {"needs_approval": "it needs the user's approval (a project server)",
               "disabled": "it is disabled in the settings",
               "stopped": "it is stopped",
               "starting": "it is still starting"}.get(self.state, self.error or "not connected")
        return f"The MCP server {self.spec.name} is not available: {why}."

    # -- the owner task ------------------------------------------------------------------

    async def _own(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._lost = asyncio.Event()
            self._set("starting", None)
            try:
                await self._connect_and_serve()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._client = None
                self._set("failed", _explain(exc, self._log_path()))
            else:
                self._client = None
                if self._stop.is_set():
                    break
                self._set("failed", "the server stopped (connection closed)")
            self._ready.set()
            attempt += 1
            self.restarts = attempt
            if attempt > MAX_RESTARTS:
                self.error = f"{self.error}; gave up after {MAX_RESTARTS} restarts"
                self._on_change(self)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff(attempt))

    async def _connect_and_serve(self) -> None:
        from mcp import Client

        with self._open_log() as errlog:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(startup_timeout()):  # the handshake included
                    client = await stack.enter_async_context(Client(
                        self._transport(errlog), message_handler=self._on_message))
                    tools = await _list_tools(client)
                    self.prompts = await _list_prompts(client)
                self._client = client
                self.tools = tools
                self._set("connected", None)
                self._ready.set()
                stop = asyncio.ensure_future(self._stop.wait())
                lost = asyncio.ensure_future(self._lost.wait())
                watch = asyncio.ensure_future(self._watch_lists(client))
                notices = asyncio.ensure_future(self._refresh_on_notice(client))
                try:
                    await asyncio.wait({stop, lost}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in (stop, lost, watch, notices):
                        waiter.cancel()
                    await asyncio.gather(watch, notices, return_exceptions=True)
                    self._client = None

    async def _watch_lists(self, client: Any) -> None:
        """Refresh the tools and prompts when the server says they changed (protocol
        2026-07-28 subscriptions; older servers are not watched)."""
        try:
            async with client.listen(tools_list_changed=True, prompts_list_changed=True) as sub:
                async for _event in sub:
                    await self._relist(client)
        except asyncio.CancelledError:
            raise
        except Exception:  # not supported, or the stream dropped: the tools stay as listed
            log.debug("MCP server %s: no list-changed stream", self.spec.name, exc_info=True)

    async def _on_message(self, message: Any) -> None:
        """Servers on protocol versions before 2026-07-28 send list_changed as plain
        notifications: the refresh runs in its own task (not in the receive loop, which
        must go on reading the answer to the list request)."""
        from mcp.types import PromptListChangedNotification, ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification | PromptListChangedNotification):
            self._lists_changed.set()

    async def _refresh_on_notice(self, client: Any) -> None:
        while True:
            await self._lists_changed.wait()
            self._lists_changed.clear()
            try:
                await asyncio.wait_for(self._relist(client), startup_timeout())
            except asyncio.CancelledError:
                raise
            except Exception:  # the tools stay as listed; a lost connection restarts anyway
                log.debug("MCP server %s: relisting failed", self.spec.name, exc_info=True)

    async def _relist(self, client: Any) -> None:
        """Fresh lists (the client's response cache may still hold the old ones), one
        refresh at a time so that an older answer never lands after a newer one."""
        async with self._relisting:
            self.tools = await _list_tools(client, "refresh")
            self.prompts = await _list_prompts(client, "refresh")
            self._on_change(self)

    def _transport(self, errlog: IO[str]) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            params = StdioServerParameters(
                command=sys.executable,
                args=["-I", "-S", str(TETHER), "--", spec.command or "", *spec.args],
                env=dict(spec.env) or None, cwd=spec.cwd)
            return stdio_client(params, errlog=cast(TextIO, errlog))
        import httpx2

        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url or "", headers=dict(spec.headers) or None)
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers=dict(spec.headers),
                                  timeout=httpx2.Timeout(30.0, read=300.0))
        return streamable_http_client(spec.url or "", http_client=http)

    def _log_path(self) -> Path:
        return self._log_dir / f"{self.spec.name}.log"

    @contextlib.contextmanager
    def _open_log(self) -> Any:
        try:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            handle: IO[str] = open(self._log_path(), "a", encoding="utf-8")
        except OSError:
            handle = open(os.devnull, "w")
        try:
            yield handle
        finally:
            handle.close()

    def _set(self, state: State, error: str | None) -> None:
        self.state = state
        if error is not None or state == "connected":
            self.error = error  # kept while restarting: the status says why it restarts
        if state != "connected":
            self.tools = [] if state != "starting" else self.tools
        self._on_change(self)


async def _list_tools(client: Any, cache_mode: str = "use") -> list[Any]:
    result = await client.list_tools(cache_mode=cache_mode)
    tools = list(result.tools)
    cursor = getattr(result, "next_cursor", None)
    while cursor and len(tools) < MAX_TOOLS_PER_SERVER:
        result = await client.list_tools(cursor=cursor, cache_mode=cache_mode)
        tools += result.tools
        cursor = getattr(result, "next_cursor", None)
    return tools[:MAX_TOOLS_PER_SERVER]


async def _list_prompts(client: Any, cache_mode: str = "use") -> list[Any]:
    if getattr(client.server_capabilities, "prompts", None) is None:
        return []
    try:
        prompts = (await client.list_prompts(cache_mode=cache_mode)).prompts
        return list(prompts)[:MAX_TOOLS_PER_SERVER]
    except Exception:  # prompts are optional: a server that fails them still serves tools
        log.debug("listing prompts failed", exc_info=True)
        return []


def _resource_text(contents: Any) -> str:
    text = getattr(contents, "text", None)
    if isinstance(text, str):
        return text
    return f"[binary {getattr(contents, 'mime_type', '') or ''} content]"


def _content_text(content: Any) -> str:
    from lsp_agent.extensions.mcp_tools import _block_text

    return _block_text(content)


def _explain(exc: BaseException, log_path: Path) -> str:
    """A failure as the user should read it: the innermost cause, plus the server's last
    stderr line when it printed one."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = f"did not answer within {startup_timeout():g} s"
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines()[-20:]
                 if line.strip()]
    except OSError:
        lines = []
    if lines:
        text += f" (stderr: {lines[-1][:300]})"
    return text
