"""Anthropic's Messages API through the official SDK: settings, the client, and what a
failure means (``classify``), so that the model service and the loop can decide: retry with
backoff, wait as ``retry-after`` says, fall back to another model, compact, or stop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lsp_agent.procs.environment import server_secret

if TYPE_CHECKING:  # the SDK takes ~1 s to import: loaded with the first session
    import anthropic

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_FALLBACK_MODEL = "claude-haiku-4-5"
DEFAULT_CLASSIFIER_MODEL = "claude-haiku-4-5"  # auto mode's permission classifier
DEFAULT_EXPLORE_MODEL = "claude-haiku-4-5"  # the Explore subagent: finding things fast, cheaply


_FLOAT_ENV = {
    "LSP_AGENT_BACKOFF_BASE": "backoff_base",
    "LSP_AGENT_FIRST_BYTE_TIMEOUT": "first_byte_timeout",
    "LSP_AGENT_IDLE_TIMEOUT": "idle_timeout",
    "LSP_AGENT_MAX_RETRY_AFTER": "max_retry_after",
    "LSP_AGENT_CLASSIFIER_TIMEOUT": "classifier_timeout",
}


@dataclass
class ModelSettings:
    model: str = DEFAULT_MODEL
    fallback_model: str | None = DEFAULT_FALLBACK_MODEL
    max_tokens: int = 8192
    api_key: str | None = None
    base_url: str | None = None
    # The SDK's retries are off: the model service retries, once, visibly (see service.py).
    sdk_max_retries: int = 0
    request_timeout: float = 600.0
    first_byte_timeout: float = 30.0  # nothing at all after the request was sent
    idle_timeout: float = 90.0  # a stream that stops sending mid-way
    max_retry_after: float = 60.0  # a longer retry-after is an error naming the wait
    stream_retries: int = 5
    overloads_before_fallback: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    max_continuations: int = 3
    max_rounds: int = 50
    classifier_model: str = DEFAULT_CLASSIFIER_MODEL
    classifier_timeout: float = 15.0  # past it, auto mode asks the user instead
    explore_model: str = DEFAULT_EXPLORE_MODEL  # "inherit": the parent agent's model

    @classmethod
    def from_env(cls, **overrides: Any) -> ModelSettings:
        env = os.environ
        values: dict[str, Any] = {
            "model": env.get("LSP_AGENT_MODEL", DEFAULT_MODEL),
            "fallback_model": env.get("LSP_AGENT_FALLBACK_MODEL", DEFAULT_FALLBACK_MODEL) or None,
            "api_key": server_secret("ANTHROPIC_API_KEY"),  # sealed at start-up
            "base_url": env.get("ANTHROPIC_BASE_URL"),
            "classifier_model": env.get("LSP_AGENT_CLASSIFIER_MODEL") or DEFAULT_CLASSIFIER_MODEL,
            "explore_model": env.get("LSP_AGENT_EXPLORE_MODEL") or DEFAULT_EXPLORE_MODEL,
        }
        for name, field_name in _FLOAT_ENV.items():
            if name in env:
                values[field_name] = float(env[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))

    def redacted(self) -> dict[str, Any]:
        """Settings fit for a log line: the key is never written out."""
        return {
            "model": self.model,
            "fallback_model": self.fallback_model,
            "base_url": self.base_url,
            "api_key": "set" if self.api_key else "missing",
        }


def make_client(settings: ModelSettings) -> anthropic.AsyncAnthropic:
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=settings.api_key or "missing-api-key",
        auth_token=server_secret("ANTHROPIC_AUTH_TOKEN"),  # the SDK would look in os.environ
        base_url=settings.base_url,
        max_retries=settings.sdk_max_retries,
        timeout=settings.request_timeout,
    )


FailureKind = Literal[
    "overloaded", "transient", "prompt_too_long", "auth", "bad_request", "not_found", "fatal"
]


@dataclass
class ModelFailure:
    kind: FailureKind
    message: str
    retry_after: float | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        return self.kind in ("overloaded", "transient")


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(err.get("type", "")) if isinstance(err, dict) else ""


def _status_text(exc: anthropic.APIStatusError) -> str:
    """The endpoint's own words and the status, not the SDK's dump of the error body."""
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else body
    said = err.get("message") if isinstance(err, dict) else None
    etype = _error_type(exc)
    # A 200 is a stream that carried an error event: the status says nothing there.
    label = etype if exc.status_code == 200 else " ".join(
        part for part in (f"HTTP {exc.status_code}", etype) if part)
    if isinstance(said, str) and said.strip():
        return f"{_clip(said)} ({label})"
    raw = exc.body if isinstance(exc.body, str) else getattr(exc, "message", "") or str(exc)
    return f"{label}: {_clip(str(raw))}" if raw else label


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connection_text(exc: anthropic.APIConnectionError) -> str:
    """Which endpoint could not be reached, and why (the SDK says only "Connection error.")."""
    import anthropic

    where = "the model endpoint"
    url = getattr(getattr(exc, "request", None), "url", None)
    if url is not None:
        where = f"the model endpoint {url.scheme}://{url.host}" + (f":{url.port}" if url.port
                                                                   else "")
    if isinstance(exc, anthropic.APITimeoutError):
        return f"{where} did not answer in time"
    cause = exc.__cause__
    reason = (str(cause) or type(cause).__name__) if cause is not None else str(exc)
    return f"cannot connect to {where}: {_clip(reason, 200)}"


def classify(exc: BaseException) -> ModelFailure:
    """Map an SDK exception to what the loop should do about it."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        etype = _error_type(exc)
        raw = str(exc.message if hasattr(exc, "message") else exc)
        text = _status_text(exc)
        if etype == "overloaded_error" or exc.status_code == 529:
            return ModelFailure("overloaded", text, status=exc.status_code)
        if "prompt is too long" in raw.lower() or exc.status_code == 413:
            return ModelFailure("prompt_too_long", text, status=exc.status_code)
        if exc.status_code in (401, 403):
            return ModelFailure("auth", text, status=exc.status_code)
        if exc.status_code == 404:
            return ModelFailure("not_found", text, status=exc.status_code)
        # A 200 stream that carried an error event, or a 5xx/429 that outlasted SDK retries.
        if exc.status_code == 200 or exc.status_code >= 500 or exc.status_code == 429:
            retry_after = None
            try:
                retry_after = float(exc.response.headers.get("retry-after", ""))
            except (ValueError, AttributeError):
                retry_after = None
            return ModelFailure("transient", text, retry_after=retry_after, status=exc.status_code)
        return ModelFailure("bad_request", text, status=exc.status_code)
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelFailure("transient", _connection_text(exc))
    return ModelFailure("fatal", f"{type(exc).__name__}: {exc}")


# What the user can change once a failure outlasted its retries: the message says what went
# wrong, the hint what to do about it. "{model}" is the model of the failed call.
FAILURE_HINTS: dict[FailureKind, str] = {
    "auth": "Check the API key: ANTHROPIC_API_KEY (in VS Code: lsp-agent: Set API Key).",
    "not_found": ("Choose another model with --model, LSP_AGENT_MODEL or the editor's model "
                  "setting (or check ANTHROPIC_BASE_URL)."),
    "bad_request": ("The endpoint refused the request; if it names the model, choose another "
                    "(--model, LSP_AGENT_MODEL or the editor's model setting)."),
    "overloaded": "The model stays overloaded: try again later, or choose another model.",
    "transient": "Check the network connection and ANTHROPIC_BASE_URL, then try again.",
    "prompt_too_long": "Start a new session or shorten the request.",
}


def explain(failure: ModelFailure, model: str) -> str:
    """The failure as the user reads it: what happened, then what to change."""
    if failure.kind == "prompt_too_long":
        what = f"The conversation is too long for the model's context window ({failure.message})."
    elif failure.kind == "auth":
        what = f"The model endpoint refused the credentials: {failure.message}."
    elif failure.kind == "not_found":
        what = f"The model endpoint does not know the model {model!r}: {failure.message}."
    else:
        what = failure.message.rstrip(".") + "."
    hint = FAILURE_HINTS.get(failure.kind)
    return f"{what} {hint.format(model=model)}" if hint else what
