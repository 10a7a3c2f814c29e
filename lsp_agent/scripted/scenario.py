"""Scenario files for the scripted model server: models, loading and request matching.

A scenario is a list of scripted assistant turns. The format is documented for users in
``docs/scenarios.md``; the pydantic models below are the authority on what is accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]

# The HTTP status the real API uses for each error type.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
DEFAULT_ERROR_MESSAGE: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}


class ScenarioError(ValueError):
    """A scenario file or document is malformed; the message says where and why."""


class _Strict(BaseModel):
    # Unknown keys are rejected so that a typo in a scenario fails loudly instead of being ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextBlock(_Strict):
    type: Literal["text"]
    text: str


class ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None  # assigned by the server (unique per server) when omitted


ContentBlock = Annotated[TextBlock | ToolUseBlock, Field(discriminator="type")]


def _text_shorthand(value: Any) -> Any:
    """``"content": "hello"`` is shorthand for a single text block."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return value


def default_stop_reason(content: list[TextBlock | ToolUseBlock]) -> StopReason:
    return "tool_use" if any(isinstance(b, ToolUseBlock) for b in content) else "end_turn"


class Condition(_Strict):
    """Checks on a request. All given fields must hold; an empty condition always holds.

    Tool-result and user-text checks look only at the LAST user message of the request.
    """

    tool_result_contains: str | None = None
    tool_result_is_error: bool | None = None
    user_text_contains: str | None = Field(
        default=None, validation_alias=AliasChoices("user_text_contains", "last_user_text_contains")
    )
    system_contains: str | None = None
    tools_include: list[str] | None = None

    def failures(self, request: RequestView) -> list[str]:
        """Readable descriptions of every check that does not hold (empty when all hold)."""
        problems: list[str] = []
        if self.tool_result_contains is not None:
            if self.tool_result_contains not in request.tool_result_text:
                problems.append(
                    f"expected a tool_result containing {self.tool_result_contains!r}, "
                    f"got {_preview(request.tool_result_text, request.has_tool_results)}"
                )
        if self.tool_result_is_error is not None:
            if not request.has_tool_results:
                problems.append(
                    f"expected a tool_result with is_error={self.tool_result_is_error}, "
                    "got no tool_result"
                )
            elif request.tool_result_is_error != self.tool_result_is_error:
                problems.append(
                    f"expected tool_result is_error={self.tool_result_is_error}, "
                    f"got is_error={request.tool_result_is_error}"
                )
        if self.user_text_contains is not None:
            if self.user_text_contains not in request.user_text:
                problems.append(
                    f"expected user text containing {self.user_text_contains!r}, "
                    f"got {_preview(request.user_text, bool(request.user_text))}"
                )
        if self.system_contains is not None and self.system_contains not in request.system_text:
            problems.append(f"expected a system prompt containing {self.system_contains!r}")
        for name in self.tools_include or []:
            if name not in request.tool_names:
                problems.append(
                    f"expected tool {name!r} to be offered, got tools {sorted(request.tool_names)}"
                )
        return problems

    def holds(self, request: RequestView) -> bool:
        return not self.failures(request)


class WhenAlternative(Condition):
    """A conditional replacement for a turn's content, chosen when its conditions hold."""

    content: list[ContentBlock]
    stop_reason: StopReason | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_shorthand(cls, value: Any) -> Any:
        return _text_shorthand(value)


class HttpErrorFault(_Strict):
    """Answer with an HTTP error and Anthropic's JSON error body instead of the turn."""

    http_status: int = Field(ge=400, le=599)
    error_type: str | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    should_retry: bool | None = None  # sets the x-should-retry header the SDK obeys
    times: int = Field(default=1, ge=1)

    def resolved_type(self) -> str:
        if self.error_type:
            return self.error_type
        for error_type, status in ERROR_STATUS.items():
            if status == self.http_status:
                return error_type
        return "api_error" if self.http_status >= 500 else "invalid_request_error"

    def resolved_message(self) -> str:
        return self.message or DEFAULT_ERROR_MESSAGE.get(self.resolved_type(), "Error")


class StreamErrorFault(_Strict):
    """Start a normal 200 stream, then send an ``error`` event after N events and close."""

    stream_error: str = Field(min_length=1)
    message: str | None = None
    after_events: int = Field(default=0, ge=0)
    times: int = Field(default=1, ge=1)

    def resolved_message(self) -> str:
        return self.message or DEFAULT_ERROR_MESSAGE.get(self.stream_error, "Error")


class StallFault(_Strict):
    """Wait before sending the first byte, then answer normally."""

    stall_ms: int = Field(ge=0)
    times: int = Field(default=1, ge=1)


def _fault_kind(value: Any) -> str | None:
    data = value if isinstance(value, dict) else getattr(value, "__dict__", {})
    for key, tag in (("http_status", "http"), ("stream_error", "stream"), ("stall_ms", "stall")):
        if key in data:
            return tag
    return None


Fault = Annotated[
    Annotated[HttpErrorFault, Tag("http")]
    | Annotated[StreamErrorFault, Tag("stream")]
    | Annotated[StallFault, Tag("stall")],
    Discriminator(
        _fault_kind,
        custom_error_type="fault_kind",
        custom_error_message="a fault needs one of the keys http_status, stream_error or stall_ms",
    ),
]


class UsageOverride(_Strict):
    """Fixed usage numbers for a turn; any field left out is computed by the server."""

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cache_creation_input_tokens: int | None = Field(default=None, ge=0)
    cache_read_input_tokens: int | None = Field(default=None, ge=0)


class Turn(_Strict):
    content: list[ContentBlock] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    when: list[WhenAlternative] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    expect: Condition | None = None
    chunk_chars: int | None = Field(default=None, ge=1)
    delay_ms: int | None = Field(default=None, ge=0)
    usage: UsageOverride | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_shorthand(cls, value: Any) -> Any:
        return _text_shorthand(value)

    def fault_for_attempt(
        self, attempt: int
    ) -> HttpErrorFault | StreamErrorFault | StallFault | None:
        """The fault for the zero-based attempt at this turn: faults apply in list order,
        each to ``times`` consecutive attempts; later attempts get no fault."""
        remaining = attempt
        for fault in self.faults:
            if remaining < fault.times:
                return fault
            remaining -= fault.times
        return None


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    sequencing: Literal["by_assistant_count", "sequential"] = "by_assistant_count"
    chunk_chars: int = Field(default=12, ge=1)
    delay_ms: int = Field(default=0, ge=0)
    turns: list[Turn] = Field(default_factory=list)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(
                f"scenario {path} is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}"
            ) from exc
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, source: str = "scenario") -> Scenario:
        if not isinstance(data, dict):
            raise ScenarioError(f"{source}: a scenario must be a JSON object with a 'turns' list")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(f"{source} is not a valid scenario:\n{_describe(exc)}") from exc

    @classmethod
    def coerce(cls, value: Scenario | dict[str, Any] | str | Path) -> Scenario:
        """Accept a Scenario, a scenario dict, or the path of a scenario file."""
        if isinstance(value, Scenario):
            return value
        if isinstance(value, dict):
            return cls.from_data(value)
        if isinstance(value, str | Path):
            return cls.from_file(value)
        raise TypeError(f"expected a Scenario, dict or path, got {type(value).__name__}")


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  at {location}: {error['msg']}")
    return "\n".join(lines)


def _preview(text: str, present: bool, limit: int = 300) -> str:
    if not present:
        return "nothing"
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} chars)"
    return repr(text)


@dataclass(frozen=True)
class RequestView:
    """The parts of a Messages request that scenario conditions look at."""

    user_text: str
    tool_result_text: str
    has_tool_results: bool
    tool_result_is_error: bool
    system_text: str
    tool_names: frozenset[str]

    @classmethod
    def of(cls, body: dict[str, Any]) -> RequestView:
        last_user = _last_user_content(body.get("messages"))
        texts: list[str] = []
        results: list[str] = []
        any_error = False
        result_count = 0
        for block in last_user:
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                result_count += 1
                any_error = any_error or bool(block.get("is_error"))
                results.append(_block_text(block.get("content")))
        raw_tools = body.get("tools")
        tools: list[Any] = raw_tools if isinstance(raw_tools, list) else []
        return cls(
            user_text="\n".join(texts),
            tool_result_text="\n".join(results),
            has_tool_results=result_count > 0,
            tool_result_is_error=any_error,
            system_text=_block_text(body.get("system")),
            tool_names=frozenset(str(t.get("name")) for t in tools if isinstance(t, dict)),
        )


def _last_user_content(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        return []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return [{"type": "text", "text": content}]
            if isinstance(content, list):
                return [b for b in content if isinstance(b, dict)]
            return []
    return []


def _block_text(content: Any) -> str:
    """Text of a string or a list of content blocks (non-text blocks are skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return str(content)
