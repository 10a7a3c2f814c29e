"""What the editor tells the agent about where the user is: a file, a range, the selection and
the diagnostics there. Positions are as the client sent them (see docs/protocol.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pygls.uris import to_fs_path

from lsp_agent.types.events import Wire


class Position(Wire):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(Wire):
    start: Position
    end: Position


class Diagnostic(Wire):
    range: Range
    message: str
    severity: int | None = None
    source: str | None = None
    code: int | str | None = None


class EditorContext(Wire):
    uri: str
    range: Range | None = None
    selection_text: str | None = None
    diagnostics: list[Diagnostic] = Field(default_factory=list)

    @property
    def path(self) -> Path:
        fs = to_fs_path(self.uri)
        if fs is None:
            raise ValueError(f"not a file URI: {self.uri}")
        return Path(fs)
