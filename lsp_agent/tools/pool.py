"""The default tool pool: every built-in tool, sorted by name (ToolPool keeps it stable)."""

from __future__ import annotations

from lsp_agent.tools.base import Tool, ToolPool
from lsp_agent.tools.tool_search import SessionTools


def builtin_tool_classes() -> list[type[Tool]]:
    from lsp_agent.tools.background import BACKGROUND_TOOLS
    from lsp_agent.tools.code_intel import CODE_INTEL_TOOLS
    from lsp_agent.tools.diagnostics import DIAGNOSTICS_TOOLS
    from lsp_agent.tools.files import FILE_TOOLS
    from lsp_agent.tools.search import SEARCH_TOOLS
    from lsp_agent.tools.shell import SHELL_TOOLS
    from lsp_agent.tools.task_list import TASK_LIST_TOOLS
    from lsp_agent.tools.todos import TODO_TOOLS

    return [*FILE_TOOLS, *SEARCH_TOOLS, *SHELL_TOOLS, *DIAGNOSTICS_TOOLS, *CODE_INTEL_TOOLS,
            *TODO_TOOLS, *BACKGROUND_TOOLS, *TASK_LIST_TOOLS]


def default_pool() -> ToolPool:
    return ToolPool([cls() for cls in builtin_tool_classes()])


# Rarely needed: offered through ToolSearch instead of in every request.
DEFERRED_TOOLS = ("DocumentSymbols", "Hover", "WorkspaceSymbols")


def session_pool(pool: ToolPool, deferred: tuple[str, ...] = DEFERRED_TOOLS) -> SessionTools:
    """A session's own view of a shared pool, with the deferred tools behind ToolSearch."""
    return SessionTools(pool, deferred)
