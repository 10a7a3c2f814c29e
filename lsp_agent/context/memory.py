"""Memory files: standing instructions the user keeps in AGENTS.md / CLAUDE.md.

Where they are looked for, in the order they reach the model:

1. user level: ``AGENTS.md`` and ``CLAUDE.md`` in ``$LSP_AGENT_CONFIG_DIR`` when it is set,
   otherwise in ``~/.config/lsp-agent`` and ``~/.claude``;
2. the workspace root: ``AGENTS.md``, ``CLAUDE.md``, then the untracked local variants
   ``AGENTS.local.md`` and ``CLAUDE.local.md`` (meant to be git-ignored);
3. nested folders of the workspace: the same names, loaded the first time the agent reads a file
   beneath that folder (so a large monorepo pays only for the parts the agent visits).

A line may import another file with ``@path`` (relative to the importing file, or ``~/...``).
Imports nest up to 5 levels, each file is included once, and files of the workspace may only
import files inside the workspace: a cloned repository cannot pull the user's private files
into the prompt. Secret files (``.env``, keys; see ``permissions.secrets``) are never imported.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules

MEMORY_NAMES = ("AGENTS.md", "CLAUDE.md", "AGENTS.local.md", "CLAUDE.local.md")
MAX_IMPORT_DEPTH = 5
MAX_FILE_CHARS = 40_000
MAX_TOTAL_CHARS = 120_000
# "@path" at the start of a line or after whitespace; not e-mail addresses or decorators.
_IMPORT = re.compile(r"(?:(?<=\s)|^)@((?:~/|\.{1,2}/|/)?[\w.\-/]+\.[\w]+)", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


@dataclass(frozen=True)
class MemoryFile:
    path: Path
    scope: str  # "user", "project", "nested", "import"
    text: str


def user_memory_dirs() -> list[Path]:
    config = os.environ.get("LSP_AGENT_CONFIG_DIR")
    if config:
        return [Path(config).expanduser()]
    home = Path.home()
    return [home / ".config" / "lsp-agent", home / ".claude"]


def _read(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if len(text) > MAX_FILE_CHARS:
        text = text[:MAX_FILE_CHARS] + f"\n[... cut at {MAX_FILE_CHARS:,} characters ...]"
    return text


def _import_targets(text: str) -> list[str]:
    prose = _INLINE_CODE.sub("", _FENCE.sub("", text))
    return _IMPORT.findall(prose)


class MemoryLoader:
    """Finds memory files and expands their imports; remembers what was loaded already."""

    def __init__(self, workspace: Path, user_dirs: list[Path] | None = None,
                 file_rules: FileRules = DEFAULT_RULES):
        self.workspace = workspace.resolve()
        self.file_rules = file_rules
        self.user_dirs = user_memory_dirs() if user_dirs is None else user_dirs
        self._seen: set[Path] = set()
        self._visited_dirs: set[Path] = {self.workspace}
        self._chars = 0

    def initial(self) -> list[MemoryFile]:
        """User-level and workspace-root files (with their imports), in prompt order."""
        found: list[MemoryFile] = []
        for folder in self.user_dirs:
            for name in ("AGENTS.md", "CLAUDE.md"):
                found += self._load(folder / name, "user", allowed_root=None)
        for name in MEMORY_NAMES:
            found += self._load(self.workspace / name, "project", self.workspace)
        return found

    def for_path(self, path: Path) -> list[MemoryFile]:
        """Nested memory files of the folders between the workspace root and ``path`` that were
        not visited before, outermost first. Paths outside the workspace load nothing."""
        try:
            relative = path.resolve().relative_to(self.workspace)
        except (ValueError, OSError):
            return []
        found: list[MemoryFile] = []
        folder = self.workspace
        for part in relative.parts[:-1]:
            folder = folder / part
            if folder in self._visited_dirs:
                continue
            self._visited_dirs.add(folder)
            for name in MEMORY_NAMES:
                found += self._load(folder / name, "nested", self.workspace)
        return found

    def _load(self, path: Path, scope: str, allowed_root: Path | None,
              depth: int = 0) -> list[MemoryFile]:
        try:
            resolved = path.expanduser().resolve()
        except OSError:
            return []
        if resolved in self._seen or self._chars >= MAX_TOTAL_CHARS:
            return []
        if allowed_root is not None and not resolved.is_relative_to(allowed_root):
            return []
        if scope == "import" and self.file_rules.is_secret(path.expanduser()):
            return []  # "@.env" in a memory file must not put the secret in the prompt
        text = _read(resolved)
        if text is None:
            return []
        self._seen.add(resolved)
        text = text[: MAX_TOTAL_CHARS - self._chars]
        self._chars += len(text)
        found = [MemoryFile(resolved, scope, text)]
        if depth < MAX_IMPORT_DEPTH:
            for target in _import_targets(text):
                raw = Path(target).expanduser()
                child = raw if raw.is_absolute() else resolved.parent / raw
                found += self._load(child, "import", allowed_root, depth + 1)
        return found


def render_memory(files: list[MemoryFile], root: Path) -> str:
    """The memory files as one prompt text, each under a header naming it."""
    parts = []
    for f in files:
        try:
            shown = f.path.relative_to(root)
        except ValueError:
            shown = f.path
        parts.append(f"Contents of {shown} ({_SCOPE_NOTE[f.scope]}):\n\n{f.text.strip()}")
    return "\n\n".join(parts)


_SCOPE_NOTE = {
    "user": "the user's instructions for all projects",
    "project": "instructions for this project",
    "nested": "instructions for files in this folder",
    "import": "imported by the file above",
}
