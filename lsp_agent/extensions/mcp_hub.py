"""The MCP servers of one session: trust, start, approval, status, tools.

Servers the user trusts start at session start in the background (the first prompt does not
wait for them; a call to a tool of a server still starting waits for it, bounded). A project
server without approval starts nothing: at the session's first prompt the user is asked once,
through the session's permission asker, naming the command or URL; an answer remembered for
the project is written to the local settings (``enabledMcpjsonServers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.extensions.mcp_client import McpServer
from lsp_agent.extensions.mcp_config import McpConfig, record_approval
from lsp_agent.extensions.mcp_tools import McpTool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import Asker

log = logging.getLogger(__name__)


class McpHub:
    def __init__(self, workspace: Path, config: McpConfig, log_dir: Path,
                 on_tools_changed: Callable[[list[McpTool]], None] = lambda _t: None,
                 session_id: str | None = None):
        self.workspace = workspace
        self.session_id = session_id
        self.config = config
        self.approved_now: set[str] = set()
        self.denied_now: set[str] = set()  # refused from the editor's view: not asked again
        self._on_tools_changed = on_tools_changed
        self._tools_key: tuple[Any, ...] = ()
        self.servers = {name: McpServer(spec, log_dir, self._changed)
                        for name, spec in config.servers.items()}
        self._asking: asyncio.Task[None] | None = None
        self._asker: Asker | None = None
        self._asking_about: str | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every server that may start; mark the others."""
        for server in self.servers.values():
            trust = self.config.trust.state(server.spec, self.approved_now)
            if trust == "approved":
                if server.spec.startup == "session" or server.spec.error is not None:
                    server.start()
            else:
                server.mark(trust)

    def ask_approvals(self, asker: Asker | None) -> None:
        """Ask the user, once and in the background, about project servers waiting for
        approval (nothing starts without it)."""
        waiting = [s for s in self.servers.values()
                   if s.state == "needs_approval" and s.spec.name not in self.denied_now]
        if not waiting or asker is None or self._asking is not None:
            return
        self._asker = asker
        self._asking = asyncio.create_task(self._ask(asker, waiting), name="mcp-approval")

    async def _ask(self, asker: Asker, waiting: list[McpServer]) -> None:
        for server in waiting:
            if server.state != "needs_approval" or server.spec.name in self.denied_now:
                continue  # approved or refused from the editor's view meanwhile
            spec = server.spec
            self._asking_about = spec.name
            asked = ev.PermissionAsked(
                tool_use_id=f"mcp-approval-{spec.name}", tool=f"mcp__{spec.name}",
                input={"server": spec.name, "transport": spec.transport,
                       ("command" if spec.transport == "stdio" else "url"): spec.shown,
                       "source": spec.source},
                reason=(f"The project's {Path(spec.source).name} asks to start the MCP server "
                        f"{spec.name!r}: {spec.shown}. It runs with your rights. Allow it?"))
            asked.session_id = self.session_id or ""
            try:
                answer = await asker(asked)
            except Exception:  # an editor that cannot ask: nothing starts
                log.exception("asking about MCP server %s failed", spec.name)
                continue
            if answer.decision != "allow" or self._closed:
                continue
            self.approved_now.add(spec.name)
            if answer.remember in ("project", "user"):
                with contextlib.suppress(OSError, ValueError):
                    record_approval(self.workspace, spec.name)
            server.start()
        self._asking_about = None

    def approve(self, name: str, remember: bool = False) -> dict[str, Any]:
        """The user approved ``name`` in the editor's MCP view, whether or not the question
        about it was asked yet: start it, and take down a question about it still waiting
        (the others are asked again). A server the settings disable stays disabled."""
        server = self.servers.get(name)
        if server is None:
            raise KeyError(name)
        if server.state != "needs_approval" or self._closed:
            return self._status_of(server)
        self.approved_now.add(name)
        self.denied_now.discard(name)
        if remember:
            with contextlib.suppress(OSError, ValueError):
                record_approval(self.workspace, name)
        server.start()
        self._withdraw_question(name)
        return self._status_of(server)

    def deny(self, name: str) -> dict[str, Any]:
        """The user refused ``name`` in the editor's view: it stays stopped and the session
        does not ask about it again (a question about it still waiting is withdrawn). Only for
        this session: a new session asks again."""
        server = self.servers.get(name)
        if server is None:
            raise KeyError(name)
        if server.state == "needs_approval" and not self._closed:
            self.denied_now.add(name)
            self._withdraw_question(name)
        return self._status_of(server)

    def _withdraw_question(self, name: str) -> None:
        if self._asking_about == name and self._asking is not None:
            self._asking.cancel()  # withdraws the editor's question ($/cancelRequest)
            self._asking = self._asking_about = None
            self.ask_approvals(self._asker)

    async def close(self) -> None:
        self._closed = True
        if self._asking is not None and not self._asking.done():
            self._asking.cancel()
        await asyncio.gather(*(s.stop() for s in self.servers.values()),
                             return_exceptions=True)

    async def restart(self, name: str) -> dict[str, Any]:
        server = self.servers.get(name)
        if server is None:
            raise KeyError(name)
        if self.config.trust.state(server.spec, self.approved_now) != "approved":
            return self._status_of(server)
        await server.restart()
        await server.wait_ready(60)
        return self._status_of(server)

    async def wait_started(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until every starting server is connected or failed (tests, /mcp)."""
        await asyncio.gather(*(s.wait_ready(timeout) for s in self.servers.values()
                               if s.state == "starting"))

    # -- what the session sees -----------------------------------------------------------

    def tools(self) -> list[McpTool]:
        return [McpTool(server, remote) for server in self.servers.values()
                if server.state == "connected" for remote in server.tools]

    def status(self) -> list[dict[str, Any]]:
        return [self._status_of(s) for s in self.servers.values()]

    def _status_of(self, server: McpServer) -> dict[str, Any]:
        spec = server.spec
        return {"name": spec.name, "scope": spec.scope, "source": spec.source,
                "transport": spec.transport, "target": spec.shown, "state": server.state,
                "error": server.error, "tools": len(server.tools),
                "toolNames": [t.name for t in server.tools][:200], "restarts": server.restarts,
                "denied": spec.name in self.denied_now}

    def _changed(self, server: McpServer) -> None:
        key = tuple((s.spec.name, s.state, tuple(t.name for t in s.tools))
                    for s in self.servers.values())
        if key != self._tools_key:
            self._tools_key = key
            self._on_tools_changed(self.tools())
