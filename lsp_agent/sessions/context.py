"""The editor context a prompt may carry (a file, a range, the selection, its diagnostics),
validated once and turned into the text the model reads.

On the wire its positions are in the client's encoding; the server converts them to code
points (lsp_agent.server.wire_positions) before a session sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules
from lsp_agent.permissions.untrusted import shown
from lsp_agent.types.editor import Diagnostic, EditorContext
from lsp_agent.workspace.documents import DocumentSource, FileReadError
from lsp_agent.workspace.encoding import printable
from lsp_agent.workspace.positions import split_lines

AROUND_LINES = 8
SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}


def describe_diagnostic(d: Diagnostic) -> str:
    sev = SEVERITY.get(d.severity or 1, "error")
    src = f" [{d.source}{' ' + str(d.code) if d.code is not None else ''}]" if d.source else ""
    return f"line {d.range.start.line + 1}:{d.range.start.character + 1}: {sev}{src} {d.message}"


def prompt_blocks(
    text: str, context: EditorContext | None, root: Path, documents: DocumentSource,
    file_rules: FileRules = DEFAULT_RULES,
) -> list[dict[str, Any]]:
    if context is None:
        return [{"type": "text", "text": text}]
    return [{"type": "text", "text": _context_text(context, root, documents, file_rules)},
            {"type": "text", "text": text}]


def _context_text(context: EditorContext, root: Path, documents: DocumentSource,
                  file_rules: FileRules = DEFAULT_RULES) -> str:
    path = context.path
    try:
        name = shown(str(path.relative_to(root)))
    except ValueError:
        name = shown(str(path))
    lines = [f"<editor-context file=\"{name}\">"]
    if context.range is not None:
        r = context.range
        lines.append(f"Range: lines {r.start.line + 1}-{r.end.line + 1}")
    if context.selection_text:
        lines += ["Selected text:", "```", context.selection_text, "```"]
    if context.diagnostics:
        lines.append("Diagnostics reported by the editor:")
        lines += [f"- {describe_diagnostic(d)}" for d in context.diagnostics]
    # The selection is what the user chose to send; the lines around it are not, and from a
    # secret file they stay out (the model can Read it, which asks).
    secret = file_rules.is_secret(path)
    around = None if secret else _code_around(context, path, documents)
    if secret and (context.range or context.diagnostics):
        lines.append(f"(The code around it is not included: {name} is a secret file. Read it "
                     "to ask the user for its content.)")
    if around:
        lines += ["Code around it (line numbers as Read shows them):", around]
    lines.append("</editor-context>")
    return "\n".join(lines)


def _code_around(context: EditorContext, path: Path, documents: DocumentSource) -> str | None:
    anchor = context.range or (context.diagnostics[0].range if context.diagnostics else None)
    if anchor is None:
        return None
    try:
        text = printable(documents.snapshot(path).text)
    except (OSError, FileReadError):
        return None
    all_lines = split_lines(text)
    first = max(0, anchor.start.line - AROUND_LINES)
    last = min(len(all_lines), anchor.end.line + AROUND_LINES + 1)
    return "\n".join(f"{n + 1:6}\t{all_lines[n]}" for n in range(first, last))
