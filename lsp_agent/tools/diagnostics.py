"""Diagnostics: the errors and warnings the editor's language tooling reported.

Positions arrive as LSP JSON (0-based line and character) and are shown 1-based, the way
compilers print them and the way Read numbers lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.tools.base import Tool, ToolContext, ToolError

SEVERITIES = {1: "error", 2: "warning", 3: "info", 4: "hint"}


class DiagnosticsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        default=None,
        description="File (or folder) to report on; omit for every file with diagnostics.",
    )


class Diagnostics(Tool):
    name = "Diagnostics"
    description = (
        "List the errors and warnings the editor currently reports (type checker, linter, "
        "compiler) as 'path:line:column: severity [source code] message'. Use it after "
        "editing to check your change, or to find what is broken. Reflects the editor's "
        "current text, including unsaved changes."
    )
    input_model = DiagnosticsInput
    access = "read"

    async def call(self, args: DiagnosticsInput, ctx: ToolContext) -> str:
        target = ctx.resolve(args.path) if args.path else None
        if target is not None and not target.is_dir():
            found = {target: await ctx.diagnostics.diagnostics(target)}
        else:
            found = await _all_diagnostics(ctx, target)
        # A message may quote the line it is about: secret files only when asked for by name.
        secret = [p for p in found if p != target and ctx.file_rules.is_secret(p)]
        for path in secret:
            del found[path]
        lines = [
            format_diagnostic(ctx.display(path), item)
            for path in sorted(found)
            for item in sorted(found[path], key=_position)
        ]
        if not lines and target is not None and not target.exists():
            raise ToolError(f"File not found: {ctx.display(target)}")
        note = ""
        if secret:
            names = ", ".join(ctx.display(p) for p in sorted(secret)[:5])
            note = (f"\n(Diagnostics of secret files left out: {names}. Ask for one by its path; "
                    "that asks the user first.)")
        if not lines:
            scope = ctx.display(target) if target is not None else "the workspace"
            return f"No diagnostics reported for {scope}." + note
        return "\n".join(lines) + note


async def _all_diagnostics(ctx: ToolContext, folder: Path | None) -> dict[Path, list[dict]]:
    """Every reported file (optionally under ``folder``): an optional ``all_diagnostics()``
    on the source, since the protocol itself only answers per path."""
    source_all = getattr(ctx.diagnostics, "all_diagnostics", None)
    if source_all is None:
        raise ToolError("Diagnostics are only available per file here; pass a file path.")
    reported = source_all()
    if hasattr(reported, "__await__"):
        reported = await reported
    return {
        Path(path): items
        for path, items in reported.items()
        if items and (folder is None or Path(path).is_relative_to(folder))
    }


def format_diagnostic(rel: str, item: dict[str, Any]) -> str:
    start = item.get("range", {}).get("start", {})
    line, column = start.get("line", 0) + 1, start.get("character", 0) + 1
    severity = SEVERITIES.get(item.get("severity", 1), "error")
    label = " ".join(
        str(part) for part in (item.get("source"), item.get("code")) if part not in (None, "")
    )
    tag = f" [{label}]" if label else ""
    message = str(item.get("message", "")).strip().replace("\n", "\n    ")
    return f"{rel}:{line}:{column}: {severity}{tag} {message}"


def _position(item: dict[str, Any]) -> tuple[int, int]:
    start = item.get("range", {}).get("start", {})
    return start.get("line", 0), start.get("character", 0)


DIAGNOSTICS_TOOLS: list[type[Tool]] = [Diagnostics]
