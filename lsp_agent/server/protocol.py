"""The custom LSP methods (documented in docs/protocol.md) and their validated parameters.

pygls hands params of methods lsprotocol does not know over as namedtuples; ``parse`` turns
them back into plain JSON and validates them, so a malformed request gets a JSON-RPC
InvalidParams error naming the offending field instead of an internal error.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.server.init_options import InitializationOptions  # noqa: F401
from lsp_agent.server.methods import (  # noqa: F401 (the names, here with their models)
    CANCEL,
    CHECKPOINTS,
    CMD_CHANGE,
    CMD_EXPLAIN,
    CMD_FIX,
    COMPACT,
    CONTEXT,
    DELETE_SESSION,
    DIAGNOSTICS_CHANGED,
    EVENT,
    FORK_SESSION,
    INBOX_DISMISS,
    LIST_SESSIONS,
    NEW_SESSION,
    PROMPT,
    PROMPT_HISTORY,
    REMOVE_WORKTREE,
    RENAME_SESSION,
    REQUEST_PERMISSION,
    RESUME_SESSION,
    REVIEW,
    REWIND,
    SESSION_HISTORY,
    SET_MODE,
    SET_MODEL,
    TASKS,
    WARM_UP,
    WATCH_EVENT,
    WORKTREES,
)
from lsp_agent.types.editor import Diagnostic, EditorContext, Range
from lsp_agent.types.events import Wire
from lsp_agent.types.jsonutil import plain
from lsp_agent.types.permissions import Mode
from lsp_agent.types.watch import (  # noqa: F401 (the wire types, here with the others)
    InboxItem,
    InboxKind,
    InboxProposal,
    InboxProposalStatus,
    TriageView,
    WatchEvent,
    WatchEventKind,
)


class WarmUpParams(Wire):
    """``agent/warmUp``: no fields yet (unknown ones are ignored)."""


class NewSessionParams(Wire):
    workspace_uri: str | None = None
    mode: Mode | None = None
    model: str | None = None
    coordinator: bool = False  # the agent only plans and delegates (docs/delegation.md)


class NewSessionResult(Wire):
    session_id: str
    workspace_uri: str
    mode: Mode
    model: str
    warnings: list[str] = Field(default_factory=list)  # settings problems, sandbox status


class ResumeSessionResult(NewSessionResult):
    # Proposals waiting for review when the session ended: never applied, now closed.
    not_applied: list[str] = Field(default_factory=list)
    turns: int = 0


class SavedSessionParams(Wire):
    """A saved session of a workspace (default: the server's root folder)."""

    session_id: str
    workspace_uri: str | None = None


class ResumeSessionParams(SavedSessionParams):
    mode: Mode | None = None  # when the saved mode is not resumed (bypassPermissions)


class SessionHistoryParams(SavedSessionParams):
    before: str | None = None  # an entry uuid: the page before it (older)
    limit: int = Field(default=50, ge=1, le=500)


class ForkSessionParams(SavedSessionParams):
    at_turn: int | None = Field(default=None, ge=1)  # the fork holds the turns before it


class RenameSessionParams(SavedSessionParams):
    title: str = Field(min_length=1, max_length=200, pattern=r"\S")


class RewindParams(SavedSessionParams):
    turn: int = Field(ge=1)  # back to just before this turn (1-based)
    restore: Literal["code", "conversation", "both"] = "both"


class ListSessionsParams(Wire):
    workspace_uri: str | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=500)


class PromptHistoryParams(Wire):
    workspace_uri: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class PromptParams(Wire):
    session_id: str
    text: str = Field(min_length=1)
    context: EditorContext | None = None


class SessionParams(Wire):
    session_id: str


class TaskParams(Wire):
    """``agent/taskOutput`` and ``agent/taskStop``: one background task of a session."""

    session_id: str
    task_id: str


class WorktreesParams(Wire):
    workspace_uri: str | None = None  # default: every repository's agent worktrees


class RemoveWorktreeParams(Wire):
    agent_id: str = Field(min_length=1, max_length=100)
    delete_branch: bool = True


class CompactParams(Wire):
    session_id: str
    instructions: str | None = None


class SetModeParams(Wire):
    session_id: str
    mode: Mode


class SetModelParams(Wire):
    session_id: str
    model: str = Field(pattern=r"\S")  # a model name; blank is an error


class ReviewParams(Wire):
    proposal_id: str
    accept: list[str] | Literal["all"] = Field(default_factory=list)
    reject: list[str] | Literal["all"] = Field(default_factory=list)
    feedback: str | None = None


class PermissionAnswerParams(Wire):
    decision: Literal["allow", "deny"]
    # true or "session": for this session; "project": recorded in .lsp-agent/settings.local.json;
    # "user": recorded in the user settings.
    remember: bool | Literal["session", "project", "user"] = False
    message: str | None = None


class FixArguments(Wire):
    uri: str
    diagnostic: Diagnostic
    session_id: str | None = None


class FixResult(Wire):
    """What ``lspAgent.fix`` answers: the session that works on it; ``prepared`` when the
    watcher had prepared this fix already (its proposals are waiting in ``proposal_ids``)."""

    session_id: str
    prepared: bool | None = None
    proposal_ids: list[str] | None = None


# -- the watcher (docs/autonomy.md, docs/protocol.md "The watcher") ------------------------


class DiagnosticsChangedParams(Wire):
    """The document's whole current set of diagnostics (any client may send it)."""

    uri: str
    diagnostics: list[Diagnostic] = Field(default_factory=list)


class InboxDismissParams(Wire):
    id: str


class SelectionArguments(Wire):
    uri: str
    range: Range
    selection_text: str = ""
    instruction: str | None = None
    session_id: str | None = None


# -- auto memory, Dream, extensions, the watcher's controls (memory_api.py, dream_api.py,
# extensions_api.py, watch_api.py) --------------------------------------------------


class MemoryParams(Wire):
    workspace_uri: str | None = None


class MemoryFileParams(MemoryParams):
    name: str  # "MEMORY.md" or a topic's name


class MemoryWriteParams(MemoryFileParams):
    text: str


class McpRestartParams(Wire):
    session_id: str
    server: str


class McpApproveParams(Wire):
    session_id: str
    server: str
    remember: bool = False  # also for the project (.lsp-agent/settings.local.json)
    approve: bool = True  # false: refused for this session (stays stopped, not asked again)


class McpResourcesParams(Wire):
    session_id: str
    query: str = ""


class DreamParams(MemoryParams):
    force: bool = False


class PauseParams(Wire):
    paused: bool


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], params: Any) -> M:
    data = plain(params)
    if data is None or data == []:  # some clients (Lua ones) send empty params as []
        data = {}
    if not isinstance(data, dict):
        raise JsonRpcInvalidParams(f"params must be an object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise JsonRpcInvalidParams(f"invalid params: {problems}") from None
