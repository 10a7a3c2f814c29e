"""The agent loop: an async generator of typed events.

One turn = the user's prompt, then rounds of (stream a model response, run its tool calls while
it streams, send the results back) until the model ends its turn, the round limit is reached,
the user cancels, or an error cannot be recovered. The conversation stays consistent whichever
way a turn ends: every tool_use is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from lsp_agent.agent.auto_mode import AutoCall, AutoMode, ModelJudge
from lsp_agent.agent.executor import CallResult, PendingCall, ToolExecutor
from lsp_agent.context.conversation import Conversation, tool_result_block
from lsp_agent.context.manager import ContextManager, Window
from lsp_agent.model.client import explain
from lsp_agent.model.service import ModelCallFailed, ModelRequest, ModelService
from lsp_agent.permissions.guard import ToolGuard
from lsp_agent.permissions.hooks import Hooks
from lsp_agent.permissions.policy import PermissionGate, Verdict
from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolPool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import Asker
from lsp_agent.workspace.encoding import printable

log = logging.getLogger(__name__)

CONTINUE_PROMPT = (
    "Your previous response was cut off by the output token limit. Continue exactly where it "
    "stopped, without repeating anything."
)
CANCELLED_RESULT = "Cancelled: the user stopped the turn before this tool finished."
TRUNCATED_CALL = "Not run: the output token limit cut this call's input short."
_END = object()

Emit = Callable[[ev.AgentEvent], None]


@dataclass
class RoundOutcome:
    kind: Literal["tools", "end_turn", "max_tokens", "refusal", "error"]
    usage: ev.Usage = field(default_factory=ev.Usage)


@dataclass
class AgentDeps:
    model: ModelService  # shared by every agent of the server
    tools: ToolPool
    gate: PermissionGate
    system: Callable[[], list[dict[str, Any]]]
    tool_context: Callable[[str], ToolContext]
    asker: Asker | None = None
    finalize: Callable[[Tool, str | ToolOutput, ToolContext], Awaitable[ToolOutput]] | None = None
    max_parallel_tools: int = 8
    session_id: str = ""
    hooks: Hooks | None = None  # PreToolUse / PostToolUse commands from the settings
    # Window size, compaction, nested memory and cost of this agent's conversation.
    context: ContextManager = field(default_factory=ContextManager)
    # Short notices for the model at its next step (background tasks that ended).
    notices: Callable[[], list[str]] | None = None
    auto: AutoMode | None = None  # auto mode's classifier (default: the classifier model)



def _raise_if_cancelled() -> None:
    """A cancel can be lost on its way: asked while the turn awaits a tool that finishes in the
    same step (asyncio.wait_for on Python 3.11 then returns the result and drops the cancel),
    it reaches the tool, not the turn. The count of requested cancels keeps it: no next
    request goes out once one was asked for."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Agent:
    def __init__(self, deps: AgentDeps):
        self.deps = deps
        self.settings = deps.model.settings
        self.conversation = Conversation()
        self.model = self.settings.model
        self._task: asyncio.Task[None] | None = None
        self.guard = ToolGuard(deps.gate, deps.hooks)
        self._usage = ev.Usage()
        self.max_rounds = self.settings.max_rounds  # a subagent's maxTurns may lower it
        self.auto = deps.auto or AutoMode(ModelJudge(deps.model), self.settings.classifier_timeout)
        self.recent_prompts: list[str] = []  # what auto mode's classifier is told the user wants

    def window(self) -> Window:
        """What the context manager measures, trims and summarises: the conversation and what
        every request carries with it."""
        return Window(self.conversation, self.model, self.deps.system,
                      self.deps.tools.api_schemas)

    def cancel(self) -> bool:
        """Cancel the running turn; its events still end with TurnEnded(cancelled)."""
        if self._task is None or self._task.done():
            return False
        self._task.cancel()
        return True

    async def run_turn(self, prompt_blocks: list[dict[str, Any]]) -> AsyncIterator[ev.AgentEvent]:
        """Run one turn; yields events until (and including) TurnEnded.

        The turn runs in its own task so that tools can emit events concurrently with the
        stream; closing this generator cancels the turn and waits for it to settle.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(event: ev.AgentEvent) -> None:
            # Stamped at once: a permission request built from the event leaves before the
            # consumer sees it.
            event.session_id = self.deps.session_id
            queue.put_nowait(event)

        task = self._task = asyncio.create_task(self._turn(prompt_blocks, emit))
        task.add_done_callback(lambda _t: queue.put_nowait(_END))
        try:
            while (item := await queue.get()) is not _END:
                yield item
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def run_turn_into(self, prompt_blocks: list[dict[str, Any]], emit: Emit) -> None:
        """Run one turn in the caller's task, handing each event to ``emit`` as it happens (a
        subagent: the events of a cancel, such as the answers to its pending calls, reach the
        parent too). A cancel ends the turn with TurnEnded(cancelled) and is not re-raised:
        the caller checks ``asyncio.current_task().cancelling()``."""
        def stamped(event: ev.AgentEvent) -> None:
            event.session_id = self.deps.session_id
            emit(event)

        await self._turn(prompt_blocks, stamped)

    # -- a turn ------------------------------------------------------------------------------

    async def _turn(self, prompt_blocks: list[dict[str, Any]], emit: Emit) -> None:
        texts = [b.get("text", "") for b in prompt_blocks if b.get("type") == "text"]
        emit(ev.TurnStarted(prompt=(texts[-1] if texts else "")[:2000]))  # the user's words
        if texts:
            self.recent_prompts = [*self.recent_prompts, texts[-1]][-5:]
        self.conversation.add_user_blocks(prompt_blocks, origin="prompt")
        self.deps.context.begin_turn(prompt_blocks)
        self._usage = ev.Usage()
        rounds = continuations = 0
        stop: Any = "end_turn"
        try:
            while True:
                _raise_if_cancelled()
                if rounds >= self.max_rounds:
                    stop = "max_turns"
                    break
                rounds += 1
                self._add_notices()
                await self.deps.context.fit(self.window(), emit)
                outcome = await self._round(emit, rounds)
                if outcome.kind == "tools":
                    continue
                if outcome.kind == "max_tokens":
                    continuations += 1
                    if continuations > self.settings.max_continuations:
                        emit(ev.ErrorEvent(kind="max_tokens", message=(
                            "The answer hit the output token limit "
                            f"{continuations} times in a row; stopping.")))
                        stop = "error"
                        break
                    self.conversation.add_user_text(CONTINUE_PROMPT)
                    continue
                stop = {"end_turn": "end_turn", "refusal": "refusal"}.get(outcome.kind, "error")
                break
        except asyncio.CancelledError:
            stop = "cancelled"
        except Exception as exc:  # a bug must end the turn cleanly, not hang the client
            log.exception("turn failed")
            emit(ev.ErrorEvent(kind="internal", message=f"{type(exc).__name__}: {exc}"))
            stop = "error"
        self._answer_dangling_tool_uses()
        emit(self.deps.context.turn_cost())
        emit(ev.TurnEnded(stop_reason=stop, usage=self._usage, rounds=rounds))

    def add_child_usage(self, model: str, usage: ev.Usage) -> None:
        """A subagent's model usage: part of this agent's turn and of its cost."""
        self._usage = self._usage + usage
        self.deps.context.session_cost.add(model, usage)
        self.deps.context.turn_ledger.add(model, usage)

    def _add_notices(self) -> None:
        notices = self.deps.notices() if self.deps.notices is not None else []
        if notices:
            self.conversation.add_user_text("\n".join(notices))

    def _answer_dangling_tool_uses(self) -> None:
        pending = self.conversation.unanswered_tool_uses()
        if pending:
            self.conversation.add_tool_results(
                [tool_result_block(b["id"], CANCELLED_RESULT, True) for b in pending]
            )

    # -- a round: one model response and its tool calls --------------------------------------

    async def _round(self, emit: Emit, round_no: int) -> RoundOutcome:
        attempt = overloads = 0
        compacted = False
        while True:
            executor = ToolExecutor(self._tool_runner(emit), self.deps.max_parallel_tools)
            streamed = _StreamState()
            try:
                return await self._stream_and_run(emit, round_no, executor, streamed)
            except asyncio.CancelledError:
                await executor.abort()
                self._record_interrupted(streamed, executor, emit)
                raise
            except ModelCallFailed as failed:
                await executor.abort()
                failure = failed.failure
            if failure.kind == "overloaded":
                overloads += 1
                fallback = self.settings.fallback_model
                limit = self.settings.overloads_before_fallback
                if overloads >= limit and fallback and fallback != self.model:
                    emit(ev.ModelFallback(from_model=self.model, to_model=fallback, reason=(
                        f"{overloads} consecutive overloaded responses")))
                    self.model, overloads = fallback, 0
                    continue
            if failure.kind == "prompt_too_long" and not compacted:
                compacted = True  # compact and retry once; a second refusal ends the turn
                if await self.deps.context.compact(self.window(), emit, trigger="prompt_too_long"):
                    continue
            delay = self.deps.model.retry_delay(failure, attempt + 1)
            if delay is not None and self.deps.model.wait_too_long(delay):
                emit(ev.ErrorEvent(kind="rate_limited", message=(
                    f"The model endpoint asks to wait {delay:.0f} s before retrying "
                    f"({failure.message}); that is longer than the "
                    f"{self.settings.max_retry_after:.0f} s this agent waits. Try again later.")))
                return RoundOutcome("error")
            if delay is not None:
                attempt += 1
                emit(ev.Retrying(attempt=attempt, reason=failure.message, delay_seconds=delay))
                await asyncio.sleep(delay)
                continue
            emit(ev.ErrorEvent(kind=failure.kind, message=explain(failure, self.model)))
            return RoundOutcome("error")

    async def _stream_and_run(
        self, emit: Emit, round_no: int, executor: ToolExecutor, streamed: _StreamState
    ) -> RoundOutcome:
        emit(ev.ModelRequest(model=self.model, round=round_no))
        final = await self._stream(emit, executor, streamed)
        usage = _usage(final.usage)
        self._usage = self._usage + usage  # counted now: a cancel later in the round keeps it
        emit(ev.UsageReport(model=self.model, usage=usage))
        self.deps.context.record_usage(self.window(), usage, emit)
        blocks = streamed.blocks()
        results = await executor.results()
        self.conversation.add_assistant(blocks)
        if results:
            self.conversation.add_tool_results(
                [tool_result_block(r.tool_use_id, r.content, r.is_error, r.images)
                 for r in results]
            )
            # Memory files of folders the tools just entered follow the results.
            self.conversation.add_user_blocks(self.deps.context.after_tools(blocks))
            return RoundOutcome("tools", usage)
        if final.stop_reason == "max_tokens":
            return RoundOutcome("max_tokens", usage)
        if final.stop_reason == "refusal":
            return RoundOutcome("refusal", usage)
        return RoundOutcome("end_turn", usage)

    async def _stream(self, emit: Emit, executor: ToolExecutor, streamed: _StreamState) -> Any:
        """Stream one response, starting tools as their input completes. Raises
        ModelCallFailed."""
        request = ModelRequest(model=self.model, max_tokens=self.settings.max_tokens,
                               system=self.deps.system(), tools=self.deps.tools.api_schemas(),
                               messages=self.conversation.for_request())
        async with self.deps.model.stream(request) as stream:
            async for event in stream:
                self._on_stream_event(event, emit, executor, streamed)
            final = await stream.final_fields()  # stop_reason and usage: no SDK model needed
            self._settle_held_call(final.stop_reason, emit, executor, streamed)
            return final

    def _on_stream_event(
        self, event: Any, emit: Emit, executor: ToolExecutor, streamed: _StreamState
    ) -> None:
        if event.type == "content_block_start":
            self._release_held_call(emit, executor, streamed)  # its input was whole
            block = event.content_block
            streamed.start(event.index, block.type, getattr(block, "id", None),
                           getattr(block, "name", None))
            if block.type == "tool_use":
                emit(ev.ToolCallStarted(tool_use_id=block.id, name=block.name))
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            streamed.add_text(event.index, event.delta.text)
            emit(ev.TextDelta(text=event.delta.text))
        elif event.type == "content_block_stop":
            block = event.content_block
            if block.type == "tool_use":
                # Held until the next block starts or the stop reason is known: a block
                # closed by the output limit carries a truncated input and must not run.
                tool_input = dict(block.input) if isinstance(block.input, dict) else {}
                streamed.held = (event.index, block.id, block.name, tool_input)
            else:
                streamed.complete(event.index)
        elif event.type == "message_delta":
            self._settle_held_call(event.delta.stop_reason, emit, executor, streamed)

    def _settle_held_call(self, stop_reason: str | None, emit: Emit, executor: ToolExecutor,
                          streamed: _StreamState) -> None:
        if streamed.held is None:
            return
        if stop_reason != "max_tokens":
            self._release_held_call(emit, executor, streamed)
            return
        _, tool_use_id, name, _ = streamed.held
        streamed.held = None  # left out of the conversation: the model writes it again
        emit(ev.ToolResult(tool_use_id=tool_use_id, name=name, is_error=True,
                           content=TRUNCATED_CALL))

    def _release_held_call(self, emit: Emit, executor: ToolExecutor,
                           streamed: _StreamState) -> None:
        if streamed.held is None:
            return
        index, tool_use_id, name, tool_input = streamed.held
        streamed.held = None
        streamed.complete_tool(index, tool_input)
        emit(ev.ToolInputComplete(tool_use_id=tool_use_id, name=name, input=tool_input))
        executor.submit(tool_use_id, name, tool_input, self._is_concurrency_safe(name, tool_input))

    def _record_interrupted(
        self, streamed: _StreamState, executor: ToolExecutor, emit: Emit
    ) -> None:
        """Keep what the user saw of an interrupted response, with every tool use answered
        (in the conversation and, for the client, with a ToolResult event)."""
        blocks = streamed.blocks(include_partial_text=True)
        self.conversation.add_assistant(blocks)
        finished = executor.finished_results()
        results = []
        for block in blocks:
            if block["type"] != "tool_use":
                continue
            done = finished.get(block["id"])
            if done is None:
                emit(ev.ToolResult(tool_use_id=block["id"], name=block["name"],
                                   content=CANCELLED_RESULT, is_error=True))
            results.append(tool_result_block(
                block["id"], done.content if done else CANCELLED_RESULT,
                done.is_error if done else True))
        if results:
            self.conversation.add_tool_results(results)

    # -- tools -------------------------------------------------------------------------------

    def _is_concurrency_safe(self, name: str, tool_input: dict[str, Any]) -> bool:
        tool = self.deps.tools.get(name)
        if tool is None:
            return True  # fails at once without side effects
        try:
            return tool.is_concurrency_safe(tool.input_model.model_validate(tool_input))
        except ValidationError:
            return True

    def _tool_runner(self, emit: Emit) -> Callable[[PendingCall], Awaitable[CallResult]]:
        async def run(call: PendingCall) -> CallResult:
            started = time.time()
            emit(ev.ToolExecutionStarted(tool_use_id=call.tool_use_id, name=call.name))
            content, is_error, images = await self._execute(call, emit)
            content = printable(content)  # bytes kept from non-UTF-8 files cannot go to JSON
            emit(ev.ToolResult(
                tool_use_id=call.tool_use_id, name=call.name, content=content,
                is_error=is_error, started_at=started, finished_at=time.time()))
            return CallResult(call.tool_use_id, content, is_error, images)

        return run

    async def _execute(self, call: PendingCall,
                       emit: Emit) -> tuple[str, bool, list[dict[str, Any]]]:
        tool = self.deps.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.deps.tools.names())
            return f"No tool named {call.name!r}. Available tools: {names}", True, []
        try:
            args = tool.input_model.model_validate(call.input)
        except ValidationError as exc:
            return f"Invalid input for {tool.name}: {_summarise_validation(exc)}", True, []
        ctx = self.deps.tool_context(call.tool_use_id)
        denial, args, notes = await self._check_permission(tool, args, ctx, call, emit)
        if denial is not None:
            return denial, True, []
        output: str | ToolOutput
        try:  # a failure is a result too: PostToolUseFailure hooks hear of it
            output = await asyncio.wait_for(tool.call(args, ctx), tool.time_limit)
        except ToolError as exc:
            output = ToolOutput(str(exc), is_error=True)
        except TimeoutError:
            output = ToolOutput(f"{tool.name} did not finish within {tool.time_limit:g} s and "
                                "was stopped; try a narrower request.", is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool %s failed", tool.name)
            output = ToolOutput(f"{tool.name} failed unexpectedly: {type(exc).__name__}: {exc}",
                                is_error=True)
        if self.deps.finalize is not None:
            output = await self.deps.finalize(tool, output, ctx)
        content, is_error = (output.content, output.is_error) if isinstance(output, ToolOutput) \
            else (output, False)
        images = output.images if isinstance(output, ToolOutput) else []
        notes += await self.guard.after(tool, args, content, is_error)
        return content + "".join(f"\n\n{note}" for note in notes), is_error, images

    async def _check_permission(
        self, tool: Tool, args: BaseModel, ctx: ToolContext, call: PendingCall, emit: Emit
    ) -> tuple[str | None, BaseModel, list[str]]:
        """(None when the call may run, else the denial text for the model; the arguments to
        run with, possibly changed by a hook; notes from hooks for the model)."""
        screened = await self.guard.screen(tool, args, ctx.resolve)
        verdict, args, notes = screened.verdict, screened.args, screened.notes
        if verdict.action == "allow":
            return None, args, notes
        if verdict.action == "ask" and verdict.source == "mode" and self.deps.gate.mode == "auto":
            denial, verdict = await self._auto_mode(tool, args, call, verdict, emit)
            if denial is not None or verdict.action == "allow":
                return denial, args, notes
        if verdict.action == "ask" and self.deps.asker is not None:
            shown = args.model_dump(exclude_none=True) if screened.input_changed else call.input
            asked = ev.PermissionAsked(tool_use_id=call.tool_use_id, tool=tool.name,
                                       input=shown, reason=verdict.reason)
            emit(asked)
            answer = await self.deps.asker(asked)
            emit(ev.PermissionDecided(tool_use_id=call.tool_use_id, tool=tool.name,
                                      decision=answer.decision, source=answer.source,
                                      message=answer.message))
            if answer.decision == "allow":
                if answer.remember and verdict.source != "safety":
                    scope = answer.remember if isinstance(answer.remember, str) else "session"
                    self.deps.gate.remember(tool, args, scope, screened.path)
                return None, args, notes
            why = answer.message or (
                "no answer in time" if answer.source == "timeout" else "the user said no")
            return f"Permission denied for {tool.name}: {why}.", args, notes
        emit(ev.PermissionDecided(tool_use_id=call.tool_use_id, tool=tool.name,
                                  decision="deny", source=verdict.source, message=verdict.reason))
        return f"Permission denied for {tool.name}: {verdict.reason}", args, notes

    async def _auto_mode(self, tool: Tool, args: BaseModel, call: PendingCall, verdict: Verdict,
                         emit: Emit) -> tuple[str | None, Verdict]:
        """Auto mode's classifier on a call the gate would ask about (for an ordinary concern
        only: the gate's own refusals and safety questions never get here). Returns the denial
        for the model, or None and the verdict to go on with (allow, or ask the user)."""
        subject = tool.subject(args)
        asked = AutoCall(
            tool=tool.name, subject=f"{subject.access}: {subject.shown or tool.name}",
            input=args.model_dump(exclude_none=True), reason=verdict.reason,
            prompts=tuple(self.recent_prompts), workspace=str(self.deps.gate.workspace))
        auto = await self.auto.decide(asked)
        if auto.decision == "allow" and verdict.danger:
            # The tables of known dangers are not the classifier's to overrule: the user decides.
            auto = replace(auto, decision="ask", reason=f"it would allow this, but a known danger "
                           f"is the user's to decide ({auto.reason})")
        # The side request counts in the cost; no usage event: clients read those as the
        # conversation's own rounds (its model, its context size).
        if auto.usage is not None and auto.model:
            self.deps.context.session_cost.add(auto.model, auto.usage)
            self.deps.context.turn_ledger.add(auto.model, auto.usage)
        emit(ev.AutoDecision(tool_use_id=call.tool_use_id, tool=tool.name,
                             decision=auto.decision, reason=auto.reason, cached=auto.cached,
                             error=auto.error, usage=auto.usage, call_key=asked.digest(),
                             model=auto.model))
        if auto.decision == "allow":
            return None, Verdict("allow", f"auto mode: {auto.reason}")
        if auto.decision == "ask":
            return None, Verdict("ask", f"{verdict.reason} (auto mode: {auto.reason})")
        emit(ev.PermissionDecided(tool_use_id=call.tool_use_id, tool=tool.name, decision="deny",
                                  source="auto", message=auto.reason))
        return (f"Permission denied for {tool.name} by auto mode's classifier: {auto.reason}. "
                "Do not retry this call as it is: choose a safer way to reach the goal (a "
                "narrower or read-only command, an edit the user reviews), or ask the user "
                "if nothing else will do."), verdict


class _StreamState:
    """The blocks of the response being streamed, as far as they have arrived."""

    def __init__(self) -> None:
        self._blocks: dict[int, dict[str, Any]] = {}
        self._complete: set[int] = set()
        self.held: tuple[int, str, str, dict[str, Any]] | None = None

    def start(self, index: int, kind: str, block_id: str | None, name: str | None) -> None:
        if kind == "text":
            self._blocks[index] = {"type": "text", "text": ""}
        elif kind == "tool_use":
            self._blocks[index] = {"type": "tool_use", "id": block_id, "name": name, "input": {}}

    def add_text(self, index: int, text: str) -> None:
        block = self._blocks.get(index)
        if block is not None and block["type"] == "text":
            block["text"] += text

    def complete(self, index: int) -> None:
        self._complete.add(index)

    def complete_tool(self, index: int, tool_input: dict[str, Any]) -> None:
        self._blocks[index]["input"] = tool_input
        self._complete.add(index)

    def blocks(self, include_partial_text: bool = True) -> list[dict[str, Any]]:
        """Completed blocks, plus text cut short; a tool use whose input never completed is
        dropped (it was never run and cannot be answered meaningfully)."""
        out = []
        for index in sorted(self._blocks):
            block = self._blocks[index]
            if index in self._complete or (include_partial_text and block["type"] == "text"):
                out.append(dict(block))
        return out


def _usage(usage: Any) -> ev.Usage:
    return ev.Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
    )


def _summarise_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "input"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
