"""The scripted model's state machine: which turn answers a request, with what, and the log.

Thread-safe: the HTTP server runs on its own thread while tests read the log and load new
scenarios from theirs. Nothing here does I/O; the HTTP layer executes the returned plans.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from lsp_agent.scripted.scenario import (
    HttpErrorFault,
    RequestView,
    Scenario,
    StallFault,
    StreamErrorFault,
    TextBlock,
    ToolUseBlock,
    Turn,
    default_stop_reason,
)
from lsp_agent.scripted.usage import PromptCache, canonical_json, estimate_tokens
from lsp_agent.scripted.wire import ScriptedMessage

EXHAUSTED_TEXT = "(scenario exhausted)"
MISMATCH_PREFIX = "SCENARIO MISMATCH:"

Block = TextBlock | ToolUseBlock


@dataclass
class Plan:
    """How to answer one request: an HTTP error, or a message (maybe cut by a stream error)."""

    record: dict[str, Any]
    generation: int
    message: ScriptedMessage | None = None
    http_error: HttpErrorFault | None = None
    stream_error: StreamErrorFault | None = None
    stall_ms: int = 0
    delay_ms: int = 0

    @property
    def turn(self) -> int:
        return self.record["turn"]


class ScriptedEngine:
    def __init__(self, scenario: Scenario) -> None:
        self._lock = threading.Lock()
        self._id_prefix = secrets.token_hex(4)
        self._ids = 0
        self._scenario = scenario
        self._generation = 0
        self._reset_state()

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    def load(self, scenario: Scenario) -> None:
        with self._lock:
            self._scenario = scenario
            self._reset_state()

    def reset(self) -> None:
        with self._lock:
            self._reset_state()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self._records]

    def _reset_state(self) -> None:
        self._generation += 1
        self._records: list[dict[str, Any]] = []
        self._attempts: dict[int, int] = {}
        self._position = 0  # next turn in "sequential" mode
        self._cache = PromptCache()

    def plan(self, body: dict[str, Any]) -> Plan:
        with self._lock:
            turn_index = self._select_turn(body)
            attempt = self._attempts.get(turn_index, 0)
            self._attempts[turn_index] = attempt + 1
            record: dict[str, Any] = {
                "seq": len(self._records),
                "turn": turn_index,
                "attempt": attempt,
                "outcome": "ok",
                "alternative": None,
                "fault": None,
                "mismatch": None,
                "stream": bool(body.get("stream")),
                "body": body,
            }
            self._records.append(record)
            plan = Plan(record=record, generation=self._generation)
            if turn_index >= len(self._scenario.turns):
                record["outcome"] = "exhausted"
                return self._with_message(
                    plan, body, None, [TextBlock(type="text", text=EXHAUSTED_TEXT)], "end_turn"
                )
            return self._plan_turn(plan, body, self._scenario.turns[turn_index], attempt)

    def complete(self, plan: Plan) -> None:
        """Called once a normal response has been delivered in full."""
        with self._lock:
            if plan.generation != self._generation or plan.record["outcome"] != "ok":
                return
            # Guarded so two concurrent requests for the same turn advance only once.
            if self._scenario.sequencing == "sequential" and self._position == plan.turn:
                self._position += 1

    def _select_turn(self, body: dict[str, Any]) -> int:
        if self._scenario.sequencing == "sequential":
            return self._position
        messages = body.get("messages") or []
        return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")

    def _plan_turn(self, plan: Plan, body: dict[str, Any], turn: Turn, attempt: int) -> Plan:
        record = plan.record
        fault = turn.fault_for_attempt(attempt)
        if fault is not None:
            record["fault"] = fault.model_dump(exclude_none=True)
        if isinstance(fault, HttpErrorFault):
            record["outcome"] = "http_error"
            plan.http_error = fault
            return plan
        if isinstance(fault, StreamErrorFault):
            record["outcome"] = "stream_error"
            plan.stream_error = fault
        if isinstance(fault, StallFault):
            plan.stall_ms = fault.stall_ms
        plan.delay_ms = turn.delay_ms if turn.delay_ms is not None else self._scenario.delay_ms

        request = RequestView.of(body)
        problems = turn.expect.failures(request) if turn.expect else []
        if problems:
            where = f"scenario {self._scenario.name!r} turn {record['turn']}"
            explanation = f"{where}: " + "; ".join(problems)
            record["mismatch"] = explanation
            if record["outcome"] == "ok":
                record["outcome"] = "mismatch"
            text = f"{MISMATCH_PREFIX} {explanation}"
            return self._with_message(
                plan, body, turn, [TextBlock(type="text", text=text)], "end_turn"
            )

        content, stop_reason = turn.content, turn.stop_reason
        for number, alternative in enumerate(turn.when):
            if alternative.holds(request):
                record["alternative"] = number
                content, stop_reason = alternative.content, alternative.stop_reason
                break
        return self._with_message(
            plan, body, turn, content, stop_reason or default_stop_reason(content)
        )

    def _with_message(
        self,
        plan: Plan,
        body: dict[str, Any],
        turn: Turn | None,
        content: list[Block],
        stop_reason: str,
    ) -> Plan:
        wire_content = [self._wire_block(block) for block in content]
        chunk_chars = self._scenario.chunk_chars
        if turn is not None and turn.chunk_chars is not None:
            chunk_chars = turn.chunk_chars
        plan.message = ScriptedMessage(
            id=f"msg_{self._next_id()}",
            model=str(body.get("model", "")),
            content=wire_content,
            stop_reason=stop_reason,
            stop_sequence=turn.stop_sequence if turn is not None else None,
            usage=self._usage(body, turn, wire_content),
            chunk_chars=chunk_chars,
        )
        return plan

    def _usage(
        self, body: dict[str, Any], turn: Turn | None, content: list[dict[str, Any]]
    ) -> dict[str, int]:
        cache = self._cache.account(body)
        output = max(1, sum(estimate_tokens(canonical_json(block)) for block in content))
        usage = {
            "input_tokens": cache.input_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": cache.cache_creation_input_tokens,
            "cache_read_input_tokens": cache.cache_read_input_tokens,
        }
        if turn is not None and turn.usage is not None:
            usage.update(turn.usage.model_dump(exclude_none=True))
        return usage

    def _wire_block(self, block: Block) -> dict[str, Any]:
        if isinstance(block, ToolUseBlock):
            tool_id = block.id or f"toolu_{self._next_id()}"
            return {"type": "tool_use", "id": tool_id, "name": block.name, "input": block.input}
        return {"type": "text", "text": block.text}

    def _next_id(self) -> str:
        self._ids += 1
        return f"01{self._id_prefix}{self._ids:012d}"
