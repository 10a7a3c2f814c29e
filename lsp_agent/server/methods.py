"""The names of our custom LSP methods and commands (docs/protocol.md), without their models.

Handlers register under these names when the server is made; the pydantic models of the
params (protocol.py) load with the first call of a method (lazy_protocol.py), so that a server
answers initialize and idles without them.
"""

from __future__ import annotations

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

# The watcher (docs/autonomy.md, docs/protocol.md "The watcher").
DIAGNOSTICS_CHANGED = "agent/diagnosticsChanged"  # notification, client -> server
WATCH_EVENT = "agent/watchEvent"  # notification, server -> client
INBOX_DISMISS = "agent/inboxDismiss"
