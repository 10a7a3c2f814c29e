"""Runs tool calls while the model is still streaming.

A call starts as soon as its input is complete. Consecutive read-only calls run concurrently
(bounded); any other call waits for everything before it and blocks everything after it.
Results are returned in call order whatever order they finish in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallResult:
    tool_use_id: str
    content: str
    is_error: bool
    images: list[dict[str, Any]] = field(default_factory=list)  # image blocks, after the text


@dataclass
class PendingCall:
    index: int
    tool_use_id: str
    name: str
    input: dict[str, Any]
    read_only: bool
    task: asyncio.Task[CallResult] | None = None
    started: bool = False
    done: bool = False
    result: CallResult | None = field(default=None)


class ToolExecutor:
    def __init__(self, run: Callable[[PendingCall], Awaitable[CallResult]], max_parallel: int = 8):
        self._run = run
        self._max_parallel = max_parallel
        self._calls: list[PendingCall] = []
        self._changed = asyncio.Condition()

    @property
    def calls(self) -> list[PendingCall]:
        return list(self._calls)

    def submit(self, tool_use_id: str, name: str, input: dict[str, Any], read_only: bool) -> None:
        call = PendingCall(len(self._calls), tool_use_id, name, input, read_only)
        self._calls.append(call)
        call.task = asyncio.create_task(self._run_when_allowed(call), name=f"tool:{name}")

    def _may_start(self, call: PendingCall) -> bool:
        earlier = self._calls[: call.index]
        if call.read_only:
            running = sum(1 for c in self._calls if c.started and not c.done)
            return all(c.done for c in earlier if not c.read_only) and running < self._max_parallel
        return all(c.done for c in earlier)

    async def _run_when_allowed(self, call: PendingCall) -> CallResult:
        async with self._changed:
            await self._changed.wait_for(lambda: self._may_start(call))
            call.started = True
        try:
            call.result = await self._run(call)
        finally:
            call.done = True
            async with self._changed:
                self._changed.notify_all()
        return call.result

    async def results(self) -> list[CallResult]:
        """Wait for every submitted call; results in call order."""
        return [await c.task for c in self._calls if c.task is not None]

    def finished_results(self) -> dict[str, CallResult]:
        return {c.tool_use_id: c.result for c in self._calls if c.result is not None}

    async def abort(self) -> None:
        """Cancel every call that has not finished and wait until they are all gone."""
        tasks = [c.task for c in self._calls if c.task is not None and not c.task.done()]
        for task in tasks:
            if not task.cancelling():  # a subagent's call may be cancelled already: once is
                task.cancel()          # enough, a second cancel would cut its clean-up short
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
