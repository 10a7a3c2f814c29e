"""What the client declared at ``initialize``, parsed once into a small typed object.

Everything the server does differently per client reads this object, never the raw
lsprotocol capabilities: a capability that is absent is ``False`` (LSP 3.17: a server must not
use what the client did not declare), so a client that declares nothing (LSP 3.0 style) gets
UTF-16 positions and a plain ``changes`` map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types as lsp

from lsp_agent.edits.workspace_edit import EditCaps
from lsp_agent.workspace.positions import DEFAULT_ENCODING, Encoding, choose_encoding


@dataclass(frozen=True)
class ClientCaps:
    position_encoding: Encoding = DEFAULT_ENCODING
    edits: EditCaps = field(default_factory=EditCaps.none)
    apply_edit: bool = False  # workspace.applyEdit
    show_document: bool = False  # window.showDocument.support
    code_action_resolve: bool = False  # resolveSupport.properties has "command"
    hierarchical_symbols: bool = False

    @classmethod
    def parse(cls, caps: lsp.ClientCapabilities | None) -> ClientCaps:
        encoding = choose_encoding(_get(caps, "general", "position_encodings"))
        workspace_edit = _get(caps, "workspace", "workspace_edit")
        edits = EditCaps(
            encoding=encoding,
            document_changes=bool(_get(workspace_edit, "document_changes")),
            change_annotations=_get(workspace_edit, "change_annotation_support") is not None,
            resource_operations=frozenset(
                str(op.value if hasattr(op, "value") else op)
                for op in _get(workspace_edit, "resource_operations") or ()),
        )
        resolve = _get(caps, "text_document", "code_action", "resolve_support", "properties")
        return cls(
            position_encoding=encoding,
            edits=edits,
            apply_edit=bool(_get(caps, "workspace", "apply_edit")),
            show_document=bool(_get(caps, "window", "show_document", "support")),
            code_action_resolve="command" in (resolve or ()),
            hierarchical_symbols=bool(_get(caps, "text_document", "document_symbol",
                                           "hierarchical_document_symbol_support")),
        )

    def summary(self) -> str:
        """One log line: what this client gets."""
        shape = "documentChanges" if self.edits.document_changes else "changes"
        extras = [name for name, on in (("annotations", self.edits.annotates),
                                        ("showDocument", self.show_document)) if on]
        ops = ",".join(sorted(self.edits.resource_operations)) or "none"
        return (f"positions {self.position_encoding}, edits as {shape}, resource operations "
                f"{ops}{'; ' + ', '.join(extras) if extras else ''}")


def _get(obj: Any, *names: str) -> Any:
    """``obj.a.b.c`` where any link may be missing (a client declares what it likes)."""
    for name in names:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj
