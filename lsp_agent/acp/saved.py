"""Saved sessions over ACP (``session/load``, ``session/list``): the session manager's store,
its errors as JSON-RPC errors a client can show as they are."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import ListSessionsResponse, SessionInfo

from lsp_agent.sessions.manager import PersistenceOff, Resumed, SessionManager
from lsp_agent.store import SessionInUse, SessionNotFound, TranscriptVersionError
from lsp_agent.store.layout import InvalidSessionId
from lsp_agent.types.permissions import Mode

INVALID_PARAMS = -32602
INVALID_REQUEST = -32600
LIST_PAGE = 50
HISTORY_PAGE = 500
MAX_REPLAYED = 5_000  # entries of history replayed by session/load (the newest)

# Store errors and what the client gets for them (a table: one place to extend).
STORE_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (SessionNotFound, INVALID_PARAMS, "unknown session: {}"),
    (InvalidSessionId, INVALID_PARAMS, "{}"),
    (TranscriptVersionError, INVALID_REQUEST, "{}"),
    (SessionInUse, INVALID_REQUEST, "{}"),
    (PersistenceOff, INVALID_REQUEST, "{}"),
)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except tuple(kind for kind, _, _ in STORE_ERRORS) as exc:
        code, text = next((c, t) for kind, c, t in STORE_ERRORS if isinstance(exc, kind))
        raise RequestError(code, text.format(str(exc).strip("'\""))) from None


async def resume(manager: SessionManager, workspace: Path, session_id: str,
                 mode: Mode) -> tuple[Resumed, list[dict[str, Any]]]:
    """The session back in this process, and its history oldest first (the newest
    MAX_REPLAYED entries)."""
    with store_errors():
        resumed = await manager.resume(workspace, session_id, mode)
        newest_first: list[dict[str, Any]] = []
        before: str | None = None
        while len(newest_first) < MAX_REPLAYED:
            page = await manager.history(workspace, session_id, before, HISTORY_PAGE)
            newest_first += page.items
            before = page.next_before
            if before is None:
                break
    return resumed, newest_first[:MAX_REPLAYED][::-1]


def resume_notes(resumed: Resumed) -> list[str]:
    return [*resumed.warnings, *(f"Proposal {p} was not applied: the session ended before its "
                                 "review." for p in resumed.not_applied)]


async def list_page(manager: SessionManager, workspace: Path,
                    cursor: str | None) -> ListSessionsResponse:
    """Saved sessions of ``workspace``, newest first; the cursor is the next offset."""
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    with store_errors():
        page = await manager.list_saved(workspace, offset, LIST_PAGE)
    return ListSessionsResponse(
        sessions=[SessionInfo(session_id=item.session_id, cwd=str(workspace),
                              title=item.title or None, updated_at=item.updated_at or None)
                  for item in page.items],
        next_cursor=str(page.next_offset) if page.next_offset is not None else None)
