"""Permission rules ``Tool`` or ``Tool(pattern)``.

* ``Bash(git status)`` matches that exact command; ``Bash(npm run test:*)`` any command
  starting with ``npm run test`` followed by a space, a colon or nothing; ``*`` elsewhere
  matches any text. Rules match each command of a compound line separately.
* ``Edit(src/**)``, ``Read(~/.ssh/**)``: gitignore-style globs. ``**`` crosses folders, ``*``
  does not. ``//abs`` is an absolute path, ``~/`` the home folder, ``/x`` and ``x`` are
  relative to the rule's root (the workspace). ``Edit`` rules cover every tool that declares
  it writes files (Edit, Write); ``Read`` rules every tool that declares it reads them (Read,
  Grep, Glob, the code-intelligence tools): the aliases follow the tools present, not a list.
* ``mcp__server__tool``, ``mcp__server`` and ``mcp__server__*`` match MCP tools by name.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.types.globs import glob_to_regex

# A rule named after one of these covers every tool whose calls touch files that way.
ALIASES = {"Edit": "write", "Read": "read"}
_RULE = re.compile(r"^\s*([A-Za-z0-9_.*\-]+)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_INTERPRETERS = ("python", "python3", "node", "bash", "sh", "zsh", "perl", "ruby", "npx",
                 "sudo", "env", "xargs", "eval", "exec", "uv", "pipx", "deno", "php", "docker")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    tool: str
    pattern: str | None
    source: str = "session"  # where it came from, shown in decisions
    root: Path | None = None  # what relative path patterns are relative to

    @classmethod
    def parse(cls, text: str, source: str = "session", root: Path | None = None) -> Rule:
        match = _RULE.match(text)
        if not match:
            raise RuleError(f"not a permission rule: {text!r} (expected Tool or Tool(pattern))")
        tool, pattern = match.group(1), match.group(2)
        if pattern is not None:
            pattern = pattern.strip()
            if pattern in {"", "*"} and tool != "Bash":
                pattern = None
        return cls(tool, pattern if pattern not in {"", "*"} else None, source, root)

    def __str__(self) -> str:
        return f"{self.tool}({self.pattern})" if self.pattern else self.tool

    def applies_to(self, tool: str, access: str | None = None) -> bool:
        """Whether this rule speaks of ``tool``, whose calls touch things as ``access`` says."""
        if self.tool == tool:
            return True
        if access is not None and ALIASES.get(self.tool) == access:
            return True
        if self.tool.startswith("mcp__") and tool.startswith("mcp__"):
            prefix = self.tool.removesuffix("__*")
            return tool == prefix or tool.startswith(prefix + "__")
        return False

    def matches_command(self, command: str) -> bool:
        return self.pattern is None or _command_regex(self.pattern).fullmatch(command) is not None

    def matches_path(self, path: Path, workspace: Path) -> bool:
        if self.pattern is None:
            return True
        root = self.root or workspace
        pattern = self.pattern
        if pattern.startswith("//"):
            full = pattern[1:]
        elif pattern.startswith("~/") or pattern == "~":
            full = str(Path.home()) + pattern[1:]
        else:
            full = str(root / pattern.lstrip("/").removeprefix("./"))
        return _path_regex(full).fullmatch(str(path)) is not None

    def broadness(self) -> str | None:
        """Why this allow rule is too broad to be safe, or None."""
        if self.tool == "Bash":
            if self.pattern is None or self.pattern.strip() in {"*", ":*"}:
                return f"{self} allows every shell command"
            head = self.pattern.split()[0].removesuffix(":*").removesuffix("*")
            rest = self.pattern[len(head):].strip()
            if head in _INTERPRETERS and rest in {"", ":*", "*"}:
                return f"{self} allows {head} to run arbitrary code"
        if self.tool in {"Edit", "Write"} and self.pattern in {None, "**", "/**", "//**", "~/**"}:
            return f"{self} allows writing anywhere"
        return None


@functools.lru_cache(maxsize=512)
def _command_regex(pattern: str) -> re.Pattern[str]:
    if pattern.endswith(":*"):
        return re.compile(re.escape(pattern[:-2]) + r"(?:[\s:].*)?", re.DOTALL)
    parts = [re.escape(part) for part in pattern.split("*")]
    return re.compile(".*".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=512)
def _path_regex(pattern: str) -> re.Pattern[str]:
    # "[" stays literal in rules: folders such as app/[id]/ are common.
    text = glob_to_regex(pattern, classes=False, folder_itself=True)
    if not pattern.endswith(("*", "/")):
        text += r"(?:/.*)?"  # a folder covers what is inside it
    return re.compile(text, re.DOTALL)
