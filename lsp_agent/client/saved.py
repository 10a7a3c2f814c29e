"""``lsp-agent sessions`` and ``lsp-agent export``: saved sessions read straight from the state
dir (no server, no model, no key needed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from lsp_agent.client.errors import CliError, ExitCode
from lsp_agent.store import SessionNotFound, Store, TranscriptVersionError
from lsp_agent.store.layout import InvalidSessionId

TOOL_RESULT_LINES = 20  # a tool result in a Markdown export: its first lines


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the server keeps sessions (the same rule as the server's)."""
    raw = (os.environ if env is None else env).get("LSP_AGENT_STATE_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "lsp-agent"


def cmd_sessions(args: argparse.Namespace) -> int:
    page = asyncio.run(Store(state_dir()).list_sessions(Path(args.workspace),
                                                        limit=args.limit))
    out = sys.stdout
    if args.json:
        for item in page.items:
            out.write(json.dumps({
                "sessionId": item.session_id, "title": item.title, "createdAt": item.created_at,
                "updatedAt": item.updated_at, "turns": item.turns, "model": item.model,
                "costUsd": item.cost_usd, "gitBranch": item.git_branch, "live": item.live,
                **({"error": item.error} if item.error else {})}) + "\n")
        return int(ExitCode.OK)
    if not page.items:
        print(f"no saved sessions for {args.workspace}", file=sys.stderr)
        return int(ExitCode.OK)
    for item in page.items:
        when = item.updated_at[:16].replace("T", " ")
        live = " (open)" if item.live else ""
        out.write(f"{item.session_id}  {when}  {item.turns:>3} turns  ${item.cost_usd:.4f}  "
                  f"{item.title}{live}\n")
    if page.next_offset is not None:
        print(f"... {page.total - len(page.items)} older (--limit)", file=sys.stderr)
    return int(ExitCode.OK)


def cmd_export(args: argparse.Namespace) -> int:
    store = Store(state_dir())
    workspace = Path(args.workspace)
    try:
        reader = store.load_blocking(workspace, args.session_id)
    except (SessionNotFound, InvalidSessionId) as exc:
        raise CliError(f"{exc} (list them with: lsp-agent sessions)") from None
    except TranscriptVersionError as exc:
        raise CliError(str(exc), ExitCode.SETUP) from None
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "jsonl":  # the transcript as saved (secrets were masked on write)
            out.write(reader.path.read_text(encoding="utf-8", errors="replace"))
        else:
            out.write(markdown(reader.chain, reader.title() or args.session_id))
    finally:
        if args.output:
            out.close()
    return int(ExitCode.OK)


def markdown(chain: list[dict[str, Any]], title: str) -> str:
    """The current branch of a session as Markdown: prompts, answers, tool calls, results."""
    parts = [f"# {title}\n"]
    for entry in chain:
        render = _MARKDOWN.get(entry.get("type", ""))
        if render is not None and (text := render(entry)):
            parts.append(text)
    return "\n".join(parts) + "\n"


def _user(entry: dict[str, Any]) -> str | None:
    if entry.get("origin") != "user":
        return None
    return f"## User\n\n{entry.get('prompt', '')}\n"


def _assistant(entry: dict[str, Any]) -> str:
    out = []
    for block in entry.get("message", {}).get("content", []):
        if block.get("type") == "text" and block.get("text"):
            out.append(block["text"])
        elif block.get("type") == "tool_use":
            args = json.dumps(block.get("input", {}), ensure_ascii=False)
            out.append(f"**Tool call** `{block.get('name')}` `{args[:300]}`")
    return "## Assistant\n\n" + "\n\n".join(out) + "\n" if out else ""


def _results(entry: dict[str, Any]) -> str:
    out = []
    for block in entry.get("message", {}).get("content", []):
        content = block.get("content", "")
        if isinstance(content, list):
            content = "\n".join(c.get("text", "") for c in content if isinstance(c, dict))
        lines = str(content).splitlines()
        shown = "\n".join(lines[:TOOL_RESULT_LINES])
        more = f"\n... ({len(lines) - TOOL_RESULT_LINES} more lines)" \
            if len(lines) > TOOL_RESULT_LINES else ""
        error = " (error)" if block.get("is_error") else ""
        out.append(f"**Result{error}**\n\n```\n{shown}{more}\n```")
    return "\n\n".join(out) + "\n" if out else ""


def _decision(entry: dict[str, Any]) -> str:
    return f"*Proposal {entry.get('proposalId')}: {entry.get('status')}*\n"


def _compaction(entry: dict[str, Any]) -> str:
    return (f"*The conversation was compacted ({entry.get('strategy')}, "
            f"{entry.get('tokensBefore')} -> {entry.get('tokensAfter')} tokens)*\n")


_MARKDOWN = {"user": _user, "assistant": _assistant, "tool_result": _results,
             "proposal_decision": _decision, "compact_boundary": _compaction}
