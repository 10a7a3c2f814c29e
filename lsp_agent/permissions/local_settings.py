"""Remembering a user's approval in the workspace's local settings (``settings.local.json``,
never committed: a ``.gitignore`` beside it is written when there is none). One writer for
every kind of approval (MCP servers, project hooks), its final path checked at write time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lsp_agent.permissions.committed import is_committed
from lsp_agent.permissions.safe_write import WriteScope, real_path, write_bytes_checked
from lsp_agent.permissions.settings import local_settings_path


def remember_in_local_settings(workspace: Path, key: str, values: list[str]) -> Path:
    """Add ``values`` (those not there yet) to the list ``key`` of the local settings."""
    path = local_settings_path(workspace)
    if path.is_file() and is_committed(path):
        # Remembered there, the approval would reach everyone who clones the repository (and
        # is not honoured: settings.py reads a committed local file as project settings).
        raise ValueError(f"{path} is committed to the repository; approvals are not "
                         "remembered in it")
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text() or "{}")
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    listed = data.setdefault(key, [])
    listed += [v for v in values if v not in listed]
    path.parent.mkdir(parents=True, exist_ok=True)
    scope = WriteScope(roots=(real_path(path.parent),), protected_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists() and not ignore.is_symlink():
        write_bytes_checked(ignore, b"settings.local.json\n", scope)
    write_bytes_checked(path, (json.dumps(data, indent=2) + "\n").encode(), scope)
    return path
