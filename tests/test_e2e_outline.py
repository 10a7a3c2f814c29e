"""End to end: textDocument/documentSymbol follows the buffer through edits and repeats.

The server keeps each file's outline with the text it came from (JediIntel) and the converted
answer with the result it came from (language_features): a repeated question about an
unchanged buffer must give the same answer, and every edit -- also one that goes back to an
earlier text, or a version bump without a change -- must answer about the text as it is now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp

from lsp_agent.scripted.server import ScriptedModelServer
from tests.e2e_harness import VSCODE_CAPABILITIES, Editor, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SHAPES = '''\
import math


class Circle:
    def __init__(self, radius):
        self.radius = radius

    @property
    def area(self):
        return math.pi * self.radius ** 2


UNIT = Circle(1)
'''
ADDED = SHAPES + '''

def scale(shape, factor):
    return Circle(shape.radius * factor)
'''
HIERARCHICAL = lsp.ClientCapabilities(
    general=VSCODE_CAPABILITIES.general, workspace=VSCODE_CAPABILITIES.workspace,
    text_document=lsp.TextDocumentClientCapabilities(
        document_symbol=lsp.DocumentSymbolClientCapabilities(
            hierarchical_document_symbol_support=True)))


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def start(model):
    editors: list[Editor] = []

    async def started(root: Path, capabilities: lsp.ClientCapabilities) -> Editor:
        editor = await start_editor(model.base_url, root, capabilities)
        editors.append(editor)
        return editor

    yield started
    for editor in editors:
        await editor.client.shutdown_session()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "shapes.py").write_text(SHAPES)
    return root


def names(symbols: list[Any]) -> list[str]:
    """Every entry, depth first (DocumentSymbol trees or flat SymbolInformation)."""
    out: list[str] = []
    for symbol in symbols:
        out.append(symbol.name)
        out += names(getattr(symbol, "children", None) or [])
    return out


@pytest.mark.parametrize("capabilities", [HIERARCHICAL, VSCODE_CAPABILITIES],
                         ids=["hierarchical", "flat"])
async def test_outline_follows_edits_and_repeats_unchanged(start, project, capabilities):
    editor = await start(project, capabilities)
    shapes = project / "shapes.py"
    editor.open(shapes)
    document = lsp.TextDocumentIdentifier(uri=uri(shapes))

    async def outline() -> list[Any]:
        return await editor.client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(text_document=document))

    first = await outline()
    again = await outline()
    editor.type_text(shapes, ADDED)
    added = await outline()
    editor.type_text(shapes, SHAPES)  # back to the first text
    back = await outline()
    editor.type_text(shapes, SHAPES)  # a new version of the same text
    same = await outline()

    assert names(first) == ["math", "Circle", "__init__", "radius", "area", "UNIT"]
    assert again == first and back == first and same == first
    assert names(added) == [*names(first), "scale"]
    assert isinstance(added[-1], lsp.DocumentSymbol if capabilities is HIERARCHICAL
                      else lsp.SymbolInformation)
