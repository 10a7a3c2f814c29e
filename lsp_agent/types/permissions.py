"""Permission modes, what a tool call touches, and the user's answers to a question."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lsp_agent.types.events import PermissionAsked

# auto: what would ask is first put to a small classifier model (allow / deny / ask the user).
Mode = Literal["default", "plan", "acceptEdits", "dontAsk", "bypassPermissions", "auto"]
MODES: tuple[Mode, ...] = ("default", "plan", "acceptEdits", "dontAsk", "bypassPermissions",
                           "auto")
Scope = Literal["session", "project", "user"]

# What a call touches, which decides how the permission gate judges it:
#   read:    reads files (a path, or the workspace when none is given)
#   write:   changes files (proposals in the editor's review, or written at once)
#   shell:   runs a command line (judged command by command)
#   session: changes only the session's own state (the plan, which tools are loaded)
#   external: reaches something outside the workspace (MCP servers, the network)
Access = Literal["read", "write", "shell", "session", "external"]


@dataclass(frozen=True)
class Subject:
    """What one tool call touches, as the permission gate and rules see it."""

    access: Access
    path: str | None = None  # the raw path argument (resolved against the workspace later)
    command: str | None = None  # the command line, for ``shell``
    target: str | None = None  # what rules match and prompts show for other tools

    @property
    def shown(self) -> str | None:
        return self.command or self.path or self.target


@dataclass
class PermissionAnswer:
    decision: Literal["allow", "deny"]
    remember: bool | Scope = False  # True: the session
    message: str | None = None
    source: Literal["user", "timeout", "error"] = "user"


Asker = Callable[["PermissionAsked"], Awaitable[PermissionAnswer]]
