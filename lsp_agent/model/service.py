"""The model service: the one door to the Messages API.

Everything that talks to the model goes through here: the agent loop's streams, compaction's
summaries, token counts; children agents share it. It owns the SDK client and one retry
policy. The SDK's own retries are off, so that a failure is retried once by us (with a visible
``retrying`` event in the loop) instead of silently by the SDK inside each of our attempts.

It also puts limits on a call the user can see: a first-byte timeout (nothing arrives after the
request was sent) and an idle timeout (a stream that stops mid-way), both turned into a
retryable failure, and a cap on how long a ``retry-after`` may make us wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from lsp_agent.model.client import ModelFailure, ModelSettings, classify, make_client
from lsp_agent.model.clients import ClientPool
from lsp_agent.model.raw_stream import open_stream

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

Block = dict[str, Any]
T = TypeVar("T")


@dataclass
class ModelRequest:
    model: str
    system: list[Block]
    tools: list[Block]
    messages: list[Block]
    max_tokens: int
    tool_choice: Block | None = None  # e.g. force one tool for a structured side answer


class ModelCallFailed(Exception):
    """A call failed; ``failure`` says how and whether a retry may help."""

    def __init__(self, failure: ModelFailure):
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class Summary:
    text: str
    usage: Any  # the SDK's usage object of the response


class ModelService:
    def __init__(self, settings: ModelSettings, client: anthropic.AsyncAnthropic | None = None,
                 clients: ClientPool | None = None):
        self.settings = settings
        self._client = client
        self._clients = clients  # where the client is built (or preloaded), off the loop

    @property
    def client(self) -> anthropic.AsyncAnthropic:
        # Made on first use: importing the SDK takes about a second.
        if self._client is None:
            self._client = (self._clients.client_now(self.settings) if self._clients
                            else make_client(self.settings))
        return self._client

    async def ready_client(self) -> anthropic.AsyncAnthropic:
        """The client, awaited without blocking the loop while the SDK loads (clients.py)."""
        if self._client is None:
            self._client = await (self._clients or ClientPool()).client(self.settings)
        return self._client

    # -- streaming -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def stream(self, request: ModelRequest) -> AsyncIterator[TimedStream]:
        """The response's raw events, each within its time limit. Raises ModelCallFailed."""
        client = await self.ready_client()  # before the import below: the SDK may still load
        import anthropic

        try:
            # The SDK's client without its stream helper's per-event models (raw_stream.py).
            stream = await self._within(open_stream(client, _kwargs(request)),
                                        self.settings.first_byte_timeout, "no response")
            try:
                yield TimedStream(stream, self)
            finally:
                await stream.close()
        except (anthropic.APIError, anthropic.AnthropicError) as exc:
            raise ModelCallFailed(classify(exc)) from exc

    async def _within(self, awaitable: Any, seconds: float, what: str) -> Any:
        # asyncio.timeout, not wait_for: no task per event, and a cancel that arrives as the
        # event does is never swallowed (wait_for in 3.11 can lose it).
        try:
            async with asyncio.timeout(seconds):
                return await awaitable
        except TimeoutError:
            raise ModelCallFailed(ModelFailure(
                "transient", f"{what} from the model for {seconds:g} s")) from None

    # -- one-shot calls ------------------------------------------------------------------------

    async def summarise(self, request: ModelRequest) -> Summary:
        """A whole (non-streamed to the user) response's text, retried as the policy says."""
        async def once() -> Summary:
            async with self.stream(request) as stream:
                async for _event in stream:
                    pass
                final = await stream.get_final_message()
            text = "\n".join(b.text for b in final.content
                             if getattr(b, "type", "") == "text").strip()
            return Summary(text, final.usage)

        return await self._retried(once)

    async def respond(self, request: ModelRequest) -> Any:
        """A whole response (the SDK's final message), not retried: for side requests whose
        callers have a fallback of their own (auto mode's classifier asks the user instead)."""
        async with self.stream(request) as stream:
            async for _event in stream:
                pass
            return await stream.get_final_message()

    async def count_tokens(self, request: ModelRequest) -> int:
        """Exact input tokens of a request. Raises ModelCallFailed (not retried: callers
        fall back to an estimate)."""
        client = await self.ready_client()
        import anthropic

        kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.system:
            kwargs["system"] = request.system
        if request.tools:
            kwargs["tools"] = request.tools
        try:
            result = await self._within(client.messages.count_tokens(**kwargs),
                                        self.settings.first_byte_timeout, "no token count")
        except (anthropic.APIError, anthropic.AnthropicError) as exc:
            raise ModelCallFailed(classify(exc)) from exc
        return int(result.input_tokens)

    # -- the retry policy ----------------------------------------------------------------------

    def retry_delay(self, failure: ModelFailure, attempt: int) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based), or None: do not retry."""
        if not failure.retryable or attempt > self.settings.stream_retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after
        return self.settings.backoff(attempt)

    def wait_too_long(self, delay: float) -> bool:
        """A ``retry-after`` beyond the cap is reported, not slept through in silence."""
        return delay > self.settings.max_retry_after

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except ModelCallFailed as failed:
                attempt += 1
                delay = self.retry_delay(failed.failure, attempt)
                if delay is None or self.wait_too_long(delay):
                    raise
                log.info("model call failed (%s); retry %d in %.1f s",
                         failed.failure.message, attempt, delay)
                await asyncio.sleep(delay)


class TimedStream:
    """An SDK message stream whose events must each arrive within the idle timeout."""

    def __init__(self, stream: Any, service: ModelService):
        self._stream = stream
        self._service = service

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events()

    async def _events(self) -> AsyncIterator[Any]:
        import anthropic

        iterator = self._stream.__aiter__()
        limit = self._service.settings.idle_timeout
        while True:
            try:
                event = await self._service._within(iterator.__anext__(), limit,
                                                    "nothing more")
            except StopAsyncIteration:
                return
            except (anthropic.APIError, anthropic.AnthropicError) as exc:
                raise ModelCallFailed(classify(exc)) from exc
            yield event

    async def get_final_message(self) -> Any:
        return await self._final(self._stream.get_final_message)

    async def final_fields(self) -> Any:
        """The final message's fields without the SDK's model of it (raw_stream.Fields)."""
        return await self._final(self._stream.final_fields)

    async def _final(self, read: Callable[[], Awaitable[Any]]) -> Any:
        import anthropic

        try:
            return await read()
        except (anthropic.APIError, anthropic.AnthropicError) as exc:
            raise ModelCallFailed(classify(exc)) from exc


def _kwargs(request: ModelRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens,
                              "system": request.system, "messages": request.messages}
    if request.tools:  # the same tools keep the cached prefix valid for summaries too
        kwargs["tools"] = request.tools
    if request.tool_choice:
        kwargs["tool_choice"] = request.tool_choice
    return kwargs
