"""The hook types besides ``command``: ``http`` and ``prompt`` (Claude Code's shapes).

* ``http``: the hook input is POSTed as JSON to ``url``; a 2xx answer's body is read like a
  command hook's stdout (JSON decisions, or plain text context). Non-2xx answers, refused
  connections and timeouts are reported and ignored, like a command's other exit codes.
  ``headers`` may name environment variables as ``${VAR}`` or ``$VAR``, expanded only when
  ``allowedEnvVars`` lists them (others become empty; an empty header is not sent): a
  settings file cannot send the server's credentials anywhere unless it says so, and the
  approval question shows the list.
  Redirects are not followed (the URL the user approved is the only one reached); the answer
  is read up to 64 kB.
* ``prompt``: a small model judges. ``$ARGUMENTS`` in the prompt is replaced by the hook input
  (JSON; appended when the prompt does not name it). The model answers
  ``{"ok": true}`` or ``{"ok": false, "reason": "..."}``; ``ok: false`` blocks like exit 2.
  An answer that does not parse, or a failing model, is reported and ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from typing import Any

import httpx2 as httpx

from lsp_agent.permissions.hooks import (
    MAX_OUTPUT,
    HookCommand,
    HookOutcome,
    Judge,
    interpret_stdout,
)

log = logging.getLogger(__name__)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_headers(headers: dict[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """``${VAR}``/``$VAR`` in header values: the variable's value when ``allowed`` lists it,
    else the empty string. Values are trimmed; a header left empty is not sent."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return os.environ.get(name, "") if name in allowed else ""

    expanded = {name: _VAR.sub(value, text).strip() for name, text in headers.items()}
    return {name: text for name, text in expanded.items() if text}


async def run_http(event: str, hook: HookCommand, data: dict[str, Any]) -> HookOutcome:
    headers = {"Content-Type": "application/json",
               **expand_headers(hook.headers, hook.allowed_env_vars)}
    try:
        status, body = await asyncio.wait_for(_post(hook.command, headers, data, hook.timeout),
                                              hook.timeout)
    except (TimeoutError, httpx.TimeoutException):
        return HookOutcome(messages=[f"http hook {hook.command!r} timed out after "
                                     f"{hook.timeout:g} s"])
    except httpx.HTTPError as exc:
        return HookOutcome(messages=[f"http hook {hook.command!r} failed: {exc}"])
    if not 200 <= status < 300:
        log.warning("http hook %r answered %s", hook.command, status)
        return HookOutcome(messages=[f"http hook {hook.command!r} answered HTTP {status}"])
    return interpret_stdout(event, body)


async def _post(url: str, headers: dict[str, str], data: dict[str, Any],
                limit: float) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=limit, follow_redirects=False,
                                 trust_env=False) as client:
        async with client.stream("POST", url, headers=headers,
                                 content=json.dumps(data).encode()) as response:
            kept = bytearray()
            async for chunk in response.aiter_bytes():
                kept += chunk[: MAX_OUTPUT - len(kept)]
                if len(kept) >= MAX_OUTPUT:
                    break  # the rest is not read: a huge answer cannot fill the memory
            return response.status_code, kept.decode("utf-8", "replace")


PROMPT_ARGUMENTS = "$ARGUMENTS"


def judge_prompt(hook: HookCommand, data: dict[str, Any]) -> str:
    shown = json.dumps(data, ensure_ascii=False)
    if PROMPT_ARGUMENTS in hook.command:
        return hook.command.replace(PROMPT_ARGUMENTS, shown)
    return f"{hook.command}\n\nHook input:\n{shown}"


async def run_prompt(event: str, hook: HookCommand, data: dict[str, Any],
                     judge: Judge | None) -> HookOutcome:
    if judge is None:
        return HookOutcome(messages=["a prompt hook was skipped: no model to ask"])
    try:
        answer = await asyncio.wait_for(judge(judge_prompt(hook, data), hook.model),
                                        hook.timeout)
    except TimeoutError:
        return HookOutcome(messages=[f"a prompt hook timed out after {hook.timeout:g} s"])
    except Exception as exc:  # the model failed: the hook is ignored, never the turn
        log.warning("prompt hook failed: %s", exc)
        return HookOutcome(messages=[f"a prompt hook failed: {exc}"])
    verdict = parse_verdict(answer)
    if verdict is None:
        return HookOutcome(messages=["a prompt hook's answer was not {\"ok\": ...}; ignored"])
    ok, reason = verdict
    if ok:
        return HookOutcome()
    return HookOutcome(decision="deny" if event == "PreToolUse" else "block",
                       reason=reason or "a prompt hook said no")


def parse_verdict(answer: str) -> tuple[bool, str] | None:
    """(ok, reason) from the first JSON object in the answer that has a boolean ``ok``."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", answer)):
        try:
            value, _ = decoder.raw_decode(answer, start)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("ok"), bool):
            return value["ok"], str(value.get("reason") or "")
    return None
