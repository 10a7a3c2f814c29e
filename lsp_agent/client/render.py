"""Turns agent events into readable terminal text (``--json`` prints them as JSON lines)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from lsp_agent.types import events as ev


def _summary(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_permission(params: dict[str, Any]) -> str:
    """A permission request as one readable line: the tool and what it would act on."""
    tool = str(params.get("tool") or "a tool")
    args = params.get("input")
    subject = None
    if isinstance(args, dict):
        subject = next((args[key] for key in _SUBJECT_KEYS if isinstance(args.get(key), str)),
                       None)
    shown = _summary(subject if subject is not None else (args or ""), 160)
    return f"{tool} wants to {_VERBS.get(tool, 'act on')}: {shown}" if shown else tool


_SUBJECT_KEYS = ("command", "path", "file_path", "notebook_path", "pattern", "url")
_VERBS = {"Bash": "run", "Read": "read", "Edit": "edit", "Write": "write", "Grep": "search",
          "Glob": "list"}


class Renderer:
    """Events as terminal text, or as JSON lines with ``as_json``. ``simulated``: the prices
    shown are made up (the scripted model's estimated tokens at a real model's prices)."""

    def __init__(self, out: TextIO = sys.stdout, color: bool | None = None, as_json: bool = False,
                 simulated: bool = False):
        self.out = out
        self.color = out.isatty() if color is None else color
        self.as_json = as_json
        self.simulated = simulated
        self._mid_line = False
        self._calls = self._answered = 0  # model requests of the current turn, and answers

    def end_line(self) -> None:
        """Finish a streamed line, so that what is written elsewhere starts on its own."""
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
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
        self._count(event)
        if self.as_json:
            self.out.write(json.dumps(event.wire(), ensure_ascii=False) + "\n")
            self.out.flush()
            return
        self.render(event)

    def _count(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.TurnStarted):
            self._calls = self._answered = 0
        elif isinstance(event, ev.ModelRequest):
            self._calls += 1
        elif isinstance(event, ev.UsageReport):
            self._answered += 1

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
        elif isinstance(event, ev.AutoDecision):
            colour = {"allow": "32", "deny": "31"}.get(event.decision, "33")
            self.line(f"  auto mode, {event.tool}: {self._c(colour, event.decision)} "
                      f"({event.reason}{', cached' if event.cached else ''})")
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
            self.line(self._c("2", _cost_line(event, self.simulated)))
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
            self.line(self._c("2", self._turn_line(event)))

    def _turn_line(self, event: ev.TurnEnded) -> str:
        # Counted from the events when this renderer saw the turn start, else its rounds.
        calls = self._calls or event.rounds
        failed = max(0, calls - self._answered) if self._calls else 0
        # A call cut short by a cancel did not fail: the user stopped it.
        how = "interrupted" if event.stop_reason == "cancelled" else "failed"
        parts = [event.stop_reason, _plural(calls, "model call") + _unanswered(failed, calls, how)]
        if failed < calls:
            parts.append(_tokens(event.usage))
        return f"[{'; '.join(parts)}]"


def _unanswered(count: int, calls: int, how: str) -> str:
    if not count:
        return ""
    if count == calls:
        return f", {how}" if calls == 1 else f", all {how}"
    return f", {count} {how}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _tokens(u: ev.Usage) -> str:
    """All input tokens (the API counts only the uncached rest as ``input_tokens``), output."""
    total_in = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens
    cached = []
    if u.cache_read_input_tokens:
        cached.append(f"{u.cache_read_input_tokens} read from cache")
    if u.cache_creation_input_tokens:
        cached.append(f"{u.cache_creation_input_tokens} written to cache")
    detail = f" ({', '.join(cached)})" if cached else ""
    return f"tokens in {total_in}{detail}, out {u.output_tokens}"


_TODO_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}


def _cost_line(event: ev.CostReport, simulated: bool = False) -> str:
    def usd(cost: ev.SessionCost) -> str:
        if cost.by_model and not any(m.priced for m in cost.by_model):
            return "no price known"
        text = f"${cost.usd:.4f}"
        # Net of the cache writes' premium: negative while the prefixes written were not read.
        if cost.cache_savings_usd > 0:
            text += f", cache saved ${cost.cache_savings_usd:.4f}"
        elif cost.cache_savings_usd < 0:
            text += f", cache writes cost ${-cost.cache_savings_usd:.4f} extra so far"
        return text

    models = ", ".join(m.model for m in event.turn.by_model) or "no model answered"
    label = ("cost, simulated: the scripted model's estimated tokens at real prices"
             if simulated else "cost")
    return f"[{label}: turn {usd(event.turn)} ({models}); session {usd(event.session)}]"
