"""Read, Write, Edit, Glob and oversized-result handling."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from lsp_agent.tools.base import FileEdit, Tool, ToolContext, ToolError, ToolOutput
from lsp_agent.tools.files import FILE_TOOLS, Edit, EditInput, Glob, Read, Write, glob_regex
from lsp_agent.tools.results import finalize_output
from lsp_agent.workspace import documents
from lsp_agent.workspace.documents import DiskDocuments, DocumentSnapshot

OUTCOME = "Applied."


class RecordingProposals:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[FileEdit]]] = []

    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        self.calls.append((tool_use_id, changes))
        return OUTCOME

    @property
    def only_edit(self) -> FileEdit:
        assert len(self.calls) == 1 and len(self.calls[0][1]) == 1
        return self.calls[0][1][0]


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


class EditorBuffers(DiskDocuments):
    """Open documents with unsaved text take precedence over the disk."""

    def __init__(self, buffers: dict[Path, tuple[str, int]]):
        self.buffers = buffers

    def snapshot(self, path: Path) -> DocumentSnapshot:
        if path in self.buffers:
            text, version = self.buffers[path]
            return DocumentSnapshot(path=path, text=text, version=version)
        return super().snapshot(path)


@pytest.fixture
def proposals() -> RecordingProposals:
    return RecordingProposals()


@pytest.fixture
def ctx(tmp_path: Path, proposals: RecordingProposals) -> ToolContext:
    return ToolContext(
        workspace=tmp_path,
        documents=DiskDocuments(),
        proposals=proposals,
        diagnostics=NoDiagnostics(),
        results_dir=tmp_path / ".results",
        tool_use_id="toolu_1",
    )


async def run(tool: Tool, ctx: ToolContext, **raw) -> str:
    result = await tool.call(tool.input_model.model_validate(raw), ctx)
    return result.content if isinstance(result, ToolOutput) else result


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- schemas ---------------------------------------------------------------


def test_file_tools_have_clean_api_schemas():
    schemas = {cls.name: cls().api_schema() for cls in FILE_TOOLS}
    assert sorted(schemas) == ["Edit", "Glob", "Read", "Write"]
    read = schemas["Read"]["input_schema"]
    assert read["required"] == ["path"]
    assert "title" not in read["properties"]["offset"]
    assert Read.read_only and Glob.read_only and not Edit.read_only and not Write.read_only


def test_edit_schema_inlines_the_nested_edit_shape():
    schema = Edit().api_schema()["input_schema"]
    assert "$defs" not in schema and "$ref" not in str(schema) and "'title'" not in str(schema)
    edits = schema["properties"]["edits"]
    # An optional list is written as a list the model may leave out, not anyOf [list, null].
    assert "anyOf" not in edits and edits["type"] == "array" and "edits" not in schema["required"]
    assert edits["items"]["required"] == ["old_string", "new_string"]


# --- Read ------------------------------------------------------------------


async def test_read_numbers_lines_right_aligned_with_tab(ctx, tmp_path):
    write(tmp_path, "a.py", "import os\n\nprint(os)\n")
    assert await run(Read(), ctx, path="a.py") == "     1\timport os\n     2\t\n     3\tprint(os)"


async def test_read_offset_and_limit_report_remaining_lines(ctx, tmp_path):
    write(tmp_path, "a.txt", "".join(f"line {n}\n" for n in range(1, 11)))
    out = await run(Read(), ctx, path="a.txt", offset=3, limit=2)
    shown, note = out.split("\n\n")
    assert shown == "     3\tline 3\n     4\tline 4"
    assert "6 more lines" in note and "10 lines" in note and "offset=5" in note


async def test_read_whole_file_has_no_remaining_note(ctx, tmp_path):
    write(tmp_path, "a.txt", "x\ny\n")
    assert "more lines" not in await run(Read(), ctx, path="a.txt")


async def test_read_default_limit_is_2000_lines(ctx, tmp_path):
    write(tmp_path, "big.txt", "x\n" * 2500)
    out = await run(Read(), ctx, path="big.txt")
    assert "  2000\tx" in out and "  2001\t" not in out
    assert "500 more lines" in out and "offset=2001" in out


async def test_read_offset_past_end_is_an_error(ctx, tmp_path):
    write(tmp_path, "a.txt", "x\n")
    with pytest.raises(ToolError, match="past the end"):
        await run(Read(), ctx, path="a.txt", offset=5)


async def test_read_cuts_long_lines_with_marker(ctx, tmp_path):
    write(tmp_path, "min.js", "a" * 2500 + "\nshort\n")
    first, second = (await run(Read(), ctx, path="min.js")).split("\n")
    assert first.startswith("     1\t" + "a" * 2000) and "a" * 2001 not in first
    assert "500 more chars" in first
    assert second == "     2\tshort"


async def test_read_empty_file_says_so(ctx, tmp_path):
    write(tmp_path, "empty.py", "")
    assert "empty" in await run(Read(), ctx, path="empty.py")


async def test_read_crlf_lines_have_no_carriage_returns(ctx, tmp_path):
    (tmp_path / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    assert await run(Read(), ctx, path="w.txt") == "     1\tone\n     2\ttwo"


async def test_read_missing_file_suggests_similar_name(ctx, tmp_path):
    write(tmp_path, "src/config.py", "")
    with pytest.raises(ToolError) as err:
        await run(Read(), ctx, path="src/confg.py")
    assert str(err.value).startswith("File not found: src/confg.py")
    assert "Did you mean src/config.py?" in str(err.value)


async def test_read_missing_file_finds_same_name_in_another_folder(ctx, tmp_path):
    write(tmp_path, "pkg/util/helpers.py", "")
    with pytest.raises(ToolError, match=r"Did you mean pkg/util/helpers\.py"):
        await run(Read(), ctx, path="helpers.py")


async def test_read_missing_file_without_lookalike_has_no_suggestion(ctx, tmp_path):
    write(tmp_path, "main.py", "")
    with pytest.raises(ToolError) as err:
        await run(Read(), ctx, path="zzz_unrelated.txt")
    assert "Did you mean" not in str(err.value)


async def test_read_directory_is_an_error(ctx, tmp_path):
    (tmp_path / "pkg").mkdir()
    with pytest.raises(ToolError, match="pkg is a directory"):
        await run(Read(), ctx, path="pkg")


async def test_read_binary_file_is_an_error(ctx, tmp_path):
    (tmp_path / "img.png").write_bytes(b"\x89PNG\x00\x00\x01")
    with pytest.raises(ToolError, match="binary"):
        await run(Read(), ctx, path="img.png")


@pytest.fixture
def small_read_limit(monkeypatch):
    monkeypatch.setattr(documents, "MAX_READ_BYTES", 100)


async def test_read_huge_file_whole_is_refused_with_relative_path(ctx, tmp_path, small_read_limit):
    write(tmp_path, "log.txt", "".join(f"entry {n}\n" for n in range(1, 51)))
    with pytest.raises(ToolError) as err:
        await run(Read(), ctx, path="log.txt")
    assert "limit" in str(err.value) and str(tmp_path) not in str(err.value)


async def test_read_huge_file_line_range_is_streamed(ctx, tmp_path, small_read_limit):
    write(tmp_path, "log.txt", "".join(f"entry {n}\n" for n in range(1, 51)))
    out = await run(Read(), ctx, path="log.txt", offset=49, limit=5)
    assert out == "    49\tentry 49\n    50\tentry 50"


async def test_read_prefers_unsaved_editor_buffer(ctx, tmp_path):
    path = write(tmp_path, "a.py", "on disk\n")
    ctx.documents = EditorBuffers({path: ("unsaved\ntext", 7)})
    assert await run(Read(), ctx, path="a.py") == "     1\tunsaved\n     2\ttext"


async def test_read_resolves_dot_dot_segments(ctx, tmp_path):
    write(tmp_path, "a/b.txt", "hello\n")
    (tmp_path / "c").mkdir()
    assert await run(Read(), ctx, path="c/../a/b.txt") == "     1\thello"


# --- Write -----------------------------------------------------------------


async def test_write_new_file_proposes_creation(ctx, tmp_path, proposals):
    assert await run(Write(), ctx, path="new/mod.py", content="x = 1\n") == OUTCOME
    assert proposals.calls[0][0] == "toolu_1"
    assert proposals.only_edit == FileEdit(tmp_path / "new/mod.py", None, "x = 1\n", None)
    assert not (tmp_path / "new").exists()  # the tool itself never writes


async def test_write_existing_file_carries_old_text_and_buffer_version(ctx, tmp_path, proposals):
    path = write(tmp_path, "a.py", "disk\n")
    ctx.documents = EditorBuffers({path: ("buffer\n", 3)})
    await run(Write(), ctx, path="a.py", content="new\n")
    assert proposals.only_edit == FileEdit(path, "buffer\n", "new\n", 3)


async def test_write_keeps_crlf_line_endings_of_existing_file(ctx, tmp_path, proposals):
    (tmp_path / "w.txt").write_bytes(b"a\r\nb\r\n")
    await run(Write(), ctx, path="w.txt", content="c\nd\n")
    assert proposals.only_edit.new_text == "c\r\nd\r\n"


async def test_write_same_content_proposes_nothing(ctx, tmp_path, proposals):
    write(tmp_path, "a.py", "same\n")
    assert "nothing to change" in await run(Write(), ctx, path="a.py", content="same\n")
    assert proposals.calls == []


async def test_write_refuses_directory(ctx, tmp_path, proposals):
    (tmp_path / "pkg").mkdir()
    with pytest.raises(ToolError, match="directory"):
        await run(Write(), ctx, path="pkg", content="x")
    assert proposals.calls == []


# --- Edit ------------------------------------------------------------------

SOURCE = """\
def greet(name):
    message = "hello " + name
    return message


def part(name):
    return name
"""


async def test_edit_single_replacement(ctx, tmp_path, proposals):
    path = write(tmp_path, "g.py", SOURCE)
    out = await run(
        Edit(), ctx, path="g.py", edits=[{"old_string": '"hello "', "new_string": '"hi "'}]
    )
    assert out == OUTCOME
    edit = proposals.only_edit
    assert edit.path == path and edit.old_text == SOURCE and edit.version is None
    assert edit.new_text == SOURCE.replace('"hello "', '"hi "')
    assert path.read_text() == SOURCE  # proposed, not written


async def test_edit_shorthand_form(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    await run(Edit(), ctx, path="g.py", old_string="def part", new_string="def whole")
    assert "def whole(name):" in proposals.only_edit.new_text


async def test_edit_several_edits_apply_in_order_to_running_text(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    edits = [
        {"old_string": "def greet(name):", "new_string": "def welcome(name):"},
        # Only exists after the first edit:
        {"old_string": "welcome(name):\n    message", "new_string": "welcome(name):\n    text"},
        {"old_string": "return message", "new_string": "return text"},
    ]
    await run(Edit(), ctx, path="g.py", edits=edits)
    new = proposals.only_edit.new_text
    assert new.startswith('def welcome(name):\n    text = "hello " + name\n    return text\n')


async def test_edit_replace_all(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    await run(Edit(), ctx, path="g.py", old_string="name", new_string="who", replace_all=True)
    new = proposals.only_edit.new_text
    assert "name" not in new and new.count("who") == SOURCE.count("name")


async def test_edit_ambiguous_match_lists_line_numbers(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    with pytest.raises(ToolError) as err:
        await run(Edit(), ctx, path="g.py", old_string="(name):", new_string="(who):")
    message = str(err.value)
    assert "2 times" in message and "lines 1, 6" in message and "replace_all" in message
    assert proposals.calls == []


async def test_edit_not_found_shows_nearest_lines(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    with pytest.raises(ToolError) as err:
        await run(
            Edit(), ctx, path="g.py",
            old_string='    mesage = "helo " + name\n    return mesage', new_string="x",
        )  # fmt: skip
    message = str(err.value)
    assert "not found" in message
    assert '     2\t    message = "hello " + name\n     3\t    return message' in message
    assert "only in whitespace" not in message
    assert proposals.calls == []


async def test_edit_not_found_hints_whitespace_only_difference(ctx, tmp_path):
    write(tmp_path, "g.py", SOURCE)
    with pytest.raises(ToolError) as err:
        await run(
            Edit(), ctx, path="g.py",
            old_string="def part(name):\n\treturn name", new_string="def part(name):\n\treturn 1",
        )  # fmt: skip
    message = str(err.value)
    assert "     6\tdef part(name):\n     7\t    return name" in message
    assert "only in whitespace/indentation" in message


async def test_edit_not_found_hints_read_line_number_prefix(ctx, tmp_path):
    write(tmp_path, "g.py", SOURCE)
    with pytest.raises(ToolError, match="line-number prefix"):
        await run(Edit(), ctx, path="g.py", old_string="     7\t    return name", new_string="x")


async def test_edit_failure_names_the_edit_and_applies_nothing(ctx, tmp_path, proposals):
    write(tmp_path, "g.py", SOURCE)
    edits = [
        {"old_string": "def greet", "new_string": "def hello"},
        {"old_string": "no such text", "new_string": "y"},
    ]
    with pytest.raises(ToolError, match=r"^edits\[1\] of g\.py: old_string was not found"):
        await run(Edit(), ctx, path="g.py", edits=edits)
    assert proposals.calls == []


async def test_edit_identical_strings_is_an_error(ctx, tmp_path):
    write(tmp_path, "g.py", SOURCE)
    with pytest.raises(ToolError, match="identical"):
        await run(Edit(), ctx, path="g.py", old_string="def", new_string="def")


async def test_edit_missing_file_suggests_write(ctx):
    with pytest.raises(ToolError, match="use Write"):
        await run(Edit(), ctx, path="nope.py", old_string="a", new_string="b")


async def test_edit_uses_buffer_text_and_passes_its_version(ctx, tmp_path, proposals):
    path = write(tmp_path, "g.py", "disk text\n")
    ctx.documents = EditorBuffers({path: ("buffer text\n", 42)})
    await run(Edit(), ctx, path="g.py", old_string="buffer", new_string="edited")
    assert proposals.only_edit == FileEdit(path, "buffer text\n", "edited text\n", 42)


async def test_edit_crlf_file_matches_plain_newlines_and_keeps_crlf(ctx, tmp_path, proposals):
    (tmp_path / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    await run(Edit(), ctx, path="w.txt", old_string="one\ntwo", new_string="1\n2")
    assert proposals.only_edit.new_text == "1\r\n2\r\n"


def test_edit_input_requires_exactly_one_form():
    with pytest.raises(ValidationError, match="not both"):
        EditInput.model_validate(
            {"path": "a", "old_string": "x", "new_string": "y",
             "edits": [{"old_string": "x", "new_string": "y"}]}
        )  # fmt: skip
    with pytest.raises(ValidationError, match="old_string"):
        EditInput.model_validate({"path": "a", "old_string": "x"})
    with pytest.raises(ValidationError):
        EditInput.model_validate({"path": "a", "edits": []})


# --- Glob ------------------------------------------------------------------


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


async def test_glob_sorts_newest_first(ctx, tmp_path):
    for name, stamp in [("old.py", 1_000), ("new.py", 3_000), ("mid.py", 2_000)]:
        set_mtime(write(tmp_path, f"src/{name}", ""), stamp)
    write(tmp_path, "notes.txt", "")
    out = await run(Glob(), ctx, pattern="**/*.py")
    assert out.splitlines() == ["src/new.py", "src/mid.py", "src/old.py"]


async def test_glob_single_star_stays_in_one_folder(ctx, tmp_path):
    write(tmp_path, "top.py", "")
    write(tmp_path, "pkg/inner.py", "")
    assert await run(Glob(), ctx, pattern="*.py") == "top.py"


async def test_glob_within_path_and_brace_alternatives(ctx, tmp_path):
    set_mtime(write(tmp_path, "web/a.ts", ""), 1_000)
    set_mtime(write(tmp_path, "web/b.tsx", ""), 2_000)
    write(tmp_path, "web/c.js", "")
    write(tmp_path, "other/d.ts", "")
    out = await run(Glob(), ctx, pattern="*.{ts,tsx}", path="web")
    assert out.splitlines() == ["web/b.tsx", "web/a.ts"]


async def test_glob_skips_ignored_folders_without_git(ctx, tmp_path):
    write(tmp_path, "a.js", "")
    for folder in ("node_modules/lib", ".venv/lib", "__pycache__", ".git"):
        write(tmp_path, f"{folder}/x.js", "")
    assert await run(Glob(), ctx, pattern="**/*.js") == "a.js"


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    return tmp_path


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
async def test_glob_honours_gitignore_in_git_repo(ctx, tmp_path, git_repo):
    write(tmp_path, ".gitignore", "build/\n*.log\n")
    write(tmp_path, "src/app.py", "")
    write(tmp_path, "build/gen.py", "")
    write(tmp_path, "debug.log", "")
    assert await run(Glob(), ctx, pattern="**/*.py") == "src/app.py"
    assert (await run(Glob(), ctx, pattern="*.log")).startswith("No files match")


async def test_glob_truncates_at_200_results(ctx, tmp_path):
    for n in range(205):
        write(tmp_path, f"f{n:03}.txt", "")
    lines = (await run(Glob(), ctx, pattern="*.txt")).splitlines()
    assert len(lines) == 201 and "truncated" in lines[-1] and "205" in lines[-1]


async def test_glob_no_match_and_bad_folder(ctx, tmp_path):
    assert "No files match" in await run(Glob(), ctx, pattern="*.rs")
    with pytest.raises(ToolError, match="Folder not found"):
        await run(Glob(), ctx, pattern="*", path="missing")


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.py", "a.py", True),
        ("**/*.py", "x/y/a.py", True),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/k/test_a.py", True),
        ("src/*.py", "src/k/a.py", False),
        ("a?.txt", "ab.txt", True),
        ("a?.txt", "a/.txt", False),
        ("[!a]*.md", "a.md", False),
        ("[!a]*.md", "b.md", True),
        ("{x,y/**}/*.c", "y/z/q.c", True),
        ("{x,y/**}/*.c", "z/q.c", False),
        ("a+b(c).txt", "a+b(c).txt", True),
    ],
)
def test_glob_regex(pattern, path, expected):
    assert bool(glob_regex(pattern).fullmatch(path)) is expected


# --- finalize_output ---------------------------------------------------------


class Chatty(Tool):
    name = "Chatty"
    description = "test tool"
    input_model = EditInput
    max_result_chars = 1_000

    async def call(self, args, ctx):
        return ""


async def test_finalize_output_passes_small_results_through(ctx):
    result = await finalize_output(Chatty(), "short", ctx)
    assert result == ToolOutput(content="short")
    assert not ctx.results_dir.exists()


async def test_finalize_output_saves_oversized_result_and_previews_it(ctx):
    content = "".join(f"line {n}\n" for n in range(1, 1001))
    result = await finalize_output(Chatty(), ToolOutput(content=content, is_error=True), ctx)
    saved = ctx.results_dir / "toolu_1.txt"
    assert saved.read_text() == content
    assert result.is_error
    assert len(result.content) < 1_000
    assert result.content.startswith("line 1\nline 2\n")
    assert "line 1000" in result.content  # the tail is kept too
    assert f"Output was {len(content):,} chars; full output saved to {saved}" in result.content
    assert "Read with offset/limit or Grep" in result.content


async def test_finalize_output_without_tool_use_id_uses_a_unique_name(ctx):
    ctx.tool_use_id = ""
    await finalize_output(Chatty(), "x" * 5_000, ctx)
    (saved,) = ctx.results_dir.iterdir()
    assert saved.suffix == ".txt" and saved.read_text() == "x" * 5_000
