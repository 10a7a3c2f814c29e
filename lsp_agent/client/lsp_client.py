"""A headless LSP client for lsp-agent: starts ``lsp-agent serve`` as a subprocess and speaks
the documented protocol to it, as any editor would. ``run`` and ``demo`` are built on it.

The client acts as the editor: it applies WorkspaceEdits to files on disk, answers permission
requests and reviews proposals through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types as lsp
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient
from pygls.protocol import LanguageServerProtocol
from pygls.uris import from_fs_path

from lsp_agent import __version__
from lsp_agent.client.spawn import spawn_server
from lsp_agent.edits.workspace_edit import apply_workspace_edit_to_disk
from lsp_agent.server import protocol as p
from lsp_agent.types import events as ev

log = logging.getLogger(__name__)

# What this client handles: edits as documentChanges with every resource operation (it applies
# them to disk), and work-done progress. Positions: LSP's default, UTF-16.
CLIENT_CAPABILITIES = lsp.ClientCapabilities(
    window=lsp.WindowClientCapabilities(work_done_progress=True),
    workspace=lsp.WorkspaceClientCapabilities(
        apply_edit=True,
        workspace_edit=lsp.WorkspaceEditClientCapabilities(
            document_changes=True,
            resource_operations=[lsp.ResourceOperationKind.Create,
                                 lsp.ResourceOperationKind.Rename,
                                 lsp.ResourceOperationKind.Delete],
            change_annotation_support=lsp.ChangeAnnotationsSupportOptions())))

KILL_GRACE_S = 5.0  # how long a server whose input ended may take to exit

OnEvent = Callable[[ev.AgentEvent], None]
OnPermission = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
OnProposal = Callable[[ev.ProposalCreated], Awaitable[dict[str, Any]]]


@dataclass
class RawNotification:
    """A notification whose params stay the JSON they arrived as."""

    method: str
    jsonrpc: str
    params: Any = None


class ClientProtocol(LanguageServerProtocol):
    """pygls's protocol, but the server's events reach their handler as the decoded dicts:
    pygls makes every unknown notification's params into namedtuples (a class built per
    object), which the handler turned back into dicts; per event, that was most of a client's
    CPU. (Keys that are not identifiers come through unchanged too.)"""

    RAW = frozenset({p.EVENT})

    # pygls's is an lru_cache wrapper, which mypy reads as another signature.
    def get_message_type(self, method: str) -> type[Any] | None:  # type: ignore[override]
        return RawNotification if method in self.RAW else super().get_message_type(method)


class AgentClient:
    def __init__(
        self,
        workspace: Path,
        on_event: OnEvent,
        on_permission: OnPermission,
        on_proposal: OnProposal,
        *,
        env: dict[str, str] | None = None,
        initialization_options: dict[str, Any] | None = None,
        server_log: Path | None = None,
        server_stderr: BinaryIO | None = None,
        server: asyncio.subprocess.Process | None = None,
    ):
        self.workspace = workspace.resolve()
        self._on_event = on_event
        self._on_permission = on_permission
        self._on_proposal = on_proposal
        self._env = env
        self._init_options = initialization_options or {}
        self._server_log = server_log
        self._server_stderr = server_stderr  # where the server's log goes if not to a file
        self._process = server  # started already (spawn.py), or by start()
        self._client = LanguageClient("lsp-agent-cli", __version__, protocol_cls=ClientProtocol)
        self._encoding: Any = "utf-16"
        self._background: set[asyncio.Task[Any]] = set()
        self._register()

    def _register(self) -> None:
        client = self._client

        @client.feature(lsp.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            data = client.protocol._converter.unstructure(params.edit)
            try:
                apply_workspace_edit_to_disk(data, self._encoding, roots=[self.workspace])
            except Exception as exc:
                return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
            return lsp.ApplyWorkspaceEditResult(applied=True)

        @client.feature(p.REQUEST_PERMISSION)
        async def permission(params: Any) -> dict[str, Any]:
            return await self._on_permission(p.plain(params))

        @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def progress_create(params: Any) -> None:
            return None

        @client.feature(lsp.PROGRESS)
        def progress(params: Any) -> None:
            return None

        @client.feature(p.EVENT)
        def on_event(params: Any) -> None:
            data = params if isinstance(params, dict) else p.plain(params)  # ClientProtocol
            try:
                event = ev.parse_event(data["event"])
            except Exception:
                log.warning("unreadable event: %s", data)
                return
            self._on_event(event)
            if isinstance(event, ev.ProposalCreated) and not event.auto_apply:
                self._spawn(self._review(event))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _review(self, event: ev.ProposalCreated) -> None:
        decision = await self._on_proposal(event)
        try:
            await self.request(p.REVIEW, {"proposalId": event.proposal_id, **decision})
        except Exception as exc:
            log.error("review of %s failed: %s", event.proposal_id, exc)

    async def start(self) -> dict[str, Any]:
        if self._process is None:
            self._process = await spawn_server(self.workspace, self._env)
        self._connect(self._process)
        self._spawn(self._drain_stderr())
        result = await self._client.initialize_async(lsp.InitializeParams(
            process_id=os.getpid(),
            root_uri=from_fs_path(str(self.workspace)),
            capabilities=CLIENT_CAPABILITIES,
            initialization_options=self._init_options,
        ))
        self._client.initialized(lsp.InitializedParams())
        self._encoding = result.capabilities.position_encoding or "utf-16"
        return self._client.protocol._converter.unstructure(result)

    def _connect(self, server: asyncio.subprocess.Process) -> None:
        """What pygls's ``start_io`` does once it has started the process (pygls 2.x): speak
        over its pipes, and fail pending requests when it exits. Ours starts the process
        itself, so that ``run`` can start it before its own imports."""
        client: Any = self._client
        if server.stdin is None or server.stdout is None:
            raise RuntimeError("the server process has no pipes")
        client.protocol.set_writer(server.stdin)
        client._server = server
        client._async_tasks.extend([
            asyncio.ensure_future(run_async(stop_event=client._stop_event, reader=server.stdout,
                                            protocol=client.protocol, logger=log,
                                            error_handler=client.report_server_error)),
            asyncio.ensure_future(client._server_exit()),
        ])

    async def _drain_stderr(self) -> None:
        """Read the server's log so its pipe never fills (a full pipe would stall the server)."""
        server = self._process
        if server is None or server.stderr is None:
            return
        log_file = open(self._server_log, "ab") if self._server_log else None  # noqa: ASYNC230
        sink = log_file or self._server_stderr
        try:
            while chunk := await server.stderr.read(65536):
                if sink:
                    sink.write(chunk)
                    sink.flush()
        finally:
            if log_file:
                log_file.close()

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        answer = self._client.protocol.send_request_async(method, params)
        # Shielded: when the caller gives up (Ctrl-C), the answer may still arrive, and pygls
        # would fail on a cancelled future ("InvalidStateError: CANCELLED"). Left alone, it
        # lands quietly; its outcome is marked seen so that asyncio does not warn.
        answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        return p.plain(await asyncio.shield(answer))

    async def new_session(self, mode: str | None = None, model: str | None = None) -> str:
        params: dict[str, Any] = {"workspaceUri": from_fs_path(str(self.workspace))}
        if mode:
            params["mode"] = mode
        if model:
            params["model"] = model
        return (await self.request(p.NEW_SESSION, params))["sessionId"]

    async def prompt(self, session_id: str, text: str) -> dict[str, Any]:
        return await self.request(p.PROMPT, {"sessionId": session_id, "text": text})

    @property
    def server_exit_code(self) -> int | None:
        server = self._process
        return None if server is None else server.returncode

    async def kill(self) -> None:
        """End the server now, without the shutdown handshake (a second Ctrl-C, a failure).
        Its input ends first, so that it still stops its turn's processes as it exits; a
        server that does not exit soon after is killed."""
        server = self._process
        if server is not None and server.returncode is None:
            with contextlib.suppress(Exception):
                if server.stdin is not None:
                    server.stdin.close()
            try:
                await asyncio.wait_for(server.wait(), KILL_GRACE_S)
            except TimeoutError:
                server.kill()
        await self._teardown()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.shutdown_async(None), 10)
            self._client.exit(None)
        await self._teardown()

    async def _teardown(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.stop(), 10)
        server = self._process
        if server is not None and server.returncode is None:
            server.kill()
        for task in list(self._background):
            task.cancel()
