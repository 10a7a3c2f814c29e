"""Compaction, cheapest first.

1. Oversized tool results never enter the history whole (``tools/results.py`` keeps a preview).
2. Past a first threshold, old tool results are cleared in one batch (the newest are kept): the
   model can run a tool again, and one batch means one cache miss, not one per round.
3. Past ``window - reserve``, the model summarises the history. The summary request reuses the
   cached prefix (same tools, system and messages, one instruction appended). The new history
   starts with the user's original request verbatim, the summary, what must not be lost
   (pending proposals, the todo list) and fresh copies of recently used files; the last
   exchange (a tool call and its results) is kept as it is.

The functions here are pure, apart from ``summarise`` which calls the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsp_agent.context.tokens import estimate_messages

Message = dict[str, Any]

CLEARED = "[Old tool result cleared to save context. Run the tool again if you need it.]"
CLEAR_MIN_TOKENS = 40  # results smaller than this are not worth a cache miss
SUMMARY_INSTRUCTION = """\
[compaction] Summarise this conversation so you can continue the work from the summary alone: \
the earlier messages will be replaced by it.
Keep, under these headings:
1. Requests: every request of the user, with its exact wording where it matters.
2. Plan and todos: the plan and each todo item with its status.
3. Decisions: what was decided and why.
4. Files: files read or changed, with what changed.
5. Errors: errors met and how they were resolved.
6. Proposals: edits proposed to the user and the outcome of their review.
7. Current state: what you were doing last and what comes next.
Answer with the summary only, in plain text. Do not call tools."""


@dataclass
class CompactionInput:
    """The history split for summarising: ``head`` is summarised, ``tail`` is kept as is."""

    head: list[Message]
    tail: list[Message]


def _clearable(messages: list[Message], keep_recent: int) -> list[tuple[int, int, int]]:
    """(message index, block index, tokens) of old tool results worth clearing."""
    positions = [(i, j) for i, m in enumerate(messages) if m.get("role") == "user"
                 and isinstance(m.get("content"), list)
                 for j, b in enumerate(m["content"]) if b.get("type") == "tool_result"]
    found = []
    for i, j in positions[: max(0, len(positions) - keep_recent)]:
        block = messages[i]["content"][j]
        tokens = estimate_messages([{"role": "user", "content": [block]}])
        if block.get("content") != CLEARED and tokens >= CLEAR_MIN_TOKENS:
            found.append((i, j, tokens))
    return found


def clearable_tokens(messages: list[Message], keep_recent: int) -> int:
    return sum(tokens for _, _, tokens in _clearable(messages, keep_recent))


def clear_old_tool_results(messages: list[Message], keep_recent: int) -> int:
    """Replace the content of all but the newest ``keep_recent`` tool results; returns how many
    were cleared. Blocks are replaced, never mutated: earlier request copies stay intact."""
    cleared = 0
    for i, j, _ in _clearable(messages, keep_recent):
        block = messages[i]["content"][j]
        content = list(messages[i]["content"])
        content[j] = {k: v for k, v in block.items() if k != "content"} | {"content": CLEARED}
        messages[i] = {**messages[i], "content": content}
        cleared += 1
    return cleared


def split_for_summary(messages: list[Message]) -> CompactionInput:
    """Keep the last exchange when it is a tool call and its results (they answer each other);
    keep a trailing user prompt; summarise the rest."""
    if not messages:
        return CompactionInput([], [])
    last = messages[-1]
    if last["role"] == "user":
        has_results = any(b.get("type") == "tool_result" for b in last["content"])
        keep = 2 if has_results and len(messages) >= 2 else 1
        return CompactionInput(messages[:-keep], messages[-keep:])
    return CompactionInput(list(messages), [])


def summary_request_messages(head: list[Message], instructions: str | None) -> list[Message]:
    text = SUMMARY_INSTRUCTION
    if instructions:
        text += f"\nThe user asks to focus the summary on: {instructions}"
    # A breakpoint right after the history: the cached prefix of the last request is read.
    block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
    if head and head[-1]["role"] == "user":
        return [*head[:-1], {**head[-1], "content": [*head[-1]["content"], block]}]
    return [*head, {"role": "user", "content": [block]}]


def shrink_for_summary(messages: list[Message], budget_tokens: int) -> list[Message]:
    """A copy that fits ``budget_tokens``: every tool result cleared, then the oldest messages
    dropped. Used when the history is too long even to be summarised."""
    out = [dict(m) for m in messages]
    clear_old_tool_results(out, keep_recent=0)
    while len(out) > 1 and estimate_messages(out) > budget_tokens:
        out.pop(0)
        while out and out[0]["role"] != "user":
            out.pop(0)
        if out:  # results whose tool calls were dropped become plain text
            out[0] = {**out[0], "content": [_orphan_safe(b) for b in out[0]["content"]]}
    return out


def _orphan_safe(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("type") != "tool_result":
        return block
    return {"type": "text", "text": "[result of an earlier tool call, omitted]"}


def compacted_history(
    *, original_request: str | None, current_request: str | None, summary: str,
    preserved: list[str], files: list[tuple[str, str]], tail: list[Message],
) -> list[Message]:
    """The new history: one user message carrying what must survive, then the kept tail."""
    blocks = [{"type": "text", "text": (
        "This session was compacted: the earlier messages were replaced by the summary "
        "below. Continue the work from it.")}]
    if original_request:
        blocks.append({"type": "text", "text": (
            f"The user's original request (verbatim):\n<request>\n{original_request}\n</request>")})
    if current_request and current_request != original_request:
        blocks.append({"type": "text", "text": (
            f"The user's current request (verbatim):\n<request>\n{current_request}\n</request>")})
    blocks.append({"type": "text", "text": f"Summary of the conversation so far:\n{summary}"})
    blocks += [{"type": "text", "text": text} for text in preserved if text]
    for path, text in files:
        blocks.append({"type": "text", "text": (
            f"Current content of {path} (read again after compaction):\n{text}")})
    messages: list[Message] = [{"role": "user", "content": blocks}]
    for message in tail:
        if message["role"] == "user" and messages[-1]["role"] == "user":
            messages[-1] = {"role": "user", "content": [*messages[-1]["content"],
                                                        *message["content"]]}
        else:
            messages.append(message)
    return messages
