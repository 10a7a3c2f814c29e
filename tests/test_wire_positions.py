"""The boundary: client capabilities, WirePositions, didChange application, the editor bridge's
conversions, and judging whether an applied edit landed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from lsp_agent.code_intel.bridge import EditorBridge
from lsp_agent.edits.landing import Verdict, carries_traces, has_landed, judge
from lsp_agent.server.client_caps import ClientCaps
from lsp_agent.server.wire_positions import WirePositions, apply_content_changes
from lsp_agent.types.editor import EditorContext
from lsp_agent.workspace.positions import Point

LINE = "x = 'é😀'; total = compute(1)\n"  # 'compute' at code point 18; utf-8 22; utf-16 19
TEXT = "# top\n" + LINE + "end"


# -- ClientCaps ----------------------------------------------------------------------------

WORKSPACE_EDIT = lsp.WorkspaceEditClientCapabilities

CAPS_CASES = [
    ("declares nothing", lsp.ClientCapabilities(),
     ("utf-16", False, False, frozenset(), False)),
    ("vscode", lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=["utf-16"]),
        workspace=lsp.WorkspaceClientCapabilities(apply_edit=True, workspace_edit=WORKSPACE_EDIT(
            document_changes=True, change_annotation_support=lsp.ChangeAnnotationsSupportOptions(),
            resource_operations=[lsp.ResourceOperationKind.Create,
                                 lsp.ResourceOperationKind.Delete]))),
     ("utf-16", True, True, frozenset({"create", "delete"}), True)),
    ("neovim 0.11", lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=["utf-8", "utf-16", "utf-32"]),
        workspace=lsp.WorkspaceClientCapabilities(apply_edit=True, workspace_edit=WORKSPACE_EDIT(
            resource_operations=[lsp.ResourceOperationKind.Rename]))),
     ("utf-8", False, False, frozenset({"rename"}), True)),
    ("annotations without documentChanges are unusable", lsp.ClientCapabilities(
        workspace=lsp.WorkspaceClientCapabilities(workspace_edit=WORKSPACE_EDIT(
            change_annotation_support=lsp.ChangeAnnotationsSupportOptions()))),
     ("utf-16", False, False, frozenset(), False)),
    ("only utf-32", lsp.ClientCapabilities(
        general=lsp.GeneralClientCapabilities(position_encodings=["utf-32"])),
     ("utf-32", False, False, frozenset(), False)),
]


@pytest.mark.parametrize(("name", "raw", "expected"), CAPS_CASES, ids=[c[0] for c in CAPS_CASES])
def test_client_caps_parse_what_was_declared(name, raw, expected):
    caps = ClientCaps.parse(raw)
    got = (caps.position_encoding, caps.edits.document_changes, caps.edits.annotates,
           caps.edits.resource_operations, caps.apply_edit)
    assert got == expected
    assert caps.edits.encoding == caps.position_encoding
    assert caps.edits.can_create == (caps.edits.document_changes
                                     and "create" in caps.edits.resource_operations)


def test_client_caps_of_none_are_the_lsp_defaults():
    caps = ClientCaps.parse(None)
    assert caps == ClientCaps() and caps.position_encoding == "utf-16"
    assert not caps.apply_edit and not caps.edits.document_changes


# -- WirePositions -------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text(TEXT)
    return path


def positions_for(encoding: str) -> WirePositions:
    return WirePositions(lambda p: p.read_text() if p.exists() else None, encoding)  # type: ignore[arg-type]


@pytest.mark.parametrize(("encoding", "character"), [("utf-8", 22), ("utf-16", 19), ("utf-32", 18)])
def test_point_in_and_position_out_are_inverse(source, encoding, character):
    wire = positions_for(encoding)
    assert wire.point_in(source, lsp.Position(line=1, character=character)) == Point(1, 18)
    assert wire.position_out(source, Point(1, 18)) == lsp.Position(line=1, character=character)


def test_an_unreadable_file_passes_positions_through(tmp_path):
    wire = positions_for("utf-8")
    missing = tmp_path / "gone.py"
    assert wire.point_in(missing, lsp.Position(line=3, character=9)) == Point(3, 9)
    assert wire.range_out(missing, (1, 2), (1, 5)).end == lsp.Position(line=1, character=5)


def test_prompt_context_and_diagnostics_come_in_as_code_points(source):
    wire = positions_for("utf-8")
    at = {"start": {"line": 1, "character": 22}, "end": {"line": 1, "character": 29}}
    context = EditorContext.model_validate({
        "uri": source.as_uri(), "range": at,
        "diagnostics": [{"range": at, "message": "undefined name 'compute'"}]})
    converted = wire.context_in(context)
    for rng in (converted.range, converted.diagnostics[0].range):
        assert (rng.start.line, rng.start.character, rng.end.character) == (1, 18, 25)
    diagnostic = wire.diagnostic_in(source, {"range": at, "message": "m", "source": "ruff"})
    assert diagnostic == {"range": {"start": {"line": 1, "character": 18},
                                    "end": {"line": 1, "character": 25}},
                          "message": "m", "source": "ruff"}
    assert wire.diagnostic_in(source, {"message": "no range"}) == {"message": "no range"}
    negative = {"start": {"line": -1, "character": -5}, "end": {"line": 1, "character": 22}}
    clamped = wire.diagnostic_in(source, {"range": negative, "message": "m"})["range"]
    assert clamped == {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 18}}


def test_batch_reads_each_file_once(source):
    reads: list[Path] = []

    def text_of(path: Path) -> str:
        reads.append(path)
        return path.read_text()

    batch = WirePositions(text_of, "utf-16").batch()
    for _ in range(5):
        batch.range_out(source, (1, 0), (1, 18))
    assert reads == [source]


@pytest.mark.parametrize(
    ("encoding", "changes", "expected"),
    [
        # Incremental: insert after the emoji, in each encoding's units.
        ("utf-8", [((1, 11), (1, 11), "!")], "x = 'é😀!'"),
        ("utf-16", [((1, 8), (1, 8), "!")], "x = 'é😀!'"),
        ("utf-32", [((1, 7), (1, 7), "!")], "x = 'é😀!'"),
        # Each change applies to the result of the previous one.
        ("utf-8", [((0, 0), (0, 5), "# haut"), ((0, 6), (0, 6), "!")], "# haut!"),
        # Past the end of the last line: clamped to the end of the document.
        ("utf-16", [((2, 50), (9, 0), "\n")], "end\n"),
    ],
)
def test_did_change_is_applied_in_the_negotiated_encoding(encoding, changes, expected):
    events = [lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=lsp.Position(line=a[0], character=a[1]),
                        end=lsp.Position(line=b[0], character=b[1])), text=text)
        for a, b, text in changes]
    assert expected in apply_content_changes(TEXT, events, encoding)  # type: ignore[arg-type]


def test_a_whole_document_change_replaces_the_text():
    changes = [lsp.TextDocumentContentChangeWholeDocument(text="new")]
    assert apply_content_changes(TEXT, changes, "utf-8") == "new"


# -- the editor bridge speaks the client's units -------------------------------------------


async def test_bridge_sends_and_reads_positions_in_the_clients_encoding(source):
    asked: list[tuple[str, dict[str, Any]]] = []

    async def editor(method: str, params: dict[str, Any]) -> Any:
        asked.append((method, params))
        if method.endswith("definition"):
            return [{"uri": source.as_uri(), "range": {"start": {"line": 1, "character": 22},
                                                       "end": {"line": 1, "character": 29}}}]
        return {"items": [{"uri": source.as_uri(), "diagnostics": [
            {"range": {"start": {"line": 1, "character": 22}, "end": {"line": 1, "character": 99}},
             "message": "m"}]}]}

    bridge = EditorBridge(editor, positions=positions_for("utf-8"))
    result = await bridge.definition(source, 1, 18)
    assert asked[0][1]["position"] == {"line": 1, "character": 22}
    [loc] = result.items
    assert (loc.line, loc.column, loc.end_column, loc.name) == (1, 18, 25, "compute")
    found = await bridge.diagnostics(source)
    rng = found[source][0]["range"]
    assert (rng["start"]["character"], rng["end"]["character"]) == (18, len(LINE) - 1)


# -- did the edit land? --------------------------------------------------------------------

BASE = "a\nb\nc\nd\n"
TARGET = "a\nB\nc\nd\n"
LANDING = [
    ("exactly the target", TARGET, False, Verdict.LANDED),
    ("target with the user's typing around it", "typed\na\nB\nc\nd\n", True, Verdict.LANDED),
    ("nothing happened", BASE, False, Verdict.NOT_YET),
    ("nothing happened, a no-op change came", BASE, True, Verdict.NOT_YET),
    ("only the user's typing, from before the answer", "a\nb\nc\nd\ntyped\n", False,
     Verdict.NOT_YET),
    ("the edit one line too low", "a\nb\nB\nd\n", True, Verdict.DIVERGED),
    ("the edit's line elsewhere, before the answer", "a\nb\nc\nB\n", False, Verdict.DIVERGED),
    ("changed after the answer into something else", "a\nb\nc\nd\nx\n", True, Verdict.DIVERGED),
]


@pytest.mark.parametrize(("name", "observed", "after", "verdict"), LANDING,
                         ids=[c[0] for c in LANDING])
def test_judging_an_applied_edit(name, observed, after, verdict):
    assert judge(BASE, TARGET, observed, after) is verdict


def test_landed_and_traces_helpers():
    assert has_landed(BASE, TARGET, TARGET)
    assert not has_landed(BASE, TARGET, BASE)
    assert carries_traces(BASE, TARGET, "a\nb\nc\nB\n")
    assert not carries_traces(BASE, TARGET, "a\nb\nc\nd\nnew\n")
