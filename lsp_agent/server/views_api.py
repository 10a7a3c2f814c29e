"""LSP requests behind the editor's views of a session: ``agent/taskOutput`` and
``agent/taskStop`` (the Tasks view: a background task's newest output, and stopping it) and
``agent/customizations`` (what the session picked up from files: skills, custom commands,
agents and plugins). Thin handlers over what the session already holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams

if TYPE_CHECKING:
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
    from lsp_agent.sessions.session import Session
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

TASK_OUTPUT = "agent/taskOutput"
TASK_STOP = "agent/taskStop"
CUSTOMIZATIONS = "agent/customizations"
METHODS = [TASK_OUTPUT, TASK_STOP, CUSTOMIZATIONS]

# The newest bytes of a task's output the view shows (the agent's TaskOutput reads on apart).
TAIL_BYTES = 64_000


def register(server: AgentServer) -> None:
    @server.feature(TASK_OUTPUT)
    def task_output(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.TaskParams, params)
        from lsp_agent.tools.base import ToolError  # loaded with the session's tools

        try:
            return ls.session(args.session_id).tasks.tail(args.task_id, TAIL_BYTES)
        except ToolError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @server.feature(TASK_STOP)
    async def task_stop(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.TaskParams, params)
        tasks = ls.session(args.session_id).tasks
        from lsp_agent.tools.base import ToolError

        try:
            message = await tasks.stop(args.task_id)
            return {"message": message, "task": tasks.get(args.task_id).summary()}
        except ToolError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None

    @server.feature(CUSTOMIZATIONS)
    def customizations(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.SessionParams, params)
        return customizations_of(ls.session(args.session_id))


def customizations_of(session: Session) -> dict[str, Any]:
    """Names, descriptions and where each came from; never a file's body."""
    ext = session.extensions
    return {
        "skills": [{"name": s.name, "description": s.description, "source": s.source,
                    "path": str(s.file), "argumentHint": s.argument_hint,
                    "userInvocable": s.user_invocable,
                    "modelInvocable": s.model_invocable} for s in ext.skills.values()],
        "commands": [{"name": c.name, "description": c.description, "source": c.source,
                      "path": str(c.file), "argumentHint": c.argument_hint}
                     for c in ext.commands.values()],
        "agents": [{"name": a.name, "description": a.description,
                    "source": "builtin" if a.source == "built-in" else "file", "path":
                    None if a.source == "built-in" else a.source}
                   for a in session.delegation.catalog.types.values()],
        "plugins": [{"name": pl.name, "version": pl.version, "description": pl.description,
                     "root": str(pl.root)} for pl in ext.plugins],
        "warnings": list(ext.warnings),
    }
