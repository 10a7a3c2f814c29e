"""Output styles: how the agent responds, in Claude Code's format.

A style is a markdown file in ``output-styles/`` (user level: ``$XDG_CONFIG_HOME/lsp-agent/``
and ``~/.claude/``; project: ``.lsp-agent/`` and ``.claude/``; enabled plugins) with the
frontmatter ``name`` (default: the file's stem), ``description`` and
``keep-coding-instructions``; its body is the instructions. The session's style comes from
``outputStyle`` in the settings (highest source first) or ``/output-style <name>``.

Its text goes into the system prompt as a block after the cached static layer, so choosing or
changing a style never invalidates the prefix shared by every session (tools + static system).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.extensions.frontmatter import FrontmatterError, split
from lsp_agent.permissions.settings import candidate_files, read_json_object

DEFAULT = "default"
MAX_STYLE_BYTES = 100_000
MAX_STYLES = 100  # per folder


@dataclass(frozen=True)
class OutputStyle:
    name: str
    description: str
    prompt: str
    keep_coding_instructions: bool = False
    source: str = "built-in"


def load_styles(roots: list[tuple[str, Path]], warnings: list[str]) -> dict[str, OutputStyle]:
    """Styles under ``roots`` (precedence order: the first of a name wins)."""
    styles: dict[str, OutputStyle] = {}
    for source, folder in roots:
        try:
            files = sorted(folder.glob("*.md"))[:MAX_STYLES] if folder.is_dir() else []
        except OSError as exc:
            warnings.append(f"{folder}: cannot list output styles ({exc})")
            continue
        for path in files:
            style = read_style(path, source, warnings)
            if style is not None and style.name != DEFAULT:
                styles.setdefault(style.name, style)
    return styles


def read_style(path: Path, source: str, warnings: list[str]) -> OutputStyle | None:
    try:
        if path.stat().st_size > MAX_STYLE_BYTES:
            raise ValueError(f"larger than {MAX_STYLE_BYTES:,} bytes")
        meta, body = split(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, FrontmatterError, ValueError) as exc:
        warnings.append(f"{path}: output style skipped ({exc})")
        return None
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.stem
    if not body.strip():
        warnings.append(f"{path}: output style has no instructions; skipped")
        return None
    description = meta.get("description")
    return OutputStyle(str(name).strip(), description if isinstance(description, str) else "",
                       body.strip(), meta.get("keep-coding-instructions") is True, source)


def configured_style(workspace: Path, options: dict[str, Any] | None) -> str | None:
    """``outputStyle`` of the highest settings source that sets it."""
    if options and isinstance(options.get("outputStyle"), str):
        return str(options["outputStyle"])
    for _scope, path in candidate_files(workspace):
        data = read_json_object(path, [])
        if data is not None and isinstance(data.get("outputStyle"), str):
            return str(data["outputStyle"])
    return None


def style_block(style: OutputStyle) -> dict[str, Any]:
    """The system block for the chosen style (never cached on its own: it follows the
    static layer's breakpoint)."""
    scope = ("The coding instructions above still apply." if style.keep_coding_instructions
             else "Where it differs from the instructions above about how to respond and "
                  "work, it wins.")
    return {"type": "text", "text": (
        f"<output-style name=\"{style.name}\">\nThe user chose this output style. {scope}\n\n"
        f"{style.prompt}\n</output-style>")}
