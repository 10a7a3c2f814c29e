"""LSP requests on a project's auto memory (docs/protocol.md, "Auto memory"): show it, read,
write and delete its files, clear it. Thin handlers; the rules (names, links, secrets, the
index's limits) live in lsp_agent/context/auto_memory.py. File work runs off the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest

from lsp_agent.server.session_methods import workspace_of

if TYPE_CHECKING:  # auto memory and the store load with the first request that needs them
    from lsp_agent.context.auto_memory import AutoMemory
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p

MEMORY = "agent/memory"
MEMORY_READ = "agent/memoryRead"
MEMORY_WRITE = "agent/memoryWrite"
MEMORY_DELETE = "agent/memoryDelete"
MEMORY_CLEAR = "agent/memoryClear"
METHODS = [MEMORY, MEMORY_READ, MEMORY_WRITE, MEMORY_DELETE, MEMORY_CLEAR]


def project_memory(ls: AgentServer, workspace_uri: str | None) -> tuple[AutoMemory, list[str]]:
    from lsp_agent.context.auto_memory import auto_memory_for
    from lsp_agent.store import Redactor

    workspace = workspace_of(ls, workspace_uri)
    store = ls.manager.store
    redact = store.redactor.text if store is not None else Redactor.from_environment().text
    memory, warnings = auto_memory_for(ls.wiring.state_dir(), workspace,
                                       ls.options.safety_options(), redact)
    if memory is None:
        raise JsonRpcInvalidRequest("auto memory is off for this workspace (autoMemory: false)")
    return memory, warnings


async def _run(call: Any, *args: Any) -> Any:
    from lsp_agent.context.auto_memory import MemoryRefused

    try:
        return await asyncio.to_thread(call, *args)
    except MemoryRefused as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    except OSError as exc:
        raise JsonRpcInvalidRequest(f"the memory folder cannot be used: {exc}") from None


def register(server: AgentServer) -> None:
    @server.feature(MEMORY)
    async def show(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryParams, params)
        memory, warnings = project_memory(ls, args.workspace_uri)
        index = await _run(memory.raw_index)
        topics = await _run(memory.topics)
        return {"folder": str(memory.folder), "index": index,
                "topics": [t.wire() for t in topics], "warnings": warnings}

    @server.feature(MEMORY_READ)
    async def read(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryFileParams, params)
        memory, _ = project_memory(ls, args.workspace_uri)
        return {"name": args.name, "text": await _run(memory.read, args.name)}

    @server.feature(MEMORY_WRITE)
    async def write(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryWriteParams, params)
        memory, _ = project_memory(ls, args.workspace_uri)
        masked = await _run(memory.write_file, args.name, args.text)
        return {"written": True, "masked": masked}

    @server.feature(MEMORY_DELETE)
    async def delete(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryFileParams, params)
        memory, _ = project_memory(ls, args.workspace_uri)
        return {"deleted": await _run(memory.delete, args.name)}

    @server.feature(MEMORY_CLEAR)
    async def clear(ls: AgentServer, params: Any) -> dict[str, Any]:
        args = p.parse(p.MemoryParams, params)
        memory, _ = project_memory(ls, args.workspace_uri)
        return {"deleted": await _run(memory.clear)}
