"""An ACP editor for end-to-end tests: the SDK's own client side (``acp.spawn_agent_process``)
driving a real ``lsp-agent acp`` subprocess, which talks to the scripted model server over
real HTTP with the real anthropic SDK.

The editor keeps unsaved buffers (``fs/read_text_file`` answers from them first), writes
``fs/write_text_file`` to disk (as an editor saving the buffer would), records every update
and question, and answers permission requests with a policy the test sets.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    ToolCallUpdate,
    WriteTextFileResponse,
)

WAIT = 60.0
Policy = Callable[["Asked"], Awaitable[str | None]]  # the option id chosen; None: cancelled

FS_CAPABILITIES = ClientCapabilities(
    fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))
NO_FS = ClientCapabilities()


@dataclass
class Asked:
    session_id: str
    tool_call: ToolCallUpdate
    options: list[PermissionOption]
    disk_then: dict[str, str] = field(default_factory=dict)  # files on disk when asked

    @property
    def kinds(self) -> dict[str, str]:
        return {o.kind: o.option_id for o in self.options}

    @property
    def diffs(self) -> list[Any]:
        return [c for c in self.tool_call.content or [] if getattr(c, "type", "") == "diff"]


async def allow_once(asked: Asked) -> str | None:
    return asked.kinds["allow_once"]


class Editor:
    """The ``acp.Client`` side."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.asked: list[Asked] = []
        self.buffers: dict[str, str] = {}  # path -> unsaved text
        self.reads: list[str] = []
        self.writes: list[str] = []
        self.policy: Policy = allow_once

    def updates_of(self, kind: str) -> list[Any]:
        return [u for _, u in self.updates if u.session_update == kind]

    async def request_permission(self, options: list[PermissionOption], session_id: str,
                                 tool_call: ToolCallUpdate, **kwargs: Any
                                 ) -> RequestPermissionResponse:
        disk = {}
        for diff in [c for c in tool_call.content or [] if getattr(c, "type", "") == "diff"]:
            with contextlib.suppress(OSError):
                disk[diff.path] = _read(diff.path)
        asked = Asked(session_id, tool_call, options, disk)
        self.asked.append(asked)
        choice = await self.policy(asked)
        if choice is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=choice))

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))

    async def read_text_file(self, path: str, session_id: str, limit: int | None = None,
                             line: int | None = None, **kwargs: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        text = self.buffers.get(path)
        return ReadTextFileResponse(content=text if text is not None else _read(path))

    async def write_text_file(self, content: str, path: str, session_id: str,
                              **kwargs: Any) -> WriteTextFileResponse:
        self.writes.append(path)
        _write(path, content)  # the editor saves the buffer it changed
        self.buffers.pop(path, None)
        return WriteTextFileResponse()

    def on_connect(self, conn: Any) -> None:
        pass


def _read(path: str) -> str:  # small test files: blocking is fine in the test client
    return Path(path).read_text()


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


def agent_env(base_url: str, state_dir: Path) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key",
            "LSP_AGENT_STATE_DIR": str(state_dir), "LSP_AGENT_BACKOFF_BASE": "0.01",
            "LSP_AGENT_CACHE_DIR": str(state_dir / "cache")}


@contextlib.asynccontextmanager
async def acp_agent(editor: Editor, base_url: str, root: Path, *args: str,
                    observers: list[Any] | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """``lsp-agent acp`` as a subprocess with ``editor`` as its client; its stderr in a file
    (a pipe nobody reads would block it once full)."""
    state = root / ".state"
    state.mkdir(exist_ok=True)
    with (root / "agent-stderr.log").open("wb") as stderr:
        async with spawn_agent_process(
                editor, sys.executable, "-m", "lsp_agent", "acp", *args,
                env=agent_env(base_url, state), cwd=root,
                # The SDK waits 2 s for the exit after closing stdin, then terminates: on a
                # loaded machine the exit can cross that terminate (ProcessLookupError there).
                transport_kwargs={"stderr": stderr.fileno(), "shutdown_timeout": 30.0},
                observers=observers or []) as (conn, process):
            yield conn, process


def prompt(text: str) -> list[Any]:
    return [text_block(text)]
