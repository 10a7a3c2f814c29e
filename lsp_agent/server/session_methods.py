"""Saved sessions over LSP: list, resume, history, fork, rename, delete, prompt history.

Handlers stay thin: parse, find the workspace, call the session manager, map the store's
errors to JSON-RPC errors a client can show as they are.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.uris import from_fs_path, to_fs_path

if TYPE_CHECKING:
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

T = TypeVar("T")

ErrorTable = tuple[tuple[type[Exception], Callable[[str], Exception]], ...]


@functools.cache
def _errors() -> ErrorTable:
    """Store errors and what a client gets for them (a table: one place to extend). Built at
    first use: the store and the sessions load with the first session, not at start-up."""
    from lsp_agent.sessions.manager import PersistenceOff
    from lsp_agent.store import SessionInUse, SessionNotFound, TranscriptVersionError
    from lsp_agent.store.layout import InvalidSessionId

    return (
        (SessionNotFound, lambda m: JsonRpcInvalidParams(f"unknown session: {m}")),
        (InvalidSessionId, lambda m: JsonRpcInvalidParams(m)),
        (TranscriptVersionError, lambda m: JsonRpcInvalidRequest(m)),
        (SessionInUse, lambda m: JsonRpcInvalidRequest(m)),
        (PersistenceOff, lambda m: JsonRpcInvalidRequest(m)),
        (FileExistsError, lambda m: JsonRpcInvalidRequest(m)),
    )


@contextlib.contextmanager
def _client_errors() -> Iterator[None]:
    errors = _errors()
    try:
        yield
    except tuple(kind for kind, _ in errors) as exc:
        for kind, make in errors:
            if isinstance(exc, kind):
                raise make(str(exc).strip("'\"")) from None
        raise
    except ValueError as exc:  # e.g. a turn number past the end
        raise JsonRpcInvalidParams(str(exc)) from None


def workspace_of(ls: AgentServer, uri: str | None) -> Path:
    if not uri:
        return ls.root
    fs = to_fs_path(uri)
    if not fs or not Path(fs).is_dir():
        raise JsonRpcInvalidParams(f"workspaceUri is not an existing folder: {uri}")
    return Path(fs)


async def _guarded(call: Awaitable[T]) -> T:
    with _client_errors():
        return await call


def register(server: AgentServer) -> None:
    @server.feature(p.LIST_SESSIONS)
    async def list_sessions(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ListSessionsParams, params)
        return await list_all(ls, workspace_of(ls, args.workspace_uri), args.offset, args.limit)

    @server.feature(p.RESUME_SESSION)
    async def resume_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ResumeSessionParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        resumed = await _guarded(ls.manager.resume(workspace, args.session_id,
                                                   args.mode or ls.options.mode))
        session = resumed.session
        return p.ResumeSessionResult(
            session_id=session.id, workspace_uri=from_fs_path(str(session.workspace)) or "",
            mode=session.mode, model=session.agent.model,
            warnings=[*session.safety.warnings, *resumed.warnings],
            not_applied=resumed.not_applied,
            turns=session.recorder.writer.turns if session.recorder and session.recorder.writer
            else 0).wire()

    @server.feature(p.SESSION_HISTORY)
    async def session_history(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionHistoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        try:
            page = await _guarded(ls.manager.history(workspace, args.session_id, args.before,
                                                     args.limit))
        except KeyError as exc:  # ``before`` is not on the current branch
            raise JsonRpcInvalidParams(str(exc).strip("'\"")) from None
        return {"entries": page.items, "nextBefore": page.next_before}

    @server.feature(p.FORK_SESSION)
    async def fork_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.ForkSessionParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        new_id = await _guarded(ls.manager.fork(workspace, args.session_id, args.at_turn))
        return {"sessionId": new_id}

    @server.feature(p.RENAME_SESSION)
    async def rename_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.RenameSessionParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        await _guarded(ls.manager.rename(workspace, args.session_id, args.title.strip()))
        return {"title": args.title.strip()}

    @server.feature(p.DELETE_SESSION)
    async def delete_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SavedSessionParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        await _guarded(ls.manager.delete(workspace, args.session_id))
        return {"deleted": True}

    @server.feature(p.PROMPT_HISTORY)
    async def prompt_history(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.PromptHistoryParams, params)
        workspace = workspace_of(ls, args.workspace_uri)
        if ls.manager.store is None:
            return {"prompts": []}
        return {"prompts": await _guarded(ls.manager.prompt_history(workspace, args.limit))}


    @server.feature(p.REWIND)
    async def rewind_session(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.RewindParams, params)
        session = await open_session(ls, args)
        from lsp_agent.sessions import rewind

        try:
            report = await rewind.rewind(session, args.turn, args.restore)
        except rewind.RewindRefused as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        return report.wire()

    @server.feature(p.CHECKPOINTS)
    async def list_checkpoints(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SavedSessionParams, params)
        session = await open_session(ls, args)
        from lsp_agent.sessions import rewind

        return {"checkpoints": await rewind.checkpoints(session)}


async def open_session(ls: AgentServer, args: p.SavedSessionParams) -> Any:
    """The session open in this server, resumed from disk when it is not."""
    from lsp_agent.sessions.manager import UnknownSession

    try:
        return ls.manager.get(args.session_id)
    except UnknownSession:
        workspace = workspace_of(ls, args.workspace_uri)
        resumed = await _guarded(ls.manager.resume(workspace, args.session_id,
                                                   ls.options.mode))
        return resumed.session


async def list_all(ls: AgentServer, workspace: Path, offset: int, limit: int) -> dict[str, Any]:
    """Saved sessions of the workspace newest first, each with its live state when it is open
    in this server. Without persistence: the sessions open in this server."""
    open_here = {s.id: s for s in ls.manager.all()}
    if ls.manager.store is None:
        rows = [{"sessionId": s.id, "workspaceUri": from_fs_path(str(s.workspace)),
                 "live": True, **_live_state(s)} for s in open_here.values()]
        return {"sessions": rows, "total": len(rows), "nextOffset": None}
    page = await _guarded(ls.manager.list_saved(workspace, offset, limit))
    rows = []
    for item in page.items:
        row = {"sessionId": item.session_id, "title": item.title,
               "createdAt": item.created_at, "updatedAt": item.updated_at,
               "turns": item.turns, "model": item.model, "costUsd": item.cost_usd,
               "gitBranch": item.git_branch, "live": item.live,
               "workspaceUri": from_fs_path(str(workspace))}
        if item.forked_from:
            row["forkedFrom"] = item.forked_from
        if item.error:
            row["error"] = item.error
        session = open_here.get(item.session_id)
        rows.append({**row, **(_live_state(session) if session else {"open": False})})
    # Open here and not in this listing: sessions of other folders of the editor, and those
    # not on disk (yet, or ever: the state dir failed). The first page shows them first.
    listed = {item.session_id for item in page.items}
    others = [s for s in open_here.values() if s.id not in listed and (
              s.workspace != workspace or s.recorder is None or s.recorder.writer is None
              or not s.recorder.writer.persisting)]
    if offset == 0:
        rows[:0] = [{"sessionId": s.id, "workspaceUri": from_fs_path(str(s.workspace)),
                     "live": True, **_live_state(s)} for s in others]
    return {"sessions": rows, "total": page.total, "nextOffset": page.next_offset}


def _live_state(session: Any) -> dict[str, Any]:
    return {"open": True, "mode": session.mode, "model": session.agent.model,
            "busy": session.busy, "pendingProposals": session.proposals.pending_ids}
