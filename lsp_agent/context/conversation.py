"""The message history sent to the model, kept consistent at every step.

Invariants: roles alternate starting with the user, and every ``tool_use`` block of an
assistant message is answered by a ``tool_result`` in the following user message, even after a
cancellation or an error in the middle of a turn.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

Block = dict[str, Any]
Message = dict[str, Any]
# Who wrote user blocks: the user's prompt (a turn starts), or the agent itself (a request to
# continue, memory files that follow tool results).
UserOrigin = Literal["prompt", "agent"]


class ConversationObserver(Protocol):
    """Told of every change, in order and synchronously, so that a transcript written from
    these calls rebuilds exactly the history the model saw (see store/reader.py)."""

    def user_blocks(self, blocks: list[Block], origin: UserOrigin) -> None: ...

    def assistant_blocks(self, blocks: list[Block]) -> None: ...

    def tool_results(self, blocks: list[Block]) -> None: ...

    def replaced(self, messages: list[Message], boundary: Any) -> None:
        """The history was compacted; ``messages`` is all of it now, ``boundary`` the
        CompactBoundary event about to be emitted."""
        ...


class Conversation:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.observer: ConversationObserver | None = None

    def _tell(self, change: str, *args: Any) -> None:
        """The observer hears of a change; its failure never breaks the conversation."""
        if self.observer is None:
            return
        try:
            getattr(self.observer, change)(*args)
        except Exception:
            log.exception("the conversation's observer failed on %s", change)

    def compacted(self, boundary: Any) -> None:
        """Call after the messages were replaced or cleared by a compaction."""
        self._tell("replaced", self.messages, boundary)

    def add_user_blocks(self, blocks: list[Block], origin: UserOrigin = "agent") -> None:
        if not blocks:
            return
        self._tell("user_blocks", blocks, origin)
        if self.messages and self.messages[-1]["role"] == "user":
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": "user", "content": list(blocks)})

    def add_user_text(self, text: str) -> None:
        self.add_user_blocks([{"type": "text", "text": text}])

    def add_assistant(self, blocks: list[Block]) -> None:
        blocks = [b for b in blocks if not _is_empty_text(b)]
        if not blocks:
            return
        self._tell("assistant_blocks", blocks)
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": "assistant", "content": blocks})

    def add_tool_results(self, results: list[Block]) -> None:
        # Tool results must come first in the user message that answers the tool uses.
        self._tell("tool_results", results)
        if self.messages and self.messages[-1]["role"] == "user":
            self.messages[-1]["content"][:0] = results
        else:
            self.messages.append({"role": "user", "content": list(results)})

    def unanswered_tool_uses(self) -> list[Block]:
        if not self.messages or self.messages[-1]["role"] != "assistant":
            return []
        return [b for b in self.messages[-1]["content"] if b.get("type") == "tool_use"]

    def for_request(self) -> list[Message]:
        """A copy with a cache breakpoint on the newest block, so the next request reuses it,
        and one where the previous request put its own: the API looks only ~20 blocks back
        from a breakpoint, and one round may add more blocks than that."""
        messages = list(self.messages)  # the history is append-only: share all but the marked
        for index in (-3, -1) if len(messages) >= 3 else (-1,):
            if messages and messages[index]["content"]:
                marked = dict(messages[index])
                marked["content"] = [*marked["content"][:-1], {
                    **marked["content"][-1], "cache_control": {"type": "ephemeral"}}]
                messages[index] = marked
        return messages

    def __len__(self) -> int:
        return len(self.messages)


def _is_empty_text(block: Block) -> bool:
    return block.get("type") == "text" and not block.get("text")


def tool_result_block(tool_use_id: str, content: str, is_error: bool,
                      images: list[Block] | None = None) -> Block:
    """A tool result; with ``images``, its content is the text block then the image blocks."""
    body: Any = [{"type": "text", "text": content}, *images] if images else content
    block: Block = {"type": "tool_result", "tool_use_id": tool_use_id, "content": body}
    if is_error:
        block["is_error"] = True
    return block
