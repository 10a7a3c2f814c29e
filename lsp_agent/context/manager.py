"""One session's context: how full the window is, when to compact, what the session costs.

The agent loop calls it at fixed points of a turn (``begin_turn``, ``fit`` before each model
request, ``record_usage`` after each response, ``after_tools`` after each tool round,
``turn_cost`` at the end) and the session calls ``compact`` and ``breakdown`` on request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.context import compaction as cp
from lsp_agent.context.conversation import Conversation
from lsp_agent.context.cost import CostLedger, Price
from lsp_agent.context.layers import MEMORY_HEADER, nested_memory_block
from lsp_agent.context.memory import MemoryLoader
from lsp_agent.context.tokens import Calibration, TokenCounter, estimate_messages, estimate_value
from lsp_agent.model.service import ModelCallFailed, ModelRequest, ModelService
from lsp_agent.types import events as ev
from lsp_agent.workspace.documents import FileReadError, read_text_file
from lsp_agent.workspace.encoding import printable

log = logging.getLogger(__name__)

Emit = Callable[[ev.AgentEvent], object]
FILE_TOOLS = ("Read", "Edit", "Write")
MAX_REQUEST_CHARS = 10_000  # of the user's request kept verbatim through compactions


@dataclass
class ContextPolicy:
    window_tokens: int = 200_000
    clear_results_ratio: float = 0.5  # clear old tool results above this share of the window
    keep_recent_results: int = 6
    # Clear only when it frees this share of the window: each clearing costs one cache miss.
    clear_min_ratio: float = 0.1
    reserve_tokens: int = 24_000  # summarise above window - reserve (room to answer and work)
    warning_ratio: float = 0.7
    max_failures: int = 3  # consecutive failed summaries before auto-compaction stops trying
    summary_max_tokens: int = 4096
    reread_files: int = 5
    reread_chars: int = 8_000

    @classmethod
    def from_env(cls) -> ContextPolicy:
        raw = os.environ.get("LSP_AGENT_CONTEXT_WINDOW")
        policy = cls()
        if raw:
            try:
                policy.window_tokens = max(4_000, int(raw))
                policy.reserve_tokens = min(policy.reserve_tokens, policy.window_tokens // 4)
            except ValueError:
                log.warning("ignoring LSP_AGENT_CONTEXT_WINDOW=%r: not an integer", raw)
        return policy

    @property
    def clear_at(self) -> int:
        return int(self.window_tokens * self.clear_results_ratio)

    @property
    def summarise_at(self) -> int:
        return self.window_tokens - self.reserve_tokens


@dataclass
class Window:
    """What the next request holds: the conversation, and what every request carries with it
    (the model, the system layers and the tools). The context manager measures, trims and
    summarises it; it never holds the agent."""

    conversation: Conversation
    model: str
    system: Callable[[], list[dict[str, Any]]]
    tools: Callable[[], list[dict[str, Any]]]

    def request(self, messages: list[dict[str, Any]], max_tokens: int) -> ModelRequest:
        return ModelRequest(model=self.model, system=self.system(), tools=self.tools(),
                            messages=messages, max_tokens=max_tokens)


# (trigger, instructions) -> (instructions to add, reason when refused)
BeforeCompact = Callable[[str, str | None], Awaitable[tuple[str | None, str | None]]]


class ContextManager:
    def __init__(
        self,
        policy: ContextPolicy | None = None,
        *,
        service: ModelService | None = None,
        prices: dict[str, Price] | None = None,
        workspace: Path | None = None,
        memory: MemoryLoader | None = None,
        reader: Callable[[Path], str] | None = None,
        preserved: Callable[[], list[str]] | None = None,
        before_compact: BeforeCompact | None = None,
    ):
        self.policy = policy or ContextPolicy()
        self.service = service  # None: summaries fail, token counts are estimates
        self.session_cost = CostLedger(prices)
        self.turn_ledger = CostLedger(prices)
        self._prices = prices
        self.calibration = Calibration()
        self.counter = TokenCounter()
        self.workspace = workspace
        self.memory = memory
        self._reader = reader or _read_disk
        self._preserved = preserved or (lambda: [])
        self._before_compact = before_compact
        self.level: str = "ok"
        self.failures = 0
        self.compactions = 0
        self.original_request: str | None = None
        self.current_request: str | None = None
        self.recent_files: list[Path] = []
        self._cache: list[tuple[int, int]] = []  # (id(message), tokens) of settled messages
        self._fixed: dict[int, tuple[Any, int]] = {}  # id -> (tool or system block, tokens)

    # -- turn life cycle -----------------------------------------------------------------------

    def begin_turn(self, prompt_blocks: list[dict[str, Any]]) -> None:
        texts = [b.get("text", "") for b in prompt_blocks if b.get("type") == "text"]
        request = "\n".join(texts).strip()[:MAX_REQUEST_CHARS] or None
        if self.original_request is None:
            self.original_request = request
        self.current_request = request
        self.turn_ledger = CostLedger(self._prices)

    def turn_cost(self) -> ev.CostReport:
        return ev.CostReport(turn=self.turn_ledger.summary(), session=self.session_cost.summary())

    def record_usage(self, window: Window, usage: ev.Usage, emit: Emit) -> None:
        """After a response: account its cost, calibrate the estimate against the reported
        prompt size (the conversation still holds exactly what was sent), report pressure."""
        self.session_cost.add(window.model, usage)
        self.turn_ledger.add(window.model, usage)
        reported = (usage.input_tokens + usage.cache_read_input_tokens
                    + usage.cache_creation_input_tokens)
        self.calibration.observe(reported, self._raw_estimate(window))
        self._report_pressure(reported + usage.output_tokens, emit)

    def after_tools(self, assistant_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Note the files the tool calls touched; return nested memory files to add to the
        conversation (after the tool results)."""
        found = []
        for block in assistant_blocks:
            if block.get("type") != "tool_use":
                continue
            raw = (block.get("input") or {}).get("path")
            if not isinstance(raw, str) or not raw or self.workspace is None:
                continue
            path = _resolve(self.workspace, raw)
            if block.get("name") in FILE_TOOLS:
                self._note_file(path)
            if self.memory is not None:
                found += self.memory.for_path(path)
        if not found or self.workspace is None:
            return []
        return [nested_memory_block(found, self.workspace)]

    # -- keeping the request inside the window -------------------------------------------------

    def estimate(self, window: Window) -> int:
        """The next request's size in tokens, calibrated against the API's reports."""
        return self.calibration.apply(self._raw_estimate(window))

    async def fit(self, window: Window, emit: Emit) -> None:
        """Before a model request: clear old tool results, then summarise, while too large."""
        before = self.estimate(window)
        messages, keep = window.conversation.messages, self.policy.keep_recent_results
        worth = self.policy.window_tokens * self.policy.clear_min_ratio
        if before > self.policy.clear_at and cp.clearable_tokens(messages, keep) >= worth:
            cleared = cp.clear_old_tool_results(messages, keep)
            if cleared:
                self._cache.clear()
                after = self.estimate(window)
                cleared_boundary = ev.CompactBoundary(
                    strategy="clear_tool_results", trigger="auto", tokens_before=before,
                    tokens_after=after, cleared_tool_results=cleared)
                window.conversation.compacted(cleared_boundary)
                emit(cleared_boundary)
                before = after
        if before > self.policy.summarise_at and self.failures < self.policy.max_failures:
            await self.compact(window, emit, trigger="auto")

    async def compact(self, window: Window, emit: Emit, *, trigger: str = "manual",
                      instructions: str | None = None) -> ev.CompactBoundary | None:
        """Summarise the history; None (and a failure counted) when it could not be done.
        A summary that still leaves the context above the limit replaces the history but
        counts as a failure too (the circuit breaker stops automatic attempts after 3)."""
        before = self.estimate(window)
        parts = cp.split_for_summary(window.conversation.messages)
        if not parts.head:  # a single oversized request: not a failure of compaction
            log.info("nothing to summarise: the history is one request")
            return None
        if self._before_compact is not None:  # the PreCompact hook may add or refuse
            extra, refused = await self._before_compact(trigger, instructions)
            if refused:
                self._failed(f"a PreCompact hook refused: {refused}", emit, trigger)
                return None
            if extra:
                instructions = "\n\n".join(x for x in (instructions, extra) if x)
        try:
            summary = await self._summarise(window, parts.head, instructions, emit)
        except Exception as exc:  # the API refused or failed: counted, the turn goes on
            self._failed(f"{type(exc).__name__}: {exc}", emit, trigger)
            return None
        if not summary:
            self._failed("the model returned no summary", emit, trigger)
            return None
        window.conversation.messages[:] = cp.compacted_history(
            original_request=self.original_request, current_request=self.current_request,
            summary=summary, preserved=self._preserved(), files=self._reread(),
            tail=parts.tail)
        self._cache.clear()
        self.compactions += 1
        after = self.estimate(window)
        boundary = ev.CompactBoundary(strategy="summary", trigger=trigger,  # type: ignore[arg-type]
                                      tokens_before=before, tokens_after=after)
        window.conversation.compacted(boundary)
        emit(boundary)
        self._report_pressure(after, emit)
        if trigger != "manual" and after > self.policy.summarise_at:
            self._failed("the summary left the context above the limit", emit, trigger)
        else:
            self.failures = 0
        return boundary

    async def _summarise(self, window: Window, head: list[dict[str, Any]],
                         instructions: str | None, emit: Emit) -> str:
        if self.service is None:
            raise RuntimeError("no model service to summarise with")
        messages = cp.summary_request_messages(head, instructions)
        try:
            return await self._call_summary(window, messages, emit)
        except ModelCallFailed as failed:
            if failed.failure.kind != "prompt_too_long":
                raise
            budget = self.policy.window_tokens // 2
            messages = cp.summary_request_messages(cp.shrink_for_summary(head, budget),
                                                   instructions)
            return await self._call_summary(window, messages, emit)

    async def _call_summary(self, window: Window, messages: list[dict[str, Any]],
                            emit: Emit) -> str:
        assert self.service is not None
        # The same system and tools (and no tool_choice) keep the cached prefix valid; the
        # instruction tells the model not to call them.
        summary = await self.service.summarise(
            window.request(messages, self.policy.summary_max_tokens))
        raw = summary.usage
        usage = ev.Usage(
            input_tokens=raw.input_tokens or 0, output_tokens=raw.output_tokens or 0,
            cache_read_input_tokens=getattr(raw, "cache_read_input_tokens", 0) or 0,
            cache_creation_input_tokens=getattr(raw, "cache_creation_input_tokens", 0) or 0)
        self.session_cost.add(window.model, usage)
        self.turn_ledger.add(window.model, usage)
        emit(ev.UsageReport(model=window.model, usage=usage))
        return summary.text

    def _failed(self, why: str, emit: Emit, trigger: str) -> None:
        self.failures += 1
        log.warning("compaction failed (%d in a row): %s", self.failures, why)
        stopping = self.failures >= self.policy.max_failures and trigger != "manual"
        emit(ev.ErrorEvent(kind="compaction_failed", recoverable=True, message=(
            f"Could not compact the conversation: {why}."
            + (" Automatic compaction is off for this session after "
               f"{self.failures} failed attempts." if stopping else ""))))
        return None

    # -- what the window holds -----------------------------------------------------------------

    async def breakdown(self, window: Window) -> dict[str, Any]:
        """Tokens by part (system, tools, memory, messages, tool results) for the client."""
        system = window.system()
        tools = window.tools()
        messages = window.conversation.for_request()
        memory = sum(estimate_value(b) for b in system if _is_memory(b))
        parts = {
            "system": sum(estimate_value(b) for b in system) - memory,
            "tools": sum(estimate_value(t) for t in tools),
            "memory": memory,
            "messages": 0,
            "toolResults": 0,
        }
        for message in messages:
            for block in message["content"]:
                tokens = estimate_messages([{"role": message["role"], "content": [block]}])
                if block.get("type") == "tool_result":
                    parts["toolResults"] += tokens
                elif _is_nested_memory(block):
                    parts["memory"] += tokens
                else:
                    parts["messages"] += tokens
        total, source = await self.counter.count(
            self.service, ModelRequest(window.model, system, tools, messages, 0))
        if source == "estimate":
            total = self.calibration.apply(total)
        return {
            "totalTokens": total, "source": source,
            "windowTokens": self.policy.window_tokens,
            "ratio": round(total / self.policy.window_tokens, 4),
            "parts": parts, "level": self.level,
            "thresholds": {"clearToolResults": self.policy.clear_at,
                           "summarise": self.policy.summarise_at},
            "compactions": self.compactions,
            "cost": self.session_cost.summary().wire(),
        }

    # -- helpers -------------------------------------------------------------------------------

    def _raw_estimate(self, window: Window) -> int:
        return self._fixed_estimate(window) + self._messages_estimate(window.conversation.messages)

    def _fixed_estimate(self, window: Window) -> int:
        """Tools and system layers: built once and sent byte-identical on every request (see
        ToolPool.api_schemas), so each is counted once and found again by identity. The cache
        holds the objects themselves, so an id is never reused while it is cached; a tool list
        that changes (deferred tools loaded) brings new objects, which are counted."""
        known, kept, total = self._fixed, {}, 0
        for value in (*window.tools(), *window.system()):
            hit = known.get(id(value))
            tokens = hit[1] if hit is not None and hit[0] is value else estimate_value(value)
            kept[id(value)] = (value, tokens)
            total += tokens
        self._fixed = kept
        return total

    def _messages_estimate(self, messages: list[dict[str, Any]]) -> int:
        """Only the newest message changes in place; the others are counted once."""
        settled = messages[:-1]
        cache = self._cache
        same = 0
        while same < min(len(cache), len(settled)) and cache[same][0] == id(settled[same]):
            same += 1
        del cache[same:]
        for message in settled[same:]:
            cache.append((id(message), estimate_messages([message])))
        return sum(t for _, t in cache) + estimate_messages(messages[-1:])

    def _report_pressure(self, used: int, emit: Emit) -> None:
        ratio = used / self.policy.window_tokens
        if used >= self.policy.summarise_at:
            level = "critical"
        elif ratio >= self.policy.warning_ratio:
            level = "warning"
        else:
            level = "ok"
        if level != self.level:
            self.level = level
            emit(ev.ContextPressure(level=level, used_tokens=used,  # type: ignore[arg-type]
                                    window_tokens=self.policy.window_tokens,
                                    ratio=round(ratio, 4)))

    def _note_file(self, path: Path) -> None:
        if path in self.recent_files:
            self.recent_files.remove(path)
        self.recent_files.append(path)
        del self.recent_files[: -self.policy.reread_files]

    def _reread(self) -> list[tuple[str, str]]:
        """Recently used files, read again now (newest first), within a budget."""
        out = []
        for path in reversed(self.recent_files):
            try:
                text = printable(self._reader(path))  # kept invalid bytes are not JSON text
            except (OSError, ValueError, FileReadError):
                continue  # deleted or unreadable since: the summary still names it
            if len(text) > self.policy.reread_chars:
                text = text[: self.policy.reread_chars] + "\n[... truncated; Read for the rest]"
            shown = path
            if self.workspace is not None and path.is_relative_to(self.workspace):
                shown = path.relative_to(self.workspace)
            out.append((str(shown), text))
        return out


def _resolve(workspace: Path, raw: str) -> Path:
    path = Path(raw).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else workspace / path))


def _read_disk(path: Path) -> str:
    return read_text_file(path)


def _is_memory(block: dict[str, Any]) -> bool:
    return str(block.get("text", "")).startswith(MEMORY_HEADER)


def _is_nested_memory(block: dict[str, Any]) -> bool:
    return block.get("type") == "text" and str(block.get("text", "")).startswith("<memory>")
