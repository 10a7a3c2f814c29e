"""Files keep their bytes: encoding detection, and edits that change only the hunk's bytes.

The property tests run the real flow on real files: Write/Edit read the file through the
document source, the proposal is built and applied by the ProposalBook (``acceptEdits``) and
written by the server's disk writer; the headless client's ``apply_workspace_edit_to_disk``
is checked the same way. Every byte outside the changed line must come back unchanged.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anthropic._utils._json import openapi_dumps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygls.protocol import default_converter

from lsp_agent.edits.diff import split_lines
from lsp_agent.edits.workspace_edit import apply_workspace_edit_to_disk, text_edits_between
from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, write_text_checked
from lsp_agent.server.editor import DiskApplier
from lsp_agent.sessions.proposals import ProposalBook, ProposalHost
from lsp_agent.tools.base import ToolContext, ToolError
from lsp_agent.tools.files import Edit, EditInput, Read, ReadInput, Write, WriteInput
from lsp_agent.workspace.documents import DiskDocuments, DocumentSnapshot, FileReadError
from lsp_agent.workspace.encoding import (
    TextEncoding,
    UndecodableBytes,
    UnencodableText,
    decode_bytes,
    printable,
)

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- the real flow


@dataclass
class Session:
    """What a ProposalBook needs of a session."""

    workspace: Path
    mode: str = "acceptEdits"
    id: str = "s1"
    documents: Any = field(default_factory=DiskDocuments)
    events: list[Any] = field(default_factory=list)

    def emit(self, event: Any) -> None:
        self.events.append(event)


def host_of(session: Session) -> ProposalHost:
    return ProposalHost(session.id, session.workspace, session.documents, session.emit,
                        lambda: session.mode)  # type: ignore[arg-type,return-value]


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


def tool_context(workspace: Path, mode: str = "acceptEdits") -> ToolContext:
    session = Session(workspace, mode)
    return ToolContext(workspace=workspace, documents=session.documents,
                       proposals=ProposalBook(host_of(session), DiskApplier()),
                       diagnostics=NoDiagnostics(), results_dir=workspace / ".results",
                       tool_use_id="toolu_1")


async def write_tool(workspace: Path, rel: str, content: str) -> str:
    return await Write().call(WriteInput(path=rel, content=content), tool_context(workspace))


async def edit_tool(workspace: Path, rel: str, old: str, new: str) -> str:
    args = EditInput(path=rel, old_string=old, new_string=new)
    return await Edit().call(args, tool_context(workspace))


def without_bom(encoding: TextEncoding) -> TextEncoding:
    return TextEncoding(encoding.codec, b"", encoding.errors)


def assert_only_line_changed(original: bytes, written: bytes, text: str, index: int,
                             new_line: str) -> None:
    """``written`` is ``original`` with line ``index`` (of ``text``, its decoding) replaced by
    ``new_line``: the same bytes before and after it, the new line in the file's encoding."""
    _, encoding = decode_bytes(original)
    lines = split_lines(text)
    prefix = encoding.encode("".join(lines[:index]))  # with the BOM
    suffix = without_bom(encoding).encode("".join(lines[index + 1:]))
    assert original.startswith(prefix) and original.endswith(suffix)
    assert written[:len(prefix)] == prefix, "bytes before the hunk changed"
    assert written[len(written) - len(suffix):] == suffix, "bytes after the hunk changed"
    assert written[len(prefix):len(written) - len(suffix)] == without_bom(encoding).encode(new_line)


def replace_line(text: str, index: int, content: str) -> tuple[str, str]:
    """``text`` with line ``index``'s content replaced (its line ending kept)."""
    lines = split_lines(text)
    old = lines[index]
    ending = old[len(old.rstrip("\r\n")):]
    lines[index] = content + ending
    return "".join(lines), lines[index]


# --------------------------------------------------------------------------- generated files

LATIN1_CHARS = st.characters(codec="latin-1", exclude_categories=("Cc",))
CP1252_ONLY = bytes(range(0x80, 0xA0)).decode("cp1252", "ignore")  # curly quotes, euro...
CP1252_CHARS = st.one_of(LATIN1_CHARS, st.sampled_from(CP1252_ONLY))
UNICODE_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"))
ENDINGS = st.sampled_from(["\n", "\r\n"])


def line_text(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.text(chars, max_size=30).map(lambda s: s.replace("\r", "").replace("\n", ""))


@st.composite
def text_file(draw, chars, must_contain: str, encoding: TextEncoding) -> tuple[bytes, int, str]:
    """(bytes of a file, index of the line to change, the line's new content)."""
    lines = draw(st.lists(line_text(chars), min_size=2, max_size=12))
    endings = draw(st.lists(ENDINGS, min_size=len(lines), max_size=len(lines)))
    index = draw(st.integers(0, len(lines) - 1))
    keep = (index + 1) % len(lines)
    lines[keep] += must_contain  # an unchanged line shows what the file's encoding is
    text = "".join(line + end for line, end in zip(lines, endings, strict=True))
    if lines[-1] and draw(st.booleans()):
        text = text[: -len(endings[-1])]  # no final newline
    new_content = draw(line_text(chars))
    return encoding.encode(text), index, new_content


@st.composite
def utf8_with_stray_bytes(draw) -> tuple[bytes, int, str]:
    lines = draw(st.lists(line_text(UNICODE_CHARS), min_size=2, max_size=10))
    index = draw(st.integers(0, len(lines) - 1))
    raw = []
    for number, line in enumerate(lines):
        data = line.encode()
        if number != index and draw(st.booleans()):
            stray = draw(st.sampled_from([b"\xff", b"\xfe", b"\xc0", b"\x80", b"\xe9"]))
            cut = draw(st.integers(0, len(line)))
            data = line[:cut].encode() + stray + line[cut:].encode()
        raw.append(data + b"\n")
    keep = (index + 1) % len(lines)
    raw[keep] = "ünïcødé ".encode() + raw[keep] + b"\xff"  # mostly UTF-8, one stray byte
    return b"".join(raw), index, draw(line_text(UNICODE_CHARS))


FAMILIES = {
    "latin-1": text_file(LATIN1_CHARS, "café", TextEncoding("latin-1")),
    "cp1252": text_file(CP1252_CHARS, "“€”", TextEncoding("cp1252")),
    "utf-16-le-bom": text_file(UNICODE_CHARS, "", TextEncoding("utf-16-le", b"\xff\xfe")),
    "utf-16-be-bom": text_file(UNICODE_CHARS, "", TextEncoding("utf-16-be", b"\xfe\xff")),
    "utf-8-bom": text_file(UNICODE_CHARS, "", TextEncoding("utf-8", b"\xef\xbb\xbf")),
    "utf-8-crlf": text_file(UNICODE_CHARS, "", TextEncoding()),
    "stray-bytes": utf8_with_stray_bytes(),
}


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("family", FAMILIES)
def test_decoding_round_trips_byte_for_byte(family):
    @PROPERTY
    @given(FAMILIES[family])
    def check(case):
        data = case[0]
        text, encoding = decode_bytes(data)
        assert encoding.encode(text) == data

    check()


@pytest.mark.parametrize("family", FAMILIES)
def test_write_through_a_proposal_changes_only_the_hunks_bytes(family):
    @PROPERTY
    @given(FAMILIES[family])
    def check(case):
        original, index, new_content = case
        with tempfile.TemporaryDirectory() as folder:
            workspace = Path(folder)
            path = workspace / "file.txt"
            path.write_bytes(original)
            text, _ = decode_bytes(original)
            new_text, new_line = replace_line(text, index, new_content)
            outcome = asyncio.run(write_tool(workspace, "file.txt", new_text))
            written = path.read_bytes()
        if new_text == text:
            assert "nothing to change" in outcome and written == original
            return
        assert "applied" in outcome.lower(), outcome
        assert_only_line_changed(original, written, text, index, new_line)

    check()


@pytest.mark.parametrize("family", FAMILIES)
def test_headless_client_edit_changes_only_the_hunks_bytes(family):
    @PROPERTY
    @given(FAMILIES[family])
    def check(case):
        original, index, new_content = case
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "file.txt"
            path.write_bytes(original)
            text, _ = decode_bytes(original)
            new_text, new_line = replace_line(text, index, new_content)
            edits = default_converter().unstructure(text_edits_between(text, new_text))
            apply_workspace_edit_to_disk({"changes": {path.as_uri(): edits}}, roots=[Path(folder)])
            written = path.read_bytes()
        assert_only_line_changed(original, written, text, index, new_line)

    check()


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("data", "label", "text"),
    [
        (b"caf\xe9\n", "latin-1 (ISO-8859-1)", "café\n"),
        (b"\x93quoted\x94 \x80 5\n", "cp1252 (Windows-1252)", "“quoted” € 5\n"),
        (b"\x81 undefined in cp1252\n", "latin-1 (ISO-8859-1)", "\x81 undefined in cp1252\n"),
        ("café\n".encode(), "UTF-8", "café\n"),
        (b"\xef\xbb\xbfhi\r\n", "UTF-8 with BOM", "hi\r\n"),
        (b"\xff\xfe" + "hé\n".encode("utf-16-le"), "UTF-16 LE with BOM", "hé\n"),
        (b"\xfe\xff" + "hé\n".encode("utf-16-be"), "UTF-16 BE with BOM", "hé\n"),
        ("naïve ".encode() + b"\xff\n", "UTF-8 with invalid bytes", "naïve \udcff\n"),
    ],
)
def test_detection(data, label, text):
    decoded, encoding = decode_bytes(data)
    assert (encoding.label, decoded) == (label, text)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x01binary", "binary"),
        (b"\xff\xfe" + b"abc", "not valid UTF-16 LE"),  # an odd number of bytes after the BOM
    ],
)
def test_undecodable_bytes_are_refused(data, why):
    with pytest.raises(UndecodableBytes, match=why):
        decode_bytes(data)


def test_unencodable_text_names_the_character_and_line():
    with pytest.raises(UnencodableText, match=r"line 2 has '€' \(U\+20AC\), which latin-1"):
        TextEncoding("latin-1").encode("prix\n10 €\n")


def test_printable_keeps_length_and_replaces_only_kept_bytes():
    text = "naïve \udcff!"
    assert printable(text) == "naïve \ufffd!" and len(printable(text)) == len(text)


# --------------------------------------------------------------------------- the cases


async def test_latin1_edit_changes_only_the_hunks_bytes(tmp_path):
    original = b"# caf\xe9 menu\nprice = 1\n# cr\xe8me br\xfbl\xe9e\n"
    (tmp_path / "menu.py").write_bytes(original)

    outcome = await edit_tool(tmp_path, "menu.py", "price = 1", "price = 2")
    assert "applied" in outcome
    outcome = await edit_tool(tmp_path, "menu.py", "price = 2", "price = 3  # é")  # twice

    assert (tmp_path / "menu.py").read_bytes() == \
        b"# caf\xe9 menu\nprice = 3  # \xe9\n# cr\xe8me br\xfbl\xe9e\n"


async def test_crlf_and_bom_survive_an_edit(tmp_path):
    original = b"\xef\xbb\xbfline one\r\nline two\r\nline three\r\n"
    (tmp_path / "a.txt").write_bytes(original)

    await edit_tool(tmp_path, "a.txt", "line two", "line 2")

    assert (tmp_path / "a.txt").read_bytes() == b"\xef\xbb\xbfline one\r\nline 2\r\nline three\r\n"


async def test_stray_byte_in_an_untouched_line_survives(tmp_path):
    original = "naïve\n".encode() + b"bad \xff byte\nlast\n"
    (tmp_path / "a.txt").write_bytes(original)

    await edit_tool(tmp_path, "a.txt", "last", "final")

    assert (tmp_path / "a.txt").read_bytes() == "naïve\n".encode() + b"bad \xff byte\nfinal\n"


async def test_text_the_encoding_cannot_hold_is_refused_before_review(tmp_path):
    (tmp_path / "menu.txt").write_bytes(b"caf\xe9\nprice\n")

    with pytest.raises(ToolError, match=r"stored as latin-1 .*'€' \(U\+20AC\)"):
        await edit_tool(tmp_path, "menu.txt", "price", "price in €")
    assert (tmp_path / "menu.txt").read_bytes() == b"caf\xe9\nprice\n"


def test_disk_writer_refuses_unencodable_text_and_keeps_the_file(tmp_path):
    path = tmp_path / "menu.txt"
    path.write_bytes(b"caf\xe9\n")

    with pytest.raises(WriteRefused, match="stored as latin-1"):
        write_text_checked(path, "café €\n", WriteScope.inside(tmp_path))
    assert path.read_bytes() == b"caf\xe9\n"


def test_editor_replacement_chars_do_not_overwrite_kept_bytes(tmp_path):
    # An editor that decoded the file as UTF-8 shows the stray byte as U+FFFD; saving its
    # text would silently replace the byte.
    path = tmp_path / "a.txt"
    path.write_bytes("naïve\n".encode() + b"bad \xff byte\n")

    with pytest.raises(WriteRefused, match="not valid UTF-8"):
        write_text_checked(path, "naïve\nbad \ufffd byte\nnew\n", WriteScope.inside(tmp_path))
    assert path.read_bytes() == "naïve\n".encode() + b"bad \xff byte\n"


async def test_read_says_how_a_non_utf8_file_is_stored(tmp_path):
    (tmp_path / "menu.txt").write_bytes(b"caf\xe9\n")
    out = await Read().call(ReadInput(path="menu.txt"), tool_context(tmp_path))
    assert out.startswith("     1\tcafé")
    assert "stored as latin-1 (ISO-8859-1)" in out


async def test_read_of_stray_bytes_is_safe_to_send_to_the_model(tmp_path):
    (tmp_path / "a.txt").write_bytes("naïve\n".encode() + b"bad \xff byte\n")
    out = await Read().call(ReadInput(path="a.txt"), tool_context(tmp_path))
    assert "bad \ufffd byte" in out and "1 byte(s) that are not valid UTF-8" in out
    openapi_dumps({"content": out})  # what the SDK does; a lone surrogate would raise


async def test_utf16_file_reads_and_edits_in_utf16(tmp_path):
    original = b"\xff\xfe" + "first\nsecond\n".encode("utf-16-le")
    (tmp_path / "a.txt").write_bytes(original)

    out = await Read().call(ReadInput(path="a.txt"), tool_context(tmp_path))
    await edit_tool(tmp_path, "a.txt", "second", "2nd")

    assert "     2\tsecond" in out
    assert (tmp_path / "a.txt").read_bytes() == b"\xff\xfe" + "first\n2nd\n".encode("utf-16-le")


def test_undecodable_file_is_refused_with_a_clear_message(tmp_path):
    (tmp_path / "odd.txt").write_bytes(b"\xff\xfe" + b"abc")
    with pytest.raises(FileReadError, match="UTF-16 LE byte order mark but is not valid"):
        DiskDocuments().snapshot(tmp_path / "odd.txt")


def test_disk_snapshot_carries_the_encoding(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"caf\xe9\n")
    snapshot = DiskDocuments().snapshot(tmp_path / "a.txt")
    assert snapshot == DocumentSnapshot(tmp_path / "a.txt", "café\n", None, TextEncoding("latin-1"))
