"""End to end: position encodings, edit shapes and verified application, per client.

Each test starts the real server with a test editor that declares what a real client declares
(VS Code, Neovim 0.11, an LSP 3.0 client that declares nothing, one that offers only UTF-32)
and behaves like it when applying edits (see tests/e2e_harness.py). Expected wire columns are
computed here with ``str.encode``, independently of the server's conversion code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.types import events as ev
from tests.e2e_harness import (
    NEOVIM_CAPABILITIES,
    VSCODE_CAPABILITIES,
    Editor,
    start_editor,
    uri,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Accents, CJK and an emoji outside the BMP before the call on one line: 16 code points that are
# 32 UTF-8 bytes and 17 UTF-16 units, so a server mixing units lands on "7" or "2" instead.
UNICODE_LINE = 'mot = "éàç中文😀"; résumé = subtract(7, 2)\n'
CALC = (
    '"""Petits calculs."""\n'
    "\n"
    "\n"
    "def subtract(a: int, b: int) -> int:\n"
    "    return a - b\n"
    "\n"
    "\n"
    + UNICODE_LINE
    + 'fin = "thé"'  # the last line has no newline
)
DEF_LINE, CALL_LINE, LAST_LINE = 3, 7, 8
CODECS = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}


def wire(text: str, encoding: str) -> int:
    """The wire length of ``text`` in ``encoding``, by the standard library's codecs."""
    codec, unit = CODECS[encoding]
    return len(text.encode(codec)) // unit


def wire_position(line_text: str, line: int, column: int, encoding: str) -> lsp.Position:
    return lsp.Position(line=line, character=wire(line_text[:column], encoding))


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "calc.py").write_text(CALC)
    return root


class Started:
    """Editors started by a test, shut down at its end."""

    def __init__(self, model: ScriptedModelServer):
        self.model = model
        self.editors: list[Editor] = []

    async def __call__(self, root: Path, capabilities: lsp.ClientCapabilities,
                       **options: Any) -> Editor:
        editor = await start_editor(self.model.base_url, root, capabilities, **options)
        self.editors.append(editor)
        return editor


@pytest_asyncio.fixture(loop_scope="module")
async def start(model):
    started = Started(model)
    yield started
    for editor in started.editors:
        await editor.client.shutdown_session()


def caps_offering(*encodings: str) -> lsp.ClientCapabilities:
    return lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=list(encodings)),
        workspace=VSCODE_CAPABILITIES.workspace)


def edit_turns(path: str, old: str, new: str) -> list[dict]:
    return [{"content": [{"type": "tool_use", "name": "Edit",
                          "input": {"path": path, "old_string": old, "new_string": new}}]},
            {"content": "done"}]


async def explain_selection(editor: Editor, path: Path, rng: lsp.Range) -> str:
    """The selected text the "Explain with agent" action carries once resolved."""
    actions = await editor.client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(path)), range=rng,
        context=lsp.CodeActionContext(diagnostics=[])))
    explain = next(a for a in actions if a.title == "Explain with agent")
    resolved = await editor.client.code_action_resolve_async(explain)
    return plain(resolved.command.arguments[0])["selectionText"]


async def propose_and_accept(editor: Editor, root: Path) -> tuple[dict, Any]:
    """Run a prompt that proposes an edit, accept it all; (review answer, last tool result)."""
    session = await editor.new_session(root)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "change it"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    review = await editor.request("agent/review",
                                  {"proposalId": created.proposal_id, "accept": "all"})
    assert (await prompt)["stopReason"] == "end_turn"
    result = [e for e in editor.of(session, ev.ToolResult)][-1]
    return review, result


# -- negotiation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capabilities", "chosen"),
    [
        (NEOVIM_CAPABILITIES, "utf-8"),  # offers utf-8 first
        (caps_offering("utf-32"), "utf-32"),  # offers only utf-32
        (caps_offering("utf-7", "utf-16"), "utf-16"),  # an unknown one is skipped
        (lsp.ClientCapabilities(), "utf-16"),  # declares nothing (LSP 3.0 style)
    ],
    ids=["neovim", "utf-32-only", "unknown-first", "nothing-declared"],
)
async def test_initialize_answers_the_negotiated_encoding(start, project, capabilities, chosen):
    editor = await start(project, capabilities)
    assert editor.init_result.capabilities.position_encoding == chosen


# -- positions in and out ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
async def test_definition_hover_and_references_after_accents_cjk_and_emoji(
    start, project, encoding
):
    editor = await start(project, caps_offering(encoding))
    calc = project / "calc.py"
    editor.open(calc)
    document = lsp.TextDocumentIdentifier(uri=uri(calc))
    column = UNICODE_LINE.index("subtract") + 2  # the cursor inside the name
    at = wire_position(UNICODE_LINE, CALL_LINE, column, encoding)

    [location] = await editor.client.text_document_definition_async(
        lsp.DefinitionParams(text_document=document, position=at))
    assert location.uri == uri(calc)  # not builtins.pyi: the cursor did not drift onto "7"
    assert (location.range.start.line, location.range.start.character) == (DEF_LINE, 4)

    hover = await editor.client.text_document_hover_async(
        lsp.HoverParams(text_document=document, position=at))
    assert "def subtract(a: int, b: int) -> int" in hover.contents.value
    start_column = UNICODE_LINE.index("subtract")
    assert hover.range == lsp.Range(
        start=wire_position(UNICODE_LINE, CALL_LINE, start_column, encoding),
        end=wire_position(UNICODE_LINE, CALL_LINE, start_column + len("subtract"), encoding))

    references = await editor.client.text_document_references_async(lsp.ReferenceParams(
        text_document=document, position=at,
        context=lsp.ReferenceContext(include_declaration=True)))
    starts = sorted((r.range.start.line, r.range.start.character) for r in references)
    assert starts == [(DEF_LINE, 4), (CALL_LINE, wire(UNICODE_LINE[:start_column], encoding))]

    symbols = await editor.client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=document))
    fin = next(s for s in symbols if s.name == "fin")
    assert fin.location.range.end == lsp.Position(line=LAST_LINE,
                                                  character=wire('fin = "thé"', encoding))


async def test_code_action_selection_is_cut_in_the_clients_units(start, project):
    editor = await start(project, NEOVIM_CAPABILITIES)
    calc = project / "calc.py"
    editor.open(calc)
    first = UNICODE_LINE.index("subtract")
    last = UNICODE_LINE.index(")") + 1
    selection = lsp.Range(start=wire_position(UNICODE_LINE, CALL_LINE, first, "utf-8"),
                          end=wire_position(UNICODE_LINE, CALL_LINE, last, "utf-8"))
    assert await explain_selection(editor, calc, selection) == "subtract(7, 2)"


async def test_positions_past_the_end_are_clamped_not_errors(start, project):
    editor = await start(project, NEOVIM_CAPABILITIES)
    calc = project / "calc.py"
    editor.open(calc)
    document = lsp.TextDocumentIdentifier(uri=uri(calc))
    for line, character in [(CALL_LINE, 999), (999, 0), (999, 999)]:
        position = lsp.Position(line=line, character=character)
        await editor.client.text_document_hover_async(
            lsp.HoverParams(text_document=document, position=position))
        await editor.client.text_document_definition_async(
            lsp.DefinitionParams(text_document=document, position=position))
    # A selection running past the end of the file ends at the end of the file.
    past_the_end = lsp.Range(start=lsp.Position(line=LAST_LINE, character=0),
                             end=lsp.Position(line=50, character=3))
    assert await explain_selection(editor, calc, past_the_end) == 'fin = "thé"'
    # An insertion past the end of the last line lands at its end, in the server's copy too:
    # the agent's Edit below only matches if the server's buffer is what the editor has.
    editor.type_at(calc, (LAST_LINE, len('fin = "thé"')), (LAST_LINE, len('fin = "thé"')), "  # ü")
    typed = editor.buffer(calc)
    assert typed.endswith('fin = "thé"  # ü')
    editor.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri(calc), version=9),
        content_changes=[lsp.TextDocumentContentChangePartial(
            range=lsp.Range(start=lsp.Position(line=LAST_LINE, character=400),
                            end=lsp.Position(line=LAST_LINE + 3, character=0)), text="!")]))
    editor.buffers[uri(calc)] = (typed + "!", 9)
    start.model.load({"turns": edit_turns("calc.py", '"thé"  # ü!', '"thé"  # ü?')})
    review, result = await propose_and_accept(editor, project)
    assert review["status"] == "accepted", (review, result.content)
    assert editor.buffer(calc) == (project / "calc.py").read_text() == CALC + "  # ü?"


# -- edits in the shapes the client declared -----------------------------------------------


async def test_neovim_gets_a_changes_map_in_utf8_and_disk_matches_the_buffer(start, project):
    """The issue's case: an edit at the end of a last line without a final newline, after
    accented letters, to a client that offered utf-8 and declared no documentChanges."""
    editor = await start(project, NEOVIM_CAPABILITIES)
    editor.apply_style = "neovim"  # answers first, didChange ~0.1 s later
    calc = project / "calc.py"
    editor.open(calc, version=0)
    # The user types after the accents first: an incremental change with a utf-8 range.
    column = UNICODE_LINE.index("résumé") + len("résumé")
    editor.type_at(calc, (CALL_LINE, column), (CALL_LINE, column), "_bis")
    start.model.load({"turns": edit_turns("calc.py", 'fin = "thé"', 'fin = "thé glacé"')})

    review, result = await propose_and_accept(editor, project)

    assert review["status"] == "accepted" and review["applied"] == ["f1.h1"], result.content
    [sent] = editor.applied
    assert set(sent) == {"changes"}  # no documentChanges, no changeAnnotations
    [edits] = sent["changes"].values()
    assert all("annotationId" not in e for e in edits)
    end = edits[-1]["range"]["end"]
    assert end == {"line": LAST_LINE, "character": wire('fin = "thé"', "utf-8")}
    expected = CALC.replace("résumé =", "résumé_bis =").replace('"thé"', '"thé glacé"')
    assert editor.buffer(calc) == expected
    assert (project / "calc.py").read_text() == expected


async def test_document_changes_without_annotation_support_are_plain(start, project):
    capabilities = lsp.ClientCapabilities(workspace=lsp.WorkspaceClientCapabilities(
        apply_edit=True, workspace_edit=lsp.WorkspaceEditClientCapabilities(
            document_changes=True, resource_operations=[lsp.ResourceOperationKind.Create])))
    editor = await start(project, capabilities)
    start.model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Write",
                      "input": {"path": "nouveau.py", "content": "x = 'ñ'\n"}}]},
        {"content": "done"}]})

    review, _ = await propose_and_accept(editor, project)

    assert review["status"] == "accepted"
    [sent] = editor.applied
    assert "changeAnnotations" not in sent
    create, fill = sent["documentChanges"]
    assert create["kind"] == "create" and "annotationId" not in create
    assert all("annotationId" not in e for e in fill["edits"])
    assert (project / "nouveau.py").read_text() == "x = 'ñ'\n"


async def test_without_create_support_new_files_are_written_and_shown(start, project):
    editor = await start(project, NEOVIM_CAPABILITIES)
    start.model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Write",
                      "input": {"path": "pkg/nouveau.py", "content": "y = '中'\n"}}]},
        {"content": "done"}]})

    review, _ = await propose_and_accept(editor, project)

    assert review["status"] == "accepted"
    assert editor.applied == [], "nothing for the editor to apply: the server wrote the file"
    created = project / "pkg" / "nouveau.py"
    assert created.read_text() == "y = '中'\n"
    for _ in range(100):  # showDocument is sent without waiting for it
        if editor.shown:
            break
        await asyncio.sleep(0.05)
    assert editor.shown == [uri(created)]


async def test_a_client_that_declares_nothing_gets_no_apply_edit(start, project):
    editor = await start(project, lsp.ClientCapabilities())
    (project / "autre.py").write_text("z = 1\n")
    start.model.load({"turns": edit_turns("autre.py", "z = 1", "z = 2")})
    review, _ = await propose_and_accept(editor, project)
    assert review["status"] == "accepted"
    assert (project / "autre.py").read_text() == "z = 2\n"

    calc = project / "calc.py"
    editor.open(calc)  # an open buffer cannot be changed without workspace/applyEdit
    start.model.load({"turns": edit_turns("calc.py", 'fin = "thé"', 'fin = "café"')})
    review, result = await propose_and_accept(editor, project)
    assert review["status"] == "conflict" and review["conflicts"] == ["f1.h1"]
    assert "did not declare workspace/applyEdit" in review["conflictDetails"][0]
    assert "CONFLICT" in result.content
    assert editor.applied == [] and (project / "calc.py").read_text() == CALC


# -- verified application ------------------------------------------------------------------


async def test_an_edit_skipped_as_stale_is_planned_again_on_the_real_buffer(start, project):
    capabilities = lsp.ClientCapabilities(
        general=NEOVIM_CAPABILITIES.general,
        workspace=lsp.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=lsp.WorkspaceEditClientCapabilities(document_changes=True)))
    editor = await start(project, capabilities, applyEditVerifySeconds=2)
    editor.apply_style, editor.change_delay = "neovim", 0.05
    calc = project / "calc.py"
    editor.open(calc, version=3)

    def user_types_just_then() -> None:
        editor.before_apply = None
        editor.type_text(calc, "# tapé\n" + editor.buffer(calc))  # version 4: the edit is stale

    editor.before_apply = user_types_just_then
    start.model.load({"turns": edit_turns("calc.py", "return a - b", "return a - b  # ok")})

    review, result = await propose_and_accept(editor, project)

    assert review["status"] == "accepted", (review, result.content)
    first, second = editor.applied
    assert first["documentChanges"][0]["textDocument"]["version"] == 3  # skipped, "applied"
    assert second["documentChanges"][0]["textDocument"]["version"] == 4
    expected = "# tapé\n" + CALC.replace("return a - b", "return a - b  # ok")
    assert editor.buffer(calc) == expected == (project / "calc.py").read_text()


async def test_a_misapplied_edit_is_a_conflict_and_the_disk_is_left_alone(start, project):
    editor = await start(project, NEOVIM_CAPABILITIES)
    editor.apply_style = "misapply"  # the edit lands one line too low
    calc = project / "calc.py"
    editor.open(calc, version=0)
    start.model.load({"turns": edit_turns("calc.py", "    return a - b\n", "    return b - a\n")})

    review, result = await propose_and_accept(editor, project)

    assert review["status"] == "conflict" and review["conflicts"] == ["f1.h1"]
    assert "misapplied" in review["conflictDetails"][0]
    assert "CONFLICT" in result.content and "misapplied" in result.content
    assert len(editor.applied) == 1, "a misapplied edit is not sent again"
    assert (project / "calc.py").read_text() == CALC


async def test_applied_true_without_any_did_change_is_reported(start, project):
    editor = await start(project, NEOVIM_CAPABILITIES, applyEditVerifySeconds=0.5)
    editor.apply_style = "silent"  # answers applied: true, never changes or reports anything
    calc = project / "calc.py"
    editor.open(calc)
    start.model.load({"turns": edit_turns("calc.py", "return a - b", "return a - b  # ok")})

    review, result = await propose_and_accept(editor, project)

    assert review["status"] == "conflict" and review["conflicts"] == ["f1.h1"]
    assert "no trace" in review["conflictDetails"][0]
    assert "CONFLICT" in result.content
    assert len(editor.applied) == 2, "planned and sent again once, then reported"
    assert (project / "calc.py").read_text() == CALC
