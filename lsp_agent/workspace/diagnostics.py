"""Diagnostics as the editor reported them.

A language server does not see other servers' diagnostics, so the editor tells us: every code
action request and every prompt context carries the diagnostics at hand, and we keep the latest
per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.types.editor import EditorContext


class DiagnosticsStore:
    def __init__(self) -> None:
        self._by_path: dict[Path, list[dict[str, Any]]] = {}

    def update(self, path: Path, diagnostics: list[dict[str, Any]]) -> None:
        if diagnostics:
            known = self._by_path.setdefault(path, [])
            for d in diagnostics:
                if d not in known:
                    known.append(d)

    def replace(self, path: Path, diagnostics: list[dict[str, Any]]) -> None:
        self._by_path[path] = list(diagnostics)

    def remember(self, context: EditorContext) -> None:
        self.update(context.path, [d.wire() for d in context.diagnostics])

    async def diagnostics(self, path: Path) -> list[dict[str, Any]]:
        return list(self._by_path.get(path, []))

    def all_diagnostics(self) -> dict[Path, list[dict[str, Any]]]:
        return {p: list(d) for p, d in self._by_path.items() if d}
