"""Agent types a session can delegate to: the built-in ones and custom agents from markdown.

A custom agent is a markdown file with a frontmatter block (Claude Code's format, read
unchanged): ``name`` and ``description`` are required; ``tools`` (all when omitted),
``disallowedTools``, ``model`` (``inherit``, an alias or a model id), ``permissionMode`` and
``maxTurns`` are optional; the body is the agent's system prompt. Files are read from, in
increasing precedence, the user's ``~/.claude/agents`` and ``~/.lsp-agent/agents``, then the
workspace's ``.claude/agents`` and ``.lsp-agent/agents``: a later definition of a name replaces
an earlier one. A file that cannot be used is skipped with a warning naming it; an unknown
tool name is a warning too, and the tool is ignored.

The frontmatter is parsed here, not with a YAML library: the fields are scalars and lists of
names, and a small reader keeps the dependency list as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lsp_agent.types.permissions import MODES, Mode

MAX_FILE_BYTES = 256_000
MAX_AGENT_FILES = 200  # per folder: a runaway folder must not slow session start

# Read-only work: what Explore and Plan may use (access "read"/"session" tools, see below).
READ_ONLY = "read-only"
ISOLATIONS = ("worktree",)


@dataclass(frozen=True)
class AgentType:
    name: str
    description: str
    prompt: str
    # Tool names allowed (None: every tool of the session), or READ_ONLY as its only item.
    tools: tuple[str, ...] | None = None
    disallowed: tuple[str, ...] = ()
    model: str | None = None  # None or "inherit": the parent's model
    permission_mode: Mode | None = None
    max_turns: int | None = None
    source: str = "built-in"
    isolation: str | None = None  # "worktree": the child works in a git worktree of its own
    # The model setting (ModelSettings field) giving its model when the call names none.
    model_setting: str | None = None


GENERAL_PROMPT = (
    "You are a subagent of lsp-agent, a coding agent working in the user's editor. The main "
    "agent gave you the task below. Do it completely with the tools you have, then answer with "
    "a concise report of what you found or did: your final message is all the main agent sees "
    "(not your tool calls or their output), so include the paths, names and facts it needs.")
EXPLORE_PROMPT = (
    "You are Explore, a read-only subagent that finds things in a codebase fast. Search with "
    "Grep and Glob, read only the parts of files you need, and answer with the locations "
    "(path:line) and a short explanation. You cannot change files or run commands.")
PLAN_PROMPT = (
    "You are Plan, a read-only subagent that designs an implementation. Study the code that "
    "the task touches, then answer with a step-by-step plan: the files to change, what to "
    "change in each, the order, and the risks and tests. You cannot change files or run "
    "commands.")

BUILTIN_TYPES: tuple[AgentType, ...] = (
    AgentType("general-purpose", "General agent for multi-step research and coding tasks; "
              "has every tool.", GENERAL_PROMPT),
    AgentType("Explore", "Fast read-only agent for finding files, symbols and answers in the "
              "codebase.", EXPLORE_PROMPT, tools=(READ_ONLY,), model_setting="explore_model"),
    AgentType("Plan", "Read-only agent that studies the code and returns an implementation "
              "plan.", PLAN_PROMPT, tools=(READ_ONLY,)),
)


@dataclass
class AgentCatalog:
    """The agent types of one workspace, by name, and what was wrong with the files read."""

    types: dict[str, AgentType] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str) -> AgentType | None:
        return self.types.get(name)

    def names(self) -> list[str]:
        return list(self.types)


def agent_dirs(workspace: Path, home: Path | None = None) -> list[Path]:
    """Where custom agents live, lowest precedence first."""
    home = home if home is not None else Path.home()
    return [home / ".claude" / "agents", home / ".lsp-agent" / "agents",
            workspace / ".claude" / "agents", workspace / ".lsp-agent" / "agents"]


def load_catalog(workspace: Path, known_tools: Iterable[str],
                 home: Path | None = None) -> AgentCatalog:
    """Built-in types plus the custom agents found for ``workspace`` (blocking: file reads)."""
    catalog = AgentCatalog({t.name: t for t in BUILTIN_TYPES})
    known = set(known_tools)
    for folder in agent_dirs(workspace, home):
        try:
            files = sorted(folder.glob("*.md"))[:MAX_AGENT_FILES] if folder.is_dir() else []
        except OSError as exc:
            catalog.warnings.append(f"{folder}: cannot list custom agents ({exc})")
            continue
        for path in files:
            agent = read_agent_file(path, known, catalog.warnings)
            if agent is not None:
                catalog.types[agent.name] = agent
    return catalog


def read_agent_file(path: Path, known_tools: set[str], warnings: list[str]) -> AgentType | None:
    """One custom agent, or None (with a warning naming the file) when it cannot be used."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            warnings.append(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; skipped")
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"{path}: cannot be read ({exc}); skipped")
        return None
    try:
        fields, body = split_frontmatter(text)
    except ValueError as exc:
        warnings.append(f"{path}: {exc}; skipped")
        return None
    name, description = _text(fields.get("name")), _text(fields.get("description"))
    if not name or not re.fullmatch(r"[\w.-]{1,64}", name):
        warnings.append(f"{path}: needs a 'name' of letters, digits, '-', '_' or '.'; skipped")
        return None
    if not description:
        warnings.append(f"{path}: needs a 'description'; skipped")
        return None
    tools = _tool_list(fields.get("tools"), known_tools, path, warnings)
    disallowed = _tool_list(fields.get("disallowedTools"), known_tools, path, warnings) or ()
    mode = _text(fields.get("permissionMode")) or None
    if mode is not None and mode not in MODES:
        warnings.append(f"{path}: unknown permissionMode {mode!r} ignored "
                        f"(one of {', '.join(MODES)})")
        mode = None
    max_turns = _positive(fields.get("maxTurns"), path, warnings)
    model = _text(fields.get("model")) or None
    isolation = _text(fields.get("isolation")) or None
    if isolation is not None and isolation not in ISOLATIONS:
        warnings.append(f"{path}: unknown isolation {isolation!r} ignored (only 'worktree')")
        isolation = None
    return AgentType(name, description, body.strip() or GENERAL_PROMPT, tools=tools,
                     disallowed=tuple(disallowed), model=None if model == "inherit" else model,
                     permission_mode=mode, max_turns=max_turns,
                     source=str(path), isolation=isolation)


def split_frontmatter(text: str) -> tuple[dict[str, str | list[str]], str]:
    """(fields, body) of a markdown file that starts with a ``---`` block. Values are strings,
    or lists for ``[a, b]`` and for ``- item`` lines under a key."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError("no frontmatter: the file must start with a '---' line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ValueError("the frontmatter has no closing '---' line") from None
    fields: dict[str, str | list[str]] = {}
    key: str | None = None
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"\s*-\s+(.*)$", line)
        if item and key is not None and isinstance(fields.get(key), list):
            fields[key].append(_unquote(item.group(1)))  # type: ignore[union-attr]
            continue
        match = re.match(r"([A-Za-z][\w-]*)\s*:\s*(.*)$", line)
        if not match:
            raise ValueError(f"line {number} of the frontmatter is not 'key: value': {line!r}")
        key, value = match.group(1), match.group(2).strip()
        if value.startswith("[") and value.endswith("]"):
            fields[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
        elif value in ("", "|", ">"):
            fields[key] = []  # a list (or block text) follows on the next lines
        else:
            fields[key] = _unquote(value)
    return fields, "\n".join(lines[end + 1:])


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _text(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return " ".join(value).strip()
    return (value or "").strip()


def _tool_list(value: str | list[str] | None, known: set[str], path: Path,
               warnings: list[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value if isinstance(value, list) else value.split(",")
    kept = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name not in known:
            warnings.append(f"{path}: unknown tool {name!r} ignored")
            continue
        kept.append(name)
    return tuple(kept)


def _positive(value: str | list[str] | None, path: Path, warnings: list[str]) -> int | None:
    if value is None:
        return None
    text = _text(value)
    if text.isdigit() and int(text) > 0:
        return int(text)
    warnings.append(f"{path}: maxTurns must be a positive whole number, not {text!r}; ignored")
    return None
