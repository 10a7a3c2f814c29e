"""Entry builders shared by the store tests."""

from __future__ import annotations

from lsp_agent.store import entries as en


def text_prompt(text: str) -> en.Entry:
    return en.user_prompt(text, [{"type": "text", "text": text}])


def reply(text: str, model: str = "claude-sonnet-4-5") -> en.Entry:
    return en.assistant([{"type": "text", "text": text}], model, "end_turn")


def tool_call(tool_id: str, name: str = "Read") -> en.Entry:
    return en.assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": {}}],
                        "claude-sonnet-4-5", "tool_use")


def tool_result(tool_id: str, content: str) -> en.Entry:
    return en.tool_results([{"type": "tool_result", "tool_use_id": tool_id,
                             "content": content}])
