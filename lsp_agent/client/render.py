"""Turns agent events into readable terminal text (``--json`` prints them as JSON lines)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from lsp_agent.types import events as ev


def _summary(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Renderer:
    def __init__(self, out: TextIO = sys.stdout, color: bool | None = None, as_json: bool = False):
        self.out = out
        self.color = out.isatty() if color is None else color
        self.as_json = as_json
        self._mid_line = False

    def _c(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def line(self, text: str = "") -> None:
        if self._mid_line:
            self.out.write("\n")
            self._mid_line = False
        self.out.write(text + "\n")
        self.out.flush()

    def diff(self, text: str) -> None:
        for raw in text.splitlines():
            code = {"+": "32", "-": "31", "@": "36"}.get(raw[:1], "")
            if raw.startswith(("+++", "---")):
                code = "1"
            self.line(self._c(code, raw) if code else raw)

    def __call__(self, event: ev.AgentEvent) -> None:
        if self.as_json:
            self.out.write(json.dumps(event.wire(), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        self.render(event)

    def render(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.TextDelta):
            self.out.write(event.text)
            self.out.flush()
            self._mid_line = not event.text.endswith("\n")
        elif isinstance(event, ev.ToolInputComplete):
            self.line(self._c("35", f"● {event.name}") + f" {_summary(event.input)}")
        elif isinstance(event, ev.ToolResult):
            first = event.content.strip().splitlines()
            shown = _summary(" | ".join(first[:3]), 110) if first else "(no output)"
            mark = self._c("31", "  ⎿ error: ") if event.is_error else "  ⎿ "
            self.line(mark + shown)
        elif isinstance(event, ev.PermissionDecided):
            verdict = self._c("32" if event.decision == "allow" else "31", event.decision)
            self.line(f"  permission for {event.tool}: {verdict} ({event.source})")
        elif isinstance(event, ev.ProposalCreated):
            self.line(self._c("1", f"Proposed change {event.proposal_id}:"))
            for f in event.files:
                self.diff(f.diff)
        elif isinstance(event, ev.ProposalResolved):
            self.line(self._c("1", f"Review of {event.proposal_id}: {event.status}")
                      + (f" (applied {', '.join(event.accepted)})" if event.accepted else ""))
        elif isinstance(event, ev.Retrying):
            self.line(self._c("33", f"(model error, retry {event.attempt} in "
                                    f"{event.delay_seconds:.1f}s: {event.reason})"))
        elif isinstance(event, ev.ModelFallback):
            self.line(self._c("33", f"(switching to {event.to_model}: {event.reason})"))
        elif isinstance(event, ev.ErrorEvent):
            label = "warning" if event.recoverable else "error"
            self.line(self._c("33" if event.recoverable else "31",
                              f"{label} ({event.kind}): {event.message}"))
        elif isinstance(event, ev.CostReport):
            self.line(self._c("2", _cost_line(event)))
        elif isinstance(event, ev.CompactBoundary):
            what = ("cleared old tool results" if event.strategy == "clear_tool_results"
                    else "summarised the conversation")
            self.line(self._c("33", f"(context: {what}, {event.tokens_before} -> "
                                    f"{event.tokens_after} tokens)"))
        elif isinstance(event, ev.TodosUpdated):
            self.line(self._c("1", "Todos:"))
            for todo in event.todos:
                text = (todo.active_form or todo.content) if todo.status == "in_progress" \
                    else todo.content
                line = f"  {_TODO_MARKS[todo.status]} {_summary(text, 100)}"
                self.line(self._c("2", line) if todo.status == "completed" else line)
        elif isinstance(event, ev.TurnStarted) and event.trigger == "stop_hook":
            reason = event.prompt.split(":\n", 1)[-1].replace("</stop-hook-feedback>", "")
            self.line(self._c("33", "(a Stop hook continues the turn: ")
                      + _summary(reason, 200) + self._c("33", ")"))
        elif isinstance(event, ev.ContextPressure) and event.level != "ok":
            self.line(self._c("33", f"(context {event.ratio:.0%} full: {event.used_tokens} of "
                                    f"{event.window_tokens} tokens)"))
        elif isinstance(event, ev.TurnEnded):
            u = event.usage
            self.line(self._c("2", f"[{event.stop_reason}; {event.rounds} model calls; tokens in "
                                   f"{u.input_tokens}, out {u.output_tokens}, cache read "
                                   f"{u.cache_read_input_tokens}, cache write "
                                   f"{u.cache_creation_input_tokens}]"))


_TODO_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}


def _cost_line(event: ev.CostReport) -> str:
    def usd(cost: ev.SessionCost) -> str:
        if cost.by_model and not any(m.priced for m in cost.by_model):
            return "no price known"
        saved = f", cache saved ${cost.cache_savings_usd:.4f}" if cost.cache_savings_usd else ""
        return f"${cost.usd:.4f}{saved}"

    models = ", ".join(m.model for m in event.turn.by_model) or "no model calls"
    return f"[cost: turn {usd(event.turn)} ({models}); session {usd(event.session)}]"
