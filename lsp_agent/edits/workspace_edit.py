"""Accepted changes as an LSP ``WorkspaceEdit`` shaped for what the client declared, and a
headless client that applies one to disk.

Edits are whole lines wherever possible, so positions are (line, 0) and the position encoding
only matters at the end of a file without a final newline. Lines are counted the LSP way:
``\\r\\n``, ``\\n`` and a lone ``\\r`` each end a line (lsp_agent.workspace.positions).

LSP 3.17 lets a server send ``documentChanges`` only to a client that declared
``workspace.workspaceEdit.documentChanges``, change annotations only with
``changeAnnotationSupport``, and create/rename/delete only with the listed
``resourceOperations``; ``EditCaps`` carries those declarations.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from lsprotocol.types import (
    AnnotatedTextEdit,
    ChangeAnnotation,
    CreateFile,
    CreateFileOptions,
    DeleteFile,
    DeleteFileOptions,
    OptionalVersionedTextDocumentIdentifier,
    Position,
    Range,
    TextDocumentEdit,
    TextEdit,
    WorkspaceEdit,
)

from lsp_agent.edits.diff import line_opcodes
from lsp_agent.permissions.safe_write import (
    MAX_REWRITE_BYTES,
    WriteRefused,
    WriteScope,
    check_paths,
    encode_like,
    real_path,
    write_bytes_checked,
)
from lsp_agent.workspace.documents import FileReadError, read_file_bytes
from lsp_agent.workspace.encoding import UndecodableBytes, decode_bytes
from lsp_agent.workspace.positions import UTF16, Encoding, TextLines, column_to_units

ANNOTATION_ID = "lsp-agent"
DEFAULT_DESCRIPTION = "Changes proposed by lsp-agent and accepted in review"

_LINE_END = re.compile(r"\r\n|\r|\n")


class WorkspaceEditError(ValueError):
    """A WorkspaceEdit (or a text edit in it) that cannot be applied as given."""


@dataclass(frozen=True)
class EditCaps:
    """What the client declared under ``workspace.workspaceEdit``, plus the position encoding.

    The defaults are a client that declared everything (VS Code); a client that declared
    nothing is ``EditCaps.none()``.
    """

    encoding: Encoding = UTF16
    document_changes: bool = True
    change_annotations: bool = True
    resource_operations: frozenset[str] = field(
        default_factory=lambda: frozenset({"create", "rename", "delete"}))

    @classmethod
    def none(cls, encoding: Encoding = UTF16) -> EditCaps:
        return cls(encoding, False, False, frozenset())

    @property
    def can_create(self) -> bool:
        """CreateFile lives in ``documentChanges``: both must be declared."""
        return self.document_changes and "create" in self.resource_operations

    @property
    def can_delete(self) -> bool:
        return self.document_changes and "delete" in self.resource_operations

    @property
    def annotates(self) -> bool:
        """Annotated edits exist only inside ``documentChanges``."""
        return self.document_changes and self.change_annotations


# ---------------------------------------------------------------------------- positions


def lsp_lines(text: str) -> list[str]:
    """Lines as LSP counts them, each with its terminator; a final unterminated line is kept."""
    lines, start = [], 0
    for m in _LINE_END.finditer(text):
        lines.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def _line_start(lines: TextLines, index: int, encoding: Encoding) -> Position:
    """Start of line ``index``; a line past the last means the end of the document."""
    if index < lines.count and lines.starts[index] < len(lines.text):
        return Position(line=index, character=0)
    return lines.end_position(encoding)


def _strict_offset(lines: TextLines, pos: Position, encoding: Encoding) -> int:
    """Offset of a position sent to us as a client; one that splits a character is an error."""
    point = lines.to_point(pos, encoding)
    content = lines.content(point.line)
    if pos.line < lines.count and point.column < len(content):
        if column_to_units(content, point.column, encoding) != pos.character:
            raise WorkspaceEditError(
                f"column {pos.character} splits a character in {content!r} ({encoding}; "
                "for utf-16: a surrogate pair)")
    return lines.offset(point)


# ---------------------------------------------------------------------------- text edits


def text_edits_between(old: str, new: str, encoding: Encoding = UTF16) -> list[TextEdit]:
    """Whole-line edits turning ``old`` into ``new``: non-overlapping, in document order."""
    lines = TextLines(old)
    old_lines, new_lines = lsp_lines(old), lsp_lines(new)
    edits = []
    for tag, i1, i2, j1, j2 in line_opcodes(old_lines, new_lines):
        if tag == "equal":
            continue
        start, end = _line_start(lines, i1, encoding), _line_start(lines, i2, encoding)
        edits.append(TextEdit(range=Range(start=start, end=end),
                              new_text="".join(new_lines[j1:j2])))
    return edits


def apply_text_edits(text: str, edits: Sequence[TextEdit], encoding: Encoding = UTF16) -> str:
    """Apply LSP text edits, all positioned against the original ``text``.

    Columns are code units of ``encoding``; a column past a line's end means the line's end, a
    line past the last means the end of the document. Overlapping edits and columns inside a
    character are errors; inserts at the same position keep their array order.
    """
    lines = TextLines(text)
    spans = []
    for order, edit in enumerate(edits):
        start = _strict_offset(lines, edit.range.start, encoding)
        end = _strict_offset(lines, edit.range.end, encoding)
        if end < start:
            raise WorkspaceEditError(f"edit {order} ends before it starts: {_fmt(edit.range)}")
        spans.append((start, end, order, edit.new_text))
    spans.sort(key=lambda s: (s[0], s[2]))
    out, cursor = [], 0
    for start, end, order, new_text in spans:
        if start < cursor:
            raise WorkspaceEditError(f"edit {order} overlaps an earlier edit")
        out.append(text[cursor:start])
        out.append(new_text)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def _fmt(r: Range) -> str:
    return f"{r.start.line}:{r.start.character}-{r.end.line}:{r.end.character}"


# ---------------------------------------------------------------------------- building


class EditTargetLike(Protocol):
    @property
    def uri(self) -> str: ...
    @property
    def current_text(self) -> str | None: ...
    @property
    def target_text(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def is_new(self) -> bool: ...


@dataclass(frozen=True)
class EditTarget:
    """One file to change: what the editor has now, what it should have, and its version."""

    uri: str
    current_text: str | None  # None for a file to create
    target_text: str
    version: int | None  # the editor's version of current_text; None when not open
    is_new: bool = False
    delete: bool = False  # delete the file (``target_text`` is "")


def build_workspace_edit(
    targets: Sequence[EditTargetLike],
    description: str = DEFAULT_DESCRIPTION,
    caps: EditCaps | None = None,
) -> WorkspaceEdit:
    """The edit for the client, in the shapes it declared (``caps``; default: everything).

    With ``documentChanges`` an existing file gets a TextDocumentEdit pinned to its version (so
    the editor refuses it if the user typed in between) and, when the client can create files,
    a new file gets a CreateFile that never overwrites followed by an unversioned
    TextDocumentEdit inserting its content. Without ``documentChanges`` the edit is the plain
    ``changes`` map. New files the client cannot create are left out: the caller writes them
    (``needs_disk_creation``), and so are deletions it cannot do (``needs_disk_deletion``).
    Files already at their target are left out too.
    """
    caps = caps or EditCaps()
    annotations = None
    if caps.annotates:
        annotations = {ANNOTATION_ID: ChangeAnnotation(
            label="lsp-agent", description=description, needs_confirmation=False)}
    if not caps.document_changes:
        changes = {t.uri: _text_edits(t, caps) for t in targets
                   if not t.is_new and not getattr(t, "delete", False)
                   and t.current_text != t.target_text}
        return WorkspaceEdit(changes=changes)
    document_changes: list[Any] = []
    for target in targets:
        if getattr(target, "delete", False):
            if caps.can_delete:
                document_changes.append(DeleteFile(
                    uri=target.uri, options=DeleteFileOptions(ignore_if_not_exists=True),
                    annotation_id=ANNOTATION_ID if caps.annotates else None))
        elif target.is_new:
            if caps.can_create:
                document_changes.extend(_create_file(target, caps))
        elif target.current_text != target.target_text:
            document_changes.append(TextDocumentEdit(
                text_document=OptionalVersionedTextDocumentIdentifier(
                    uri=target.uri, version=target.version),
                edits=_maybe_annotated(_text_edits(target, caps), caps)))
    return WorkspaceEdit(document_changes=document_changes, change_annotations=annotations)


def needs_disk_creation(target: EditTargetLike, caps: EditCaps) -> bool:
    """A new file the client cannot create through the edit: the server writes it."""
    return target.is_new and not caps.can_create


def needs_disk_deletion(target: EditTargetLike, caps: EditCaps) -> bool:
    """A file to delete the client cannot delete through the edit: the server deletes it."""
    return bool(getattr(target, "delete", False)) and not caps.can_delete


def _text_edits(target: EditTargetLike, caps: EditCaps) -> list[TextEdit]:
    if target.current_text is None:
        raise ValueError(f"{target.uri}: an existing file needs its current text")
    return text_edits_between(target.current_text, target.target_text, caps.encoding)


def _maybe_annotated(edits: list[TextEdit], caps: EditCaps) -> list[Any]:
    if not caps.annotates:
        return list(edits)
    return [
        AnnotatedTextEdit(annotation_id=ANNOTATION_ID, range=e.range, new_text=e.new_text)
        for e in edits
    ]


def _create_file(target: EditTargetLike, caps: EditCaps) -> list[Any]:
    create = CreateFile(
        uri=target.uri,
        options=CreateFileOptions(overwrite=False, ignore_if_exists=True),
        annotation_id=ANNOTATION_ID if caps.annotates else None,
    )
    if not target.target_text:
        return [create]
    origin = Position(line=0, character=0)
    fill = TextDocumentEdit(
        text_document=OptionalVersionedTextDocumentIdentifier(uri=target.uri, version=None),
        edits=_maybe_annotated(
            [TextEdit(range=Range(start=origin, end=origin), new_text=target.target_text)], caps
        ),
    )
    return [create, fill]


# ---------------------------------------------------------------------------- applying on disk


def uri_to_path(uri: object) -> Path:
    """The local path of a ``file://`` URI; anything else is a WorkspaceEditError."""
    if not isinstance(uri, str):
        raise WorkspaceEditError(f"expected a URI string, got {uri!r}")
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise WorkspaceEditError(f"unsupported URI {uri!r}: only file:// URIs can be applied")
    if parsed.netloc not in ("", "localhost"):
        raise WorkspaceEditError(f"unsupported URI {uri!r}: remote host {parsed.netloc!r}")
    path = Path(unquote(parsed.path))
    if not path.is_absolute():
        raise WorkspaceEditError(f"URI {uri!r} does not name an absolute path")
    return path


def apply_workspace_edit_to_disk(
    edit_json: dict[str, Any], encoding: Encoding = UTF16, *, roots: Sequence[Path] = ()
) -> list[Path]:
    """Apply a WorkspaceEdit in its JSON form to files on disk, in order; returns touched paths.

    Supports ``documentChanges`` (TextDocumentEdit with plain or annotated edits, CreateFile,
    RenameFile, DeleteFile) and the legacy ``changes`` map. Document versions are not checked:
    with no editor there are no versions. Columns are code units of ``encoding`` (what this
    client negotiated). Stops at the first failure with WorkspaceEditError.

    Files keep their encoding, BOM and every byte outside the edits; each write re-checks its
    path (inside ``roots`` when given, no symlink swapped in, not read-only) as it happens.
    """
    if not isinstance(edit_json, dict):
        raise WorkspaceEditError(f"a WorkspaceEdit must be a JSON object, got {edit_json!r}")
    # The editor's side: the server asked the user about protected files before proposing.
    scope = WriteScope(roots=tuple(real_path(r) for r in roots), protected_ok=True)
    touched: list[Path] = []
    try:
        if edit_json.get("documentChanges") is not None:
            for change in edit_json["documentChanges"]:
                touched.extend(_apply_document_change(change, scope, encoding))
        else:
            for uri, edits in (edit_json.get("changes") or {}).items():
                touched.append(_edit_on_disk(uri, edits, scope, encoding))
    except WriteRefused as exc:
        raise WorkspaceEditError(str(exc)) from None
    return list(dict.fromkeys(touched))


def _apply_document_change(change: dict[str, Any], scope: WriteScope,
                           encoding: Encoding) -> list[Path]:
    kind = change.get("kind")
    if kind == "create":
        return [_create_on_disk(change, scope)]
    if kind == "rename":
        return _rename_on_disk(change, scope)
    if kind == "delete":
        return [_delete_on_disk(change, scope)]
    if kind is None and "textDocument" in change:
        return [_edit_on_disk(change["textDocument"].get("uri"), change.get("edits", []), scope,
                              encoding)]
    raise WorkspaceEditError(f"unknown document change: {change!r}")


def _edit_on_disk(uri: str, edits_json: list[dict[str, Any]], scope: WriteScope,
                  encoding: Encoding) -> Path:
    path = uri_to_path(uri)
    try:
        data = read_file_bytes(path, MAX_REWRITE_BYTES)
    except FileNotFoundError:
        raise WorkspaceEditError(f"cannot edit {path}: no such file") from None
    except (FileReadError, OSError) as exc:
        raise WorkspaceEditError(f"cannot edit {path}: {exc}") from None
    try:
        text, _ = decode_bytes(data)
    except UndecodableBytes as exc:
        raise WorkspaceEditError(f"cannot edit {path}: {exc}") from None
    new_text = apply_text_edits(text, [_text_edit(e) for e in edits_json], encoding)
    write_bytes_checked(path, encode_like(path, new_text, data), scope)
    return path


def _text_edit(edit: dict[str, Any]) -> TextEdit:
    try:
        r = edit["range"]
        return TextEdit(
            range=Range(
                start=Position(line=r["start"]["line"], character=r["start"]["character"]),
                end=Position(line=r["end"]["line"], character=r["end"]["character"]),
            ),
            new_text=edit["newText"],
        )
    except KeyError as exc:
        raise WorkspaceEditError(f"malformed text edit {edit!r}: missing {exc}") from exc
    except (TypeError, ValueError) as exc:  # lsprotocol validates types and ranges
        raise WorkspaceEditError(f"malformed text edit {edit!r}: {exc}") from exc


def _create_on_disk(change: dict[str, Any], scope: WriteScope) -> Path:
    path = uri_to_path(change.get("uri"))
    options = change.get("options") or {}
    if path.exists():
        if options.get("overwrite"):
            write_bytes_checked(path, b"", scope)
        elif not options.get("ignoreIfExists"):
            raise WorkspaceEditError(f"cannot create {path}: it already exists")
        return path
    write_bytes_checked(path, b"", scope)
    return path


def _rename_on_disk(change: dict[str, Any], scope: WriteScope) -> list[Path]:
    old, new = uri_to_path(change.get("oldUri")), uri_to_path(change.get("newUri"))
    check_paths([old, new], scope)
    options = change.get("options") or {}
    if not old.exists():
        raise WorkspaceEditError(f"cannot rename {old}: no such file")
    if new.exists() and not options.get("overwrite"):
        if options.get("ignoreIfExists"):
            return []
        raise WorkspaceEditError(f"cannot rename {old} to {new}: the target exists")
    new.parent.mkdir(parents=True, exist_ok=True)
    old.replace(new)
    return [old, new]


def _delete_on_disk(change: dict[str, Any], scope: WriteScope) -> Path:
    path = uri_to_path(change.get("uri"))
    check_paths([path], scope)
    options = change.get("options") or {}
    if not path.exists():
        if options.get("ignoreIfNotExists"):
            return path
        raise WorkspaceEditError(f"cannot delete {path}: no such file")
    if path.is_dir():
        if not options.get("recursive") and any(path.iterdir()):
            raise WorkspaceEditError(f"cannot delete {path}: folder not empty (not recursive)")
        shutil.rmtree(path)
    else:
        path.unlink()
    return path
