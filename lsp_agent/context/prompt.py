"""System prompt in two layers: a static part, byte-identical across turns and sessions (so it
is cached), and a dynamic part after it describing this workspace.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path
from typing import Any

from lsp_agent.procs.lifetime import child_options

STATIC_SYSTEM = """\
You are lsp-agent, a coding agent working inside the user's editor on their workspace.

How you work:
- Read before you change: use Read, Grep, Glob and the code-intelligence tools (Definition, \
References) to understand the code. Prefer them over shell commands for reading. ToolSearch \
loads rarely needed tools (such as Hover and symbol outlines) when you need them.
- Your edits (Edit, Write) are proposals the user reviews hunk by hunk. The tool result tells you \
exactly what was accepted, rejected or in conflict with the user's own typing; never assume an \
edit landed unless the result says so. After a rejection, follow the user's feedback.
- Keep edits minimal and in the file's style. Preserve indentation exactly in old_string.
- Use Bash to run tests and commands; it runs in the workspace with a timeout. Check the result \
of your change (for example by running the tests) before you say it is done.
- Diagnostics shows the errors the editor reports for a file.
- For work with several steps, keep a todo list with TodoWrite and update it as you go.
- Be concise. Report what you changed and how you verified it.
"""


def git_summary(root: Path, timeout: float = 2.0) -> str | None:
    try:
        branch = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
            cwd=root, capture_output=True, text=True, timeout=timeout, check=False,
            **child_options(),
        )
        if branch.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--short"],
            cwd=root, capture_output=True, text=True, timeout=timeout, check=False,
            **child_options(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    changed = status.stdout.splitlines()
    summary = f"git branch {branch.stdout.strip()}, {len(changed)} changed file(s)"
    if changed:
        summary += ":\n" + "\n".join(changed[:20]) + ("\n..." if len(changed) > 20 else "")
    return summary


def dynamic_system(root: Path, today: dt.date | None = None) -> str:
    lines = [
        f"Workspace root: {root}",
        f"Platform: {platform.system()} {platform.release()}",
        f"Date: {(today or dt.date.today()).isoformat()}",
    ]
    git = git_summary(root)
    if git:
        lines.append(git)
    return "\n".join(lines)


def system_blocks(root: Path) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": STATIC_SYSTEM, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": dynamic_system(root)},
    ]
