"""An editor for end-to-end tests: a pytest-lsp client talking to a real ``lsp-agent serve``
subprocess, which talks to the scripted model server over real HTTP with the real SDK.

The editor keeps buffers of the documents it opened, applies WorkspaceEdits to them (refusing a
TextDocumentEdit whose version does not match, as VS Code does) or to disk for closed files, and
answers permission requests with a policy the test sets. It declares what VS Code declares
unless a test passes other capabilities, and applies edits the way ``apply_style`` says:

* ``"vscode"``: checks versions, sends the buffer's ``didChange`` before answering;
* ``"neovim"``: answers ``applied: true`` at once, skips an edit pinned to an older version (but
  not to version 0, which it does not check), sends ``didChange`` ``change_delay`` s later;
* ``"silent"``: answers ``applied: true`` and does nothing;
* ``"misapply"``: applies each edit one line below where it belongs, then like ``"neovim"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.uris import from_fs_path, to_fs_path
from pytest_lsp import ClientServerConfig

from lsp_agent.edits.workspace_edit import apply_text_edits, apply_workspace_edit_to_disk
from lsp_agent.server.protocol import plain
from lsp_agent.types import events as ev
from lsp_agent.workspace.positions import TextLines

WAIT = 30.0
PermissionPolicy = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

VSCODE_CAPABILITIES = lsp.ClientCapabilities(
    general=lsp.GeneralClientCapabilities(position_encodings=["utf-16"]),
    window=lsp.WindowClientCapabilities(
        work_done_progress=True, show_document=lsp.ShowDocumentClientCapabilities(support=True)),
    workspace=lsp.WorkspaceClientCapabilities(
        apply_edit=True,
        workspace_edit=lsp.WorkspaceEditClientCapabilities(
            document_changes=True,
            resource_operations=[lsp.ResourceOperationKind.Create,
                                 lsp.ResourceOperationKind.Rename,
                                 lsp.ResourceOperationKind.Delete],
            change_annotation_support=lsp.ChangeAnnotationsSupportOptions(groups_on_label=True))),
    text_document=lsp.TextDocumentClientCapabilities(
        code_action=lsp.CodeActionClientCapabilities(
            resolve_support=lsp.ClientCodeActionResolveOptions(properties=["command"]))))

# What Neovim 0.11 declares about positions and edits.
NEOVIM_CAPABILITIES = lsp.ClientCapabilities(
    general=lsp.GeneralClientCapabilities(position_encodings=["utf-8", "utf-16", "utf-32"]),
    window=lsp.WindowClientCapabilities(
        work_done_progress=True, show_document=lsp.ShowDocumentClientCapabilities(support=True)),
    workspace=lsp.WorkspaceClientCapabilities(
        apply_edit=True,
        workspace_edit=lsp.WorkspaceEditClientCapabilities(
            resource_operations=[lsp.ResourceOperationKind.Rename,
                                 lsp.ResourceOperationKind.Create,
                                 lsp.ResourceOperationKind.Delete])),
    text_document=lsp.TextDocumentClientCapabilities(
        code_action=lsp.CodeActionClientCapabilities(
            resolve_support=lsp.ClientCodeActionResolveOptions(properties=["edit", "command"]))))


async def allow(params: dict[str, Any]) -> dict[str, Any]:
    return {"decision": "allow"}


def uri(path: Path) -> str:
    return from_fs_path(str(path))


def demo_project(target: Path) -> Path:
    src = Path(str(resources.files("lsp_agent") / "demo_project"))
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


class Editor:
    def __init__(self, client: Any):
        self.client = client
        self.events: dict[str, list[ev.AgentEvent]] = defaultdict(list)
        self.buffers: dict[str, tuple[str, int]] = {}
        self.applied: list[dict[str, Any]] = []
        self.permission: PermissionPolicy = allow
        self.permission_requests: list[dict[str, Any]] = []
        self.init_result: Any = None
        self.stall_apply = False
        self.apply_style = "vscode"
        self.change_delay = 0.1
        self.before_apply: Callable[[], None] | None = None  # e.g. the user types just then
        self._changed = asyncio.Condition()
        self._late: set[asyncio.Task[None]] = set()
        self._register()

    @property
    def shown(self) -> list[str]:
        """URIs the server asked to show (pytest-lsp records window/showDocument)."""
        return [params.uri for params in self.client.shown_documents]

    @property
    def encoding(self) -> Any:
        return self.init_result.capabilities.position_encoding or "utf-16"

    # -- what the server asks of the editor -----------------------------------------------

    def _register(self) -> None:
        client = self.client

        @client.feature("agent/event")
        async def on_event(params: Any) -> None:
            data = plain(params)
            event = ev.parse_event(data["event"])
            async with self._changed:
                self.events[data["sessionId"]].append(event)
                self._changed.notify_all()

        @client.feature("agent/requestPermission")
        async def on_permission(params: Any) -> dict[str, Any]:
            data = plain(params)
            self.permission_requests.append(data)
            return await self.permission(data)

        @client.feature(lsp.WORKSPACE_APPLY_EDIT)
        async def on_apply(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            data = client.protocol._converter.unstructure(params.edit)
            self.applied.append(data)
            if self.stall_apply:  # an editor that never answers
                await asyncio.sleep(3600)
            if self.before_apply is not None:
                self.before_apply()
            return self._apply(data)

    def _apply(self, edit: dict[str, Any]) -> lsp.ApplyWorkspaceEditResult:
        if self.apply_style == "silent":
            return lsp.ApplyWorkspaceEditResult(applied=True)
        document_changes = edit.get("documentChanges")
        if document_changes is None:  # the plain changes map: unversioned
            document_changes = [{"textDocument": {"uri": u, "version": None}, "edits": e}
                                for u, e in (edit.get("changes") or {}).items()]
        closed: list[dict[str, Any]] = []
        changed: list[str] = []
        for change in document_changes:
            doc = change.get("textDocument")
            if doc is None or doc["uri"] not in self.buffers:
                closed.append(change)
                continue
            text, version = self.buffers[doc["uri"]]
            pinned = doc.get("version")
            if pinned is not None and pinned != version:
                if self.apply_style == "vscode":
                    return lsp.ApplyWorkspaceEditResult(
                        applied=False, failure_reason=f"version {pinned} != {version}")
                if pinned > 0:
                    continue  # Neovim: stale, skipped, and still "applied"
            shift = 1 if self.apply_style == "misapply" else 0
            edits = [lsp.TextEdit(range=lsp.Range(
                start=lsp.Position(e["range"]["start"]["line"] + shift,
                                   e["range"]["start"]["character"]),
                end=lsp.Position(e["range"]["end"]["line"] + shift,
                                 e["range"]["end"]["character"])),
                new_text=e["newText"]) for e in change["edits"]]
            self.buffers[doc["uri"]] = (apply_text_edits(text, edits, self.encoding), version + 1)
            changed.append(doc["uri"])
        if closed:
            apply_workspace_edit_to_disk({"documentChanges": closed}, self.encoding)
        if self.apply_style == "vscode":
            for changed_uri in changed:
                self._send_buffer(changed_uri)
        else:
            task = asyncio.ensure_future(self._send_later(changed))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    async def _send_later(self, uris: list[str]) -> None:
        await asyncio.sleep(self.change_delay)
        for changed_uri in uris:
            self._send_buffer(changed_uri)

    def _send_buffer(self, doc_uri: str) -> None:
        text, version = self.buffers[doc_uri]
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=doc_uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))

    # -- what the user does -----------------------------------------------------------------

    @contextlib.contextmanager
    def answering(self, policy: PermissionPolicy) -> Iterator[None]:
        """Answer permission requests with ``policy`` for the duration of the block."""
        previous, self.permission = self.permission, policy
        try:
            yield
        finally:
            self.permission = previous

    def add_folder(self, folder: Path) -> None:
        self.client.workspace_did_change_workspace_folders(lsp.DidChangeWorkspaceFoldersParams(
            event=lsp.WorkspaceFoldersChangeEvent(
                added=[lsp.WorkspaceFolder(uri=uri(folder), name=folder.name)], removed=[])))

    def open(self, path: Path, version: int = 1) -> None:
        text = path.read_text()
        self.buffers[uri(path)] = (text, version)
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri(path), language_id="python",
                                               version=version, text=text)))

    def type_text(self, path: Path, new_text: str) -> int:
        """Replace the buffer's whole text (the user typing); returns the new version."""
        _, version = self.buffers[uri(path)]
        version += 1
        self.buffers[uri(path)] = (new_text, version)
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=new_text)]))
        return version

    def type_at(self, path: Path, start: tuple[int, int], end: tuple[int, int], text: str) -> int:
        """The user replaces a code-point range with ``text``: one incremental change, its
        range sent in the negotiated encoding. Returns the new version."""
        current, version = self.buffers[uri(path)]
        lines = TextLines(current)
        wire = lines.to_range(start, end, self.encoding)
        new_text = current[: lines.offset(start)] + text + current[lines.offset(end):]
        version += 1
        self.buffers[uri(path)] = (new_text, version)
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(path), version=version),
            content_changes=[lsp.TextDocumentContentChangePartial(range=wire, text=text)]))
        return version

    def buffer(self, path: Path) -> str:
        return self.buffers[uri(path)][0]

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        return plain(await asyncio.wait_for(
            self.client.protocol.send_request_async(method, params), WAIT))

    async def new_session(self, workspace: Path, **extra: Any) -> str:
        result = await self.request("agent/newSession", {"workspaceUri": uri(workspace), **extra})
        return result["sessionId"]

    async def wait_for(self, session_id: str, kind: type, count: int = 1) -> list[Any]:
        def found() -> list[Any]:
            return [e for e in self.events[session_id] if isinstance(e, kind)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), WAIT)
        return found()

    def of(self, session_id: str, kind: type) -> list[Any]:
        return [e for e in self.events[session_id] if isinstance(e, kind)]


def server_config(base_url: str, state_dir: Path,
                  extra_env: dict[str, str] | None = None) -> ClientServerConfig:
    import os

    env = {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key",
           "LSP_AGENT_STATE_DIR": str(state_dir), "LSP_AGENT_BACKOFF_BASE": "0.01",
           "LSP_AGENT_CACHE_DIR": str(state_dir / "cache"),
           # Most test servers never prompt: no SDK import in the background for each
           # (tests/test_model_preload.py runs servers with it on).
           "LSP_AGENT_PRELOAD_MODEL": "0", **(extra_env or {})}
    return ClientServerConfig(server_command=[sys.executable, "-m", "lsp_agent", "serve"],
                              server_env=env)


async def start_editor(base_url: str, root: Path,
                       capabilities: lsp.ClientCapabilities | None = None,
                       server_env: dict[str, str] | None = None,
                       **init_options: Any) -> Editor:
    client = await server_config(base_url, root / ".state", server_env).start()
    editor = Editor(client)
    editor.init_result = await client.initialize_session(lsp.InitializeParams(
        capabilities=capabilities or VSCODE_CAPABILITIES,
        root_uri=uri(root),
        initialization_options={"permissionTimeoutSeconds": 3, **init_options},
    ))
    return editor


def path_of(u: str) -> Path:
    return Path(to_fs_path(u) or "")


def unique_duration(seconds: int = 60) -> str:
    """A ``sleep`` argument no other process has: ``sleep <it>`` marks a test's processes."""
    import uuid

    return f"{seconds}.{uuid.uuid4().int % 10**12:012d}"


def processes_with(marker: str) -> list[int]:
    """The running processes (zombies excluded) whose command line contains ``marker``: a
    look at the host's process table, which also sees processes in a sandbox's PID namespace
    (whose pids, as the sandbox knows them, mean nothing outside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if marker in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


async def wait_for_processes(marker: str, present: bool, within: float = WAIT) -> list[int]:
    """Poll the process table until processes with ``marker`` exist (``present``) or are all
    gone; returns the last look (the caller asserts on it: the timeout only avoids a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    # No event tells when a process appears or goes: poll.
    while bool(found := processes_with(marker)) != present and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return found
