"""The environment every subprocess of ours gets (shell commands, hooks): the server's own,
minus anything that looks like a credential, so that no command inherits the API key."""

from __future__ import annotations

import os

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def command_env() -> dict[str, str]:
    """The inherited environment minus anything that looks like a credential."""
    env = {name: value for name, value in os.environ.items() if not _looks_secret(name)}
    # Nothing can answer a pager or a password prompt: make them not wait.
    env.update(PAGER="cat", GIT_PAGER="cat", GIT_TERMINAL_PROMPT="0")
    return env


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)
