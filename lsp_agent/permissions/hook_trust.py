"""Hooks a cloned repository brings run only after the user approved them.

Hooks from the **project** settings (``.lsp-agent/settings.json``, ``.claude/settings.json``)
are held back until the user approves them: once, at the session's first prompt, in a question
that names every hook (command line, URL with the environment variables it may send, or
prompt). The approval covers that exact configuration: it is remembered as a fingerprint of the
project file's ``hooks`` object in ``approvedProjectHooks`` of the local settings (gitignored),
so a changed hook asks again. Project settings cannot approve themselves (their own
``approvedProjectHooks`` is ignored). Hooks from managed, editor, user and local settings and
from enabled plugins are the user's own and run without asking, as MCP servers do
(lsp_agent/extensions/mcp_config.py). Every hook type follows the same rule.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.permissions.hooks import Matcher
from lsp_agent.permissions.local_settings import remember_in_local_settings
from lsp_agent.types import events as ev

APPROVAL_KEY = "approvedProjectHooks"
UNTRUSTED_SCOPES = frozenset({"project"})
MAX_SHOWN = 20


@dataclass
class PendingHooks:
    """The project's hook sets not yet approved: (label, config) and their fingerprints."""

    sets: list[tuple[str, dict[str, Any]]]
    fingerprints: list[str]


def scope_of(label: str) -> str:
    return label.split(":", 1)[0]


def fingerprint(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def split(hook_sets: list[tuple[str, dict[str, Any]]],
          approved: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], PendingHooks]:
    """(hook sets that may run now, project sets waiting for the user's approval)."""
    ready, pending = [], PendingHooks([], [])
    for label, config in hook_sets:
        mark = fingerprint(config)
        if scope_of(label) in UNTRUSTED_SCOPES and mark not in approved:
            pending.sets.append((label, config))
            pending.fingerprints.append(mark)
        else:
            ready.append((label, config))
    return ready, pending


def approval_question(pending: PendingHooks, table: dict[str, list[Matcher]],
                      session_id: str) -> ev.PermissionAsked:
    lines = []
    for event, matchers in table.items():
        for matcher in matchers:
            for hook in matcher.commands:
                where = f" [{matcher.text}]" if matcher.text not in {"", "*"} else ""
                extra = (f" (sends env: {', '.join(hook.allowed_env_vars)})"
                         if hook.allowed_env_vars else "")
                lines.append(f"{event}{where}: {hook.shown}{extra}")
    files = sorted({label.split(":", 1)[-1] for label, _ in pending.sets})
    shown = lines[:MAX_SHOWN] + ([f"... and {len(lines) - MAX_SHOWN} more"]
                                 if len(lines) > MAX_SHOWN else [])
    asked = ev.PermissionAsked(
        tool_use_id="hooks-approval", tool="hooks",
        input={"files": files, "hooks": shown},
        reason=(f"The project's settings ({', '.join(Path(f).name for f in files)}) define "
                f"{len(lines)} hook(s) that run with your rights on agent events:\n"
                + "\n".join(f"- {line}" for line in shown) + "\nAllow them?"))
    asked.session_id = session_id
    return asked


def record_approval(workspace: Path, fingerprints: list[str]) -> Path:
    """Remember the approval in the local settings (never committed: gitignored)."""
    return remember_in_local_settings(workspace, APPROVAL_KEY, fingerprints)
