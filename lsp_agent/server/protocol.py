"""The custom LSP methods (documented in docs/protocol.md) and their validated parameters.

pygls hands params of methods lsprotocol does not know over as namedtuples; ``parse`` turns
them back into plain JSON and validates them, so a malformed request gets a JSON-RPC
InvalidParams error naming the offending field instead of an internal error.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from pygls.exceptions import JsonRpcInvalidParams

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

NEW_SESSION = "agent/newSession"
PROMPT = "agent/prompt"
CANCEL = "agent/cancel"
SET_MODE = "agent/setMode"
SET_MODEL = "agent/setModel"
REVIEW = "agent/review"
LIST_SESSIONS = "agent/listSessions"
CONTEXT = "agent/context"
COMPACT = "agent/compact"
RESUME_SESSION = "agent/resumeSession"
SESSION_HISTORY = "agent/sessionHistory"
FORK_SESSION = "agent/forkSession"
RENAME_SESSION = "agent/renameSession"
DELETE_SESSION = "agent/deleteSession"
PROMPT_HISTORY = "agent/promptHistory"
REWIND = "agent/rewind"
CHECKPOINTS = "agent/checkpoints"
TASKS = "agent/tasks"
WORKTREES = "agent/worktrees"
REMOVE_WORKTREE = "agent/removeWorktree"
EVENT = "agent/event"
WARM_UP = "agent/warmUp"  # notification: a prompt may come soon, load what it needs
REQUEST_PERMISSION = "agent/requestPermission"

CMD_FIX = "lspAgent.fix"
CMD_EXPLAIN = "lspAgent.explain"
CMD_CHANGE = "lspAgent.change"


class InitializationOptions(Wire):
    python_language_features: bool = True
    permission_timeout_seconds: float = Field(default=300.0, gt=0)
    apply_edit_timeout_seconds: float = Field(default=60.0, gt=0)
    # After applied: true, how long to wait for the buffer's didChange to show the edit.
    apply_edit_verify_seconds: float = Field(default=3.0, gt=0)
    editor_saves_applied_edits: bool = False
    editor_bridge: bool = False  # the client answers agent/editor/* requests
    editor_bridge_timeout_seconds: float = Field(default=10.0, gt=0)
    # Per-query limits of Python code intelligence: the editor's requests, the agent's tools.
    code_intel_timeout_seconds: float = Field(default=30.0, gt=0)
    code_intel_tool_timeout_seconds: float = Field(default=20.0, gt=0)
    mode: Mode = "default"
    model: str | None = None
    fallback_model: str | None = None
    classifier_model: str | None = None  # auto mode's classifier (default a haiku model)
    explore_model: str | None = None  # the Explore subagent's (default a haiku model)
    state_dir: str | None = None
    persist_sessions: bool = True  # transcripts under the state dir (resume, fork, history)
    # Saved sessions not updated for this long are deleted (with their checkpoints), and the
    # oldest go first while all of them take more than the size limit.
    session_retention_days: float = Field(default=30.0, gt=0)
    session_storage_max_mb: float = Field(default=500.0, gt=0)
    # Settings-file sections (see docs/security.md), between managed and project settings.
    permissions: dict[str, Any] | None = None
    sandbox: dict[str, Any] | None = None
    hooks: dict[str, Any] | None = None
    # Extensions (docs/extensions.md): the editor's settings count as the user's own.
    mcp_servers: dict[str, Any] | None = None
    enable_all_project_mcp_servers: bool | None = None
    enabled_mcpjson_servers: list[str] | None = None
    disabled_mcpjson_servers: list[str] | None = None
    enabled_plugins: dict[str, bool] | None = None
    plugin_dirs: list[str] | None = None
    # Auto memory (docs/autonomy.md): off with false; the folder from the user's side only.
    auto_memory: bool | None = None
    auto_memory_directory: str | None = None
    # Dream (docs/autonomy.md): {"enabled", "minHours", "minSessions", "idleSeconds"}.
    dream: dict[str, Any] | None = None
    # The watcher (docs/autonomy.md): {"enabled", "testCommand", "debounceSeconds", ...}.
    watch: dict[str, Any] | None = None

    def safety_options(self) -> dict[str, Any] | None:
        found = {"permissions": self.permissions, "sandbox": self.sandbox, "hooks": self.hooks,
                 "mcpServers": self.mcp_servers,
                 "enableAllProjectMcpServers": self.enable_all_project_mcp_servers,
                 "enabledMcpjsonServers": self.enabled_mcpjson_servers,
                 "disabledMcpjsonServers": self.disabled_mcpjson_servers,
                 "enabledPlugins": self.enabled_plugins, "pluginDirs": self.plugin_dirs,
                 "autoMemory": self.auto_memory,
                 "autoMemoryDirectory": self.auto_memory_directory}
        return {k: v for k, v in found.items() if v is not None} or None


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

DIAGNOSTICS_CHANGED = "agent/diagnosticsChanged"  # notification, client -> server
WATCH_EVENT = "agent/watchEvent"  # notification, server -> client
INBOX_DISMISS = "agent/inboxDismiss"


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
