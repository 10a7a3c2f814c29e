"""Custom slash commands: markdown files whose body becomes the prompt.

``.lsp-agent/commands/`` and ``.claude/commands/`` (project), ``$XDG_CONFIG_HOME/lsp-agent/
commands`` and ``~/.claude/commands`` (user), a plugin's ``commands/`` (``/plugin:name``). A
file in a subfolder is ``/folder:name``. First found wins for a name, user before project (a
repository does not replace the user's own commands); a skill of the same name wins over a
command. Frontmatter: ``description``, ``argument-hint``, ``allowed-tools``, ``model``.

The body may use ``$ARGUMENTS`` (everything after the name), ``$1``..``$9`` (words, quotes
respected), ``@path`` (the file's text, through the secret-file rules) and ``!`cmd` `` (the
command's output: judged by the permission engine like a Bash call, after ``allowed-tools``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from lsp_agent.extensions.frontmatter import FrontmatterError, split, tool_list
from lsp_agent.permissions.secrets import FileRules

MAX_COMMAND_BYTES = 200_000
MAX_COMMANDS = 500
MAX_INCLUDE_BYTES = 200_000
_POSITIONAL = re.compile(r"\$([1-9])")
_INCLUDE = re.compile(r"(?<![\w`])@([\w.\-/~]*[\w\-])")
_SHELL = re.compile(r"!`([^`\n]+)`")


@dataclass
class CustomCommand:
    name: str
    description: str
    file: Path
    source: str  # user, project, plugin:<name>
    argument_hint: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    model: str | None = None

    def body(self) -> str:
        _, body = split(self.file.read_text(encoding="utf-8", errors="replace"))
        return body


def load_commands(roots: list[tuple[str, Path]], warnings: list[str],
                  prefix: str = "") -> dict[str, CustomCommand]:
    commands: dict[str, CustomCommand] = {}
    for source, root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.md"))[:MAX_COMMANDS]:
            rel = path.relative_to(root).with_suffix("")
            name = prefix + ":".join(rel.parts)
            command = _read(path, name, source, warnings)
            if command is None:
                continue
            if name in commands:
                warnings.append(f"{path}: the command /{name} is already defined in "
                                f"{commands[name].file}, which takes precedence")
                continue
            commands[name] = command
    return commands


def _read(path: Path, name: str, source: str, warnings: list[str]) -> CustomCommand | None:
    try:
        if path.stat().st_size > MAX_COMMAND_BYTES:
            warnings.append(f"{path}: larger than {MAX_COMMAND_BYTES} bytes; ignored")
            return None
        meta, body = split(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, FrontmatterError) as exc:
        warnings.append(f"{path}: {exc}; the command /{name} is not loaded")
        return None
    first = next((ln.strip().lstrip("#").strip() for ln in body.splitlines() if ln.strip()), "")
    hint = meta.get("argument-hint")
    return CustomCommand(name=name, description=str(meta.get("description") or first[:200]),
                         file=path, source=source,
                         argument_hint=str(hint) if hint not in (None, "") else None,
                         allowed_tools=tool_list(meta.get("allowed-tools")),
                         model=str(meta["model"]) if meta.get("model") else None)


def substitute_arguments(body: str, arguments: str) -> str:
    """``$ARGUMENTS`` and ``$1``..``$9``; arguments are appended when the body uses neither
    (so that nothing the user typed is lost)."""
    try:
        words = shlex.split(arguments)
    except ValueError:
        words = arguments.split()
    used = "$ARGUMENTS" in body or _POSITIONAL.search(body) is not None
    text = body.replace("$ARGUMENTS", arguments)
    text = _POSITIONAL.sub(lambda m: words[int(m.group(1)) - 1]
                           if int(m.group(1)) <= len(words) else "", text)
    if not used and arguments.strip():
        text += f"\n\nARGUMENTS: {arguments}"
    return text


def include_files(text: str, workspace: Path, rules: FileRules) -> str:
    """``@path`` replaced by the file's text (inside the workspace; never a secret file)."""

    def one(match: re.Match[str]) -> str:
        raw = match.group(1)
        path = (workspace / raw).resolve()
        if not path.is_relative_to(workspace.resolve()):
            return f"@{raw} (not included: outside the workspace)"
        if rules.is_secret(path) or rules.is_secret(workspace / raw):
            return f"@{raw} (not included: a secret file)"
        try:
            if not path.is_file():  # a folder, a FIFO, nothing: an @mention left as typed
                return match.group(0)
            with path.open("rb") as handle:
                data = handle.read(MAX_INCLUDE_BYTES)
        except OSError:
            return match.group(0)
        content = data.decode("utf-8", errors="replace")
        return f"@{raw}:\n```\n{content}\n```"

    return _INCLUDE.sub(one, text)


async def run_shell_snippets(text: str, run: Callable[[str], Awaitable[str]]) -> str:
    """``!`cmd` `` replaced by what ``run`` gives (output, or why it did not run)."""
    out, last = [], 0
    for match in _SHELL.finditer(text):
        out.append(text[last:match.start()])
        out.append(await run(match.group(1)))
        last = match.end()
    out.append(text[last:])
    return "".join(out)
