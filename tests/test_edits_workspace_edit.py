"""LSP text edits, WorkspaceEdit building and the headless on-disk client."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lsprotocol.types import Position, Range, TextEdit
from pygls.protocol import default_converter

from lsp_agent.edits.workspace_edit import (
    ANNOTATION_ID,
    EditCaps,
    EditTarget,
    WorkspaceEditError,
    apply_text_edits,
    apply_workspace_edit_to_disk,
    build_workspace_edit,
    lsp_lines,
    needs_disk_creation,
    text_edits_between,
    uri_to_path,
)


def edit(l1: int, c1: int, l2: int, c2: int, text: str) -> TextEdit:
    return TextEdit(range=Range(start=Position(l1, c1), end=Position(l2, c2)), new_text=text)


def spans(edits: list[TextEdit]) -> list[tuple[int, int, int, int, str]]:
    return [
        (
            e.range.start.line,
            e.range.start.character,
            e.range.end.line,
            e.range.end.character,
            e.new_text,
        )
        for e in edits
    ]


# ---------------------------------------------------------------- text_edits_between

BETWEEN_CASES = [
    ("replace middle line", "a\nb\nc\n", "a\nB\nc\n", [(1, 0, 2, 0, "B\n")]),
    ("insert at top", "a\n", "x\na\n", [(0, 0, 0, 0, "x\n")]),
    ("append after final newline", "a\n", "a\nb\n", [(1, 0, 1, 0, "b\n")]),
    ("append after unterminated line", "a\nb", "a\nb\nc", [(1, 0, 1, 1, "b\nc")]),
    ("delete everything", "a\nb\n", "", [(0, 0, 2, 0, "")]),
    ("fill empty", "", "a\n", [(0, 0, 0, 0, "a\n")]),
    (
        "two separate edits",
        "a\nb\nc\nd\n",
        "A\nb\nc\nD\n",
        [(0, 0, 1, 0, "A\n"), (3, 0, 4, 0, "D\n")],
    ),
    ("crlf kept", "a\r\nb\r\n", "a\r\nB\r\n", [(1, 0, 2, 0, "B\r\n")]),
    ("astral last line: utf-16 end column", "😀x", "😀y", [(0, 0, 0, 3, "😀y")]),
    ("identical", "a\nb", "a\nb", []),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"), BETWEEN_CASES, ids=[c[0] for c in BETWEEN_CASES]
)
def test_text_edits_between(name, old, new, expected):
    edits = text_edits_between(old, new)
    assert spans(edits) == expected
    assert apply_text_edits(old, edits) == new


@pytest.mark.parametrize("seed", range(300))
def test_text_edits_round_trip_random(seed):
    rng = random.Random(seed)
    pieces = ["a", "bb", "😀", "é", "\n", "\r\n", "\r", "x\n"]
    old = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 15)))
    new_pieces = list(old)
    for _ in range(rng.randint(0, 5)):
        at = rng.randint(0, len(new_pieces))
        if rng.random() < 0.5 or not new_pieces:
            new_pieces.insert(at, rng.choice(pieces))
        else:
            del new_pieces[min(at, len(new_pieces) - 1)]
    new = "".join(new_pieces)
    edits = text_edits_between(old, new)
    assert apply_text_edits(old, edits) == new
    starts = [(e.range.start.line, e.range.start.character) for e in edits]
    ends = [(e.range.end.line, e.range.end.character) for e in edits]
    assert starts == sorted(starts)
    assert all(end <= nxt for end, nxt in zip(ends, starts[1:], strict=False))


# ---------------------------------------------------------------- apply_text_edits

APPLY_CASES = [
    ("replace after emoji (utf-16 columns)", "a😀b\n", [edit(0, 3, 0, 4, "c")], "a😀c\n"),
    ("insert between two emoji", "😀😀", [edit(0, 2, 0, 2, "|")], "😀|😀"),
    ("column past end clamps to line end", "ab\ncd", [edit(0, 99, 0, 99, "!")], "ab!\ncd"),
    ("line past end is end of document", "ab\n", [edit(7, 0, 9, 0, "z")], "ab\nz"),
    (
        "crlf: column counts stop before terminator",
        "ab\r\ncd\r\n",
        [edit(0, 5, 1, 1, "-")],
        "ab-d\r\n",
    ),
    ("lone cr ends a line", "a\rb\n", [edit(1, 0, 1, 1, "B")], "a\rB\n"),
    (
        "edits apply against original positions, given in any order",
        "one\ntwo\nthree\n",
        [edit(2, 0, 2, 5, "3"), edit(0, 0, 0, 3, "1111111")],
        "1111111\ntwo\n3\n",
    ),
    (
        "inserts at the same position keep array order",
        "x",
        [edit(0, 0, 0, 0, "a"), edit(0, 0, 0, 0, "b")],
        "abx",
    ),
    (
        "touching edits are not overlapping",
        "abcd",
        [edit(0, 2, 0, 4, "Z"), edit(0, 0, 0, 2, "Y")],
        "YZ",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "edits", "expected"), APPLY_CASES, ids=[c[0] for c in APPLY_CASES]
)
def test_apply_text_edits(name, text, edits, expected):
    assert apply_text_edits(text, edits) == expected


@pytest.mark.parametrize(
    ("text", "edits", "message"),
    [
        ("abcd", [edit(0, 0, 0, 3, "x"), edit(0, 2, 0, 4, "y")], "overlaps"),
        ("abcd", [edit(0, 3, 0, 1, "x")], "ends before it starts"),
        ("a😀b", [edit(0, 2, 0, 2, "x")], "surrogate pair"),
    ],
)
def test_apply_text_edits_rejects_bad_edits(text, edits, message):
    with pytest.raises(WorkspaceEditError, match=message):
        apply_text_edits(text, edits)


def test_lsp_lines_split_on_all_three_terminators():
    assert lsp_lines("a\r\nb\rc\nd") == ["a\r\n", "b\r", "c\n", "d"]
    assert lsp_lines("") == []


# ---------------------------------------------------------------- build_workspace_edit


def to_json(workspace_edit) -> dict:
    return default_converter().unstructure(workspace_edit)


def test_workspace_edit_json_pins_version_and_annotates():
    target = EditTarget("file:///w/a.py", "a\nb\n", "a\nB\n", version=7)
    data = to_json(build_workspace_edit([target], description="why"))
    assert set(data) == {"documentChanges", "changeAnnotations"}
    assert data["changeAnnotations"] == {
        ANNOTATION_ID: {"label": "lsp-agent", "description": "why", "needsConfirmation": False}
    }
    [doc_edit] = data["documentChanges"]
    assert doc_edit["textDocument"] == {"uri": "file:///w/a.py", "version": 7}
    assert doc_edit["edits"] == [
        {
            "annotationId": ANNOTATION_ID,
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
            "newText": "B\n",
        }
    ]


def test_workspace_edit_new_file_creates_first_then_fills_unversioned():
    target = EditTarget("file:///w/new.py", None, "x = 1\n", None, is_new=True)
    create, fill = to_json(build_workspace_edit([target]))["documentChanges"]
    assert create == {
        "kind": "create",
        "uri": "file:///w/new.py",
        "options": {"overwrite": False, "ignoreIfExists": True},
        "annotationId": ANNOTATION_ID,
    }
    assert fill["textDocument"] == {"uri": "file:///w/new.py", "version": None}
    assert fill["edits"][0]["newText"] == "x = 1\n"
    assert fill["edits"][0]["annotationId"] == ANNOTATION_ID


def test_workspace_edit_skips_files_already_at_target_and_empty_new_file_needs_no_fill():
    same = EditTarget("file:///w/same.py", "a\n", "a\n", 3)
    empty_new = EditTarget("file:///w/empty.py", None, "", None, is_new=True)
    changes = to_json(build_workspace_edit([same, empty_new]))["documentChanges"]
    assert [c.get("kind") for c in changes] == ["create"]


def test_built_edit_applied_by_headless_client_gives_targets(tmp_path: Path):
    existing = tmp_path / "a.py"
    existing.write_bytes(b"keep\r\nold\r\nkeep\r\n")
    new = tmp_path / "sub" / "b.py"
    targets = [
        EditTarget(existing.as_uri(), "keep\r\nold\r\nkeep\r\n", "keep\r\nnew 😀\r\nkeep\r\n", 2),
        EditTarget(new.as_uri(), None, "created\n", None, is_new=True),
    ]
    touched = apply_workspace_edit_to_disk(to_json(build_workspace_edit(targets)))
    assert touched == [existing, new]
    assert existing.read_bytes() == "keep\r\nnew 😀\r\nkeep\r\n".encode()
    assert new.read_text() == "created\n"


# ---------------------------------------------------------------- apply_workspace_edit_to_disk


def text_edit_json(l1: int, c1: int, l2: int, c2: int, text: str) -> dict:
    return {
        "range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}},
        "newText": text,
    }


def test_disk_legacy_changes_map(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("hello world\n")
    touched = apply_workspace_edit_to_disk(
        {"changes": {f.as_uri(): [text_edit_json(0, 6, 0, 11, "there")]}}
    )
    assert touched == [f]
    assert f.read_text() == "hello there\n"


def test_disk_rename_and_delete(tmp_path: Path):
    a, b, gone = tmp_path / "a.txt", tmp_path / "moved" / "b.txt", tmp_path / "gone.txt"
    a.write_text("A")
    gone.write_text("G")
    touched = apply_workspace_edit_to_disk(
        {
            "documentChanges": [
                {"kind": "rename", "oldUri": a.as_uri(), "newUri": b.as_uri()},
                {"kind": "delete", "uri": gone.as_uri()},
                {
                    "textDocument": {"uri": b.as_uri(), "version": 1},
                    "edits": [{**text_edit_json(0, 1, 0, 1, "!"), "annotationId": "x"}],
                },
            ]
        }
    )
    assert touched == [a, b, gone]
    assert not a.exists() and not gone.exists()
    assert b.read_text() == "A!"


def test_disk_create_respects_options(tmp_path: Path):
    f = tmp_path / "f.txt"
    f.write_text("user data")
    create = {"kind": "create", "uri": f.as_uri(), "options": {"ignoreIfExists": True}}
    apply_workspace_edit_to_disk({"documentChanges": [create]})
    assert f.read_text() == "user data"
    with pytest.raises(WorkspaceEditError, match="already exists"):
        apply_workspace_edit_to_disk({"documentChanges": [{"kind": "create", "uri": f.as_uri()}]})
    overwrite = {"kind": "create", "uri": f.as_uri(), "options": {"overwrite": True}}
    apply_workspace_edit_to_disk({"documentChanges": [overwrite]})
    assert f.read_text() == ""


def test_disk_keeps_latin1_files_in_their_encoding(tmp_path: Path):
    f = tmp_path / "legacy.txt"
    f.write_bytes("café\n".encode("latin-1"))
    apply_workspace_edit_to_disk({"changes": {f.as_uri(): [text_edit_json(1, 0, 1, 0, "ü\n")]}})
    assert f.read_bytes() == "café\nü\n".encode("latin-1")


@pytest.mark.parametrize(
    ("edit_json", "message"),
    [
        ({"changes": {"http://example.com/a.py": []}}, "only file://"),
        ({"changes": {"file://server/share/a.py": []}}, "remote host"),
        ({"documentChanges": [{"kind": "delete", "uri": "untitled:Untitled-1"}]}, "only file://"),
        ({"documentChanges": [{"kind": "explode", "uri": "file:///x"}]}, "unknown document change"),
        ({"changes": {"file:///definitely/not/here.py": []}}, "no such file"),
    ],
)
def test_disk_bad_input_raises_clear_error(edit_json, message):
    with pytest.raises(WorkspaceEditError, match=message):
        apply_workspace_edit_to_disk(edit_json)


@pytest.mark.parametrize(
    "bad_edit", [{"newText": "y"}, text_edit_json(0, -1, 0, 0, "y"), text_edit_json(0, 0, 0, 0, 5)]
)
def test_disk_malformed_text_edit(tmp_path: Path, bad_edit):
    f = tmp_path / "a.txt"
    f.write_text("x")
    with pytest.raises(WorkspaceEditError, match="malformed text edit"):
        apply_workspace_edit_to_disk({"changes": {f.as_uri(): [bad_edit]}})
    assert f.read_text() == "x"


def test_uri_to_path_decodes_percent_escapes():
    assert uri_to_path("file:///tmp/a%20b/%C3%A9.py") == Path("/tmp/a b/é.py")


# ---------------------------------------------------------------- shapes per client capabilities

EXISTING = EditTarget("file:///w/a.py", "x = 1\nfin = 'é😀'", "x = 2\nfin = 'é😀!'", 4)
NEW = EditTarget("file:///w/new.py", None, "n = 1\n", None, is_new=True)

SHAPES = [
    # (name, caps, top-level keys, has CreateFile, annotated)
    ("everything declared", EditCaps(), {"documentChanges", "changeAnnotations"}, True, True),
    ("nothing declared", EditCaps.none(), {"changes"}, False, False),
    ("documentChanges without annotations or create",
     EditCaps(change_annotations=False, resource_operations=frozenset()),
     {"documentChanges"}, False, False),
    ("annotations declared without documentChanges",
     EditCaps(document_changes=False), {"changes"}, False, False),
    ("create without documentChanges (Neovim)",
     EditCaps(document_changes=False, change_annotations=False), {"changes"}, False, False),
]


@pytest.mark.parametrize(("name", "caps", "keys", "creates", "annotated"), SHAPES,
                         ids=[s[0] for s in SHAPES])
def test_workspace_edit_uses_only_what_the_client_declared(name, caps, keys, creates, annotated):
    data = {k: v for k, v in to_json(build_workspace_edit([EXISTING, NEW], caps=caps)).items()
            if v is not None}
    assert set(data) == keys
    if "changes" in data:
        assert list(data["changes"]) == [EXISTING.uri]  # the new file is the caller's to write
        edits = data["changes"][EXISTING.uri]
    else:
        kinds = [c.get("kind") for c in data["documentChanges"]]
        assert ("create" in kinds) == creates
        edits = [e for c in data["documentChanges"] if "edits" in c for e in c["edits"]]
        assert all(("annotationId" in c) == annotated for c in data["documentChanges"]
                   if c.get("kind"))
    assert all(("annotationId" in e) == annotated for e in edits)
    assert needs_disk_creation(NEW, caps) == (not creates)
    assert not needs_disk_creation(EXISTING, caps)


@pytest.mark.parametrize(("encoding", "end"), [("utf-8", 14), ("utf-16", 11), ("utf-32", 10)])
def test_end_of_a_last_line_without_newline_is_in_the_clients_units(encoding, end):
    caps = EditCaps(encoding=encoding)
    [doc] = to_json(build_workspace_edit([EXISTING], caps=caps))["documentChanges"]
    last = doc["edits"][-1]["range"]["end"]
    assert last == {"line": 1, "character": end}
    assert end == len("fin = 'é😀'".encode({"utf-8": "utf-8", "utf-16": "utf-16-le",
                                            "utf-32": "utf-32-le"}[encoding])) // {
        "utf-8": 1, "utf-16": 2, "utf-32": 4}[encoding]
    edits = [edit(*(e["range"]["start"].values()), *(e["range"]["end"].values()), e["newText"])
             for e in doc["edits"]]
    assert apply_text_edits(EXISTING.current_text, edits, encoding) == EXISTING.target_text
