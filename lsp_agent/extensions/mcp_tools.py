"""MCP tools as our tools: ``mcp__<server>__<tool>``, judged by the permission gate like any
other tool that reaches outside (access ``external``: asked by default; rules ``mcp__server``,
``mcp__server__*`` and ``mcp__server__tool`` allow them). ``readOnlyHint`` lets calls run
alongside other read-only calls; it does not skip the permission check.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolOutput
from lsp_agent.types.permissions import Subject

if TYPE_CHECKING:
    from lsp_agent.extensions.mcp_client import McpServer

PREFIX = "mcp__"
# A result is cut here before anything else looks at it (a 50 MB answer must not be copied
# around); the usual cap then keeps a preview in the conversation and the rest on disk.
MAX_RAW_RESULT_CHARS = 2_000_000
MAX_DESCRIPTION_CHARS = 2_000
# Images go to the model as image blocks, as the Messages API takes them: these types, at
# most this size each (the API's limit) and this many per result; others are described.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 8


def default_call_timeout() -> float:
    """Seconds a call may take: ``MCP_TOOL_TIMEOUT`` (milliseconds, Claude Code's name)."""
    try:
        return max(1.0, int(os.environ["MCP_TOOL_TIMEOUT"]) / 1000)
    except (KeyError, ValueError):
        return 300.0


class McpArgs(BaseModel):
    """Whatever the server's schema asks for: the server validates its own input."""

    model_config = ConfigDict(extra="allow")


def tool_name(server: str, tool: str) -> str:
    return f"{PREFIX}{server}__{tool}"


class McpTool(Tool):
    name = "mcp__"  # set per instance
    description = ""
    input_model = McpArgs
    access = "external"
    max_result_chars = 40_000
    search_group: str | None = None  # ToolSearch lists many tools of one server as a group

    def __init__(self, server: McpServer, remote: Any, timeout: float | None = None):
        self.server = server
        self.remote_name: str = remote.name
        self.name = tool_name(server.spec.name, remote.name)  # type: ignore[misc]
        text = (remote.description or remote.title or "").strip()
        self.description = (text[:MAX_DESCRIPTION_CHARS] or  # type: ignore[misc]
                            f"Tool {remote.name} of the MCP server {server.spec.name}.")
        # Keys sorted: a server that lists the same schema in another order must not change
        # the request's bytes (the prompt cache starts with the tools).
        schema = json.loads(json.dumps(remote.input_schema or {"type": "object"},
                                       sort_keys=True))
        schema.pop("title", None)
        schema.setdefault("type", "object")
        self._schema = {"name": self.name, "description": self.description,
                        "input_schema": schema}
        hints = remote.annotations
        self.read_only_hint = bool(hints is not None and hints.read_only_hint)
        self.time_limit = timeout or default_call_timeout()  # type: ignore[misc]
        self.search_group = f"{PREFIX}{server.spec.name}"

    def api_schema(self) -> dict[str, Any]:
        return self._schema

    def subject(self, args: BaseModel) -> Subject:
        return Subject("external")  # rules match the tool's name; the prompt shows the input

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        return self.read_only_hint

    async def call(self, args: McpArgs, ctx: ToolContext) -> ToolOutput:
        arguments = args.model_dump()
        result = await self.server.call_tool(self.remote_name, arguments,
                                             self.time_limit or default_call_timeout())
        images = result_images(result)
        return ToolOutput(content=result_text(result, len(images)),
                          is_error=bool(result.is_error), images=images)


def result_images(result: Any) -> list[dict[str, Any]]:
    """The result's images the model can see, as Messages-API image blocks (base64)."""
    images: list[dict[str, Any]] = []
    for block in result.content or []:
        if _sendable_image(block) and len(images) < MAX_IMAGES:
            images.append({"type": "image", "source": {
                "type": "base64", "media_type": block.mime_type, "data": block.data}})
    return images


def _sendable_image(block: Any) -> bool:
    return (getattr(block, "type", None) == "image" and block.mime_type in IMAGE_TYPES
            and isinstance(block.data, str) and len(block.data) * 3 // 4 <= MAX_IMAGE_BYTES)


def result_text(result: Any, attached: int = 0) -> str:
    """An MCP tool result as text for the model: text blocks as they are, the first
    ``attached`` sendable images named (they follow as image blocks), other images and audio
    described (their bytes are not sent), embedded resources with their URI, structured
    content as JSON when no text block carries it."""
    parts: list[str] = []
    size = 0
    for block in result.content or []:
        text = _block_text(block)
        if attached and _sendable_image(block):
            attached -= 1
            text = text.replace(": not shown]", ": attached below]")
        parts.append(text)
        size += len(text)
        if size > MAX_RAW_RESULT_CHARS:
            break
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=1))
    text = "\n".join(parts) if parts else "(the tool returned no content)"
    if len(text) > MAX_RAW_RESULT_CHARS:
        text = text[:MAX_RAW_RESULT_CHARS] + (
            f"\n[... cut at {MAX_RAW_RESULT_CHARS:,} characters: the MCP server answered more]")
    return text


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(block.data or "") * 3 // 4
        return f"[{kind} {block.mime_type}, {size:,} bytes: not shown]"
    if kind == "resource":
        res = block.resource
        if getattr(res, "text", None) is not None:
            return f"[resource {res.uri}]\n{res.text}"
        return f"[resource {res.uri}: binary {getattr(res, 'mime_type', '') or ''}]"
    if kind == "resource_link":
        return f"[resource link {block.uri}{': ' + block.name if block.name else ''}]"
    return f"[{kind} content]"


def check_arguments(arguments: dict[str, Any]) -> None:
    if not isinstance(arguments, dict):
        raise ToolError("MCP tool arguments must be an object")
