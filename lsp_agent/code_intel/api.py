"""What the agent's code-intelligence tools ask of a provider: jedi for Python, the editor's
own language servers through the bridge, or both routed by file type. Positions here are
0-based lines and code-point columns. Answers are complete unless a ``limit`` is passed."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lsp_agent.code_intel.jedi_intel import HoverInfo, OutlineSymbol, QueryResult, SymbolLocation


class CodeIntel(Protocol):
    timeout: float  # seconds a query may take before it is reported as timed out
    tool_timeout: float  # seconds the agent's tools wait before they cancel a query

    @property
    def handles_all_languages(self) -> bool:
        """False: Python files only."""
        ...

    async def definition(self, path: Path, line: int,
                         column: int) -> QueryResult[SymbolLocation]: ...

    async def references(self, path: Path, line: int,
                         column: int) -> QueryResult[SymbolLocation]: ...

    async def hover(self, path: Path, line: int, column: int) -> QueryResult[HoverInfo]: ...

    async def document_symbols(self, path: Path) -> QueryResult[OutlineSymbol]: ...

    async def workspace_symbols(self, query: str,
                                limit: int | None = None) -> QueryResult[SymbolLocation]: ...
