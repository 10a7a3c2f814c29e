"""Oversized tool results: keep a preview in the conversation, the full text on disk.

A result larger than the tool's ``max_result_chars`` would crowd the context window. The
full text is saved under ``ctx.results_dir`` so the model can page through it with Read or
search it with Grep, and the conversation gets the head and tail with a note saying where.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from pathlib import Path

from lsp_agent.permissions.safe_write import WriteScope, write_bytes_checked
from lsp_agent.tools.base import Tool, ToolContext, ToolOutput

# Shares of the size cap used for the preview: the head carries most context, the tail
# keeps the end (where commands usually print their errors and summaries).
HEAD_SHARE = 0.5
TAIL_SHARE = 0.125


async def finalize_output(tool: Tool, output: str | ToolOutput, ctx: ToolContext) -> ToolOutput:
    """Normalise a tool's return value and divert oversized content to a file."""
    result = output if isinstance(output, ToolOutput) else ToolOutput(content=output)
    limit = tool.max_result_chars
    if len(result.content) <= limit:
        return result
    try:
        saved = await asyncio.to_thread(_save_full_output, result.content, ctx)
    except OSError as exc:
        note = f"Output was {len(result.content):,} chars and could not be saved ({exc})."
        return replace(result, content=_preview(result.content, limit, note))
    note = (
        f"Output was {len(result.content):,} chars; full output saved to {saved}. "
        "Use Read with offset/limit or Grep on that file."
    )
    return replace(result, content=_preview(result.content, limit, note))


def _save_full_output(content: str, ctx: ToolContext) -> Path:
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    stem = _safe_file_stem(ctx.tool_use_id) or uuid.uuid4().hex
    path = ctx.results_dir / f"{stem}.txt"
    data = content.encode("utf-8", "surrogateescape")  # kept bytes of a non-UTF-8 file
    # A link planted in the results folder must not redirect the write (WriteRefused is an
    # OSError, reported like any other failure to save).
    write_bytes_checked(path, data, WriteScope.inside(ctx.results_dir))
    return path


def _safe_file_stem(tool_use_id: str) -> str:
    """Tool-use ids come from the API; keep them from forming paths or odd file names."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", tool_use_id).strip(".")


def _preview(content: str, limit: int, note: str) -> str:
    head = _cut_at_line_end(content[: int(limit * HEAD_SHARE)])
    tail_len = int(limit * TAIL_SHARE)
    tail = _cut_at_line_start(content[-tail_len:]) if tail_len else ""
    omitted = len(content) - len(head) - len(tail)
    return f"{head}\n[... {omitted:,} chars omitted ...]\n{tail}\n\n{note}"


def _cut_at_line_end(text: str) -> str:
    """Drop a trailing partial line, unless that would drop most of the text."""
    cut = text.rfind("\n")
    return text[:cut] if cut > len(text) // 2 else text


def _cut_at_line_start(text: str) -> str:
    cut = text.find("\n")
    return text[cut + 1 :] if 0 <= cut < len(text) // 2 else text
