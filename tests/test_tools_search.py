"""Grep (ripgrep and pure-Python engines) and Diagnostics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lsp_agent.tools import search
from lsp_agent.tools.base import FileEdit, ToolContext, ToolError
from lsp_agent.tools.diagnostics import DIAGNOSTICS_TOOLS, Diagnostics
from lsp_agent.tools.search import SEARCH_TOOLS, Grep
from lsp_agent.workspace.documents import DiskDocuments

HAS_RG = shutil.which("rg") is not None
needs_rg = pytest.mark.skipif(not HAS_RG, reason="ripgrep (rg) not installed")


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        raise AssertionError("search tools never propose changes")


class ReportedDiagnostics:
    def __init__(self, by_path: dict[Path, list[dict]], with_all: bool = True):
        self.by_path = by_path
        if with_all:
            self.all_diagnostics = lambda: dict(self.by_path)

    async def diagnostics(self, path: Path) -> list[dict]:
        return self.by_path.get(path, [])


def make_ctx(root: Path, diagnostics=None) -> ToolContext:
    return ToolContext(
        workspace=root,
        documents=DiskDocuments(),
        proposals=NoProposals(),
        diagnostics=diagnostics or ReportedDiagnostics({}),
        results_dir=root / ".results",
    )


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return make_ctx(tmp_path)


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


ENGINES = [pytest.param(True, marks=needs_rg, id="rg"), pytest.param(False, id="python")]


@pytest.fixture(params=ENGINES)
def grep(request) -> Grep:
    return Grep(use_ripgrep=request.param)


async def run(tool, ctx: ToolContext, **raw) -> str:
    return await tool.call(tool.input_model.model_validate(raw), ctx)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, "app/main.py", "import os\n\ndef main():\n    return os.getcwd()\n")
    write(tmp_path, "app/util.py", "def helper():\n    pass\n\n\ndef Main_helper():\n    pass\n")
    write(tmp_path, "app.txt", "main entry point\n")
    write(tmp_path, "docs/guide.md", "".join(f"line {n}\n" for n in range(1, 21)))
    write(tmp_path, "node_modules/pkg/index.py", "def main(): pass\n")
    write(tmp_path, ".venv/lib/site.py", "def main(): pass\n")
    write(tmp_path, "logo.bin", b"def main\x00\x01\x02")
    return tmp_path


def test_grep_is_read_only_and_exported():
    assert SEARCH_TOOLS == [Grep] and Grep.read_only
    assert Grep().api_schema()["input_schema"]["required"] == ["pattern"]


async def test_files_with_matches_in_path_order_skipping_ignored_and_binary(grep, ctx, tree):
    assert await run(grep, ctx, pattern=r"def main") == "app/main.py"
    out = await run(grep, ctx, pattern="(?i)main")
    # app/ sorts before app.txt: paths are ordered folder by folder.
    assert out.splitlines() == ["app/main.py", "app/util.py", "app.txt"]


async def test_content_mode_has_line_numbers(grep, ctx, tree):
    out = await run(grep, ctx, pattern=r"^def", output_mode="content", path="app")
    assert out.splitlines() == [
        "app/main.py:3:def main():",
        "app/util.py:1:def helper():",
        "app/util.py:5:def Main_helper():",
    ]


async def test_content_mode_with_context_merges_and_separates_groups(grep, ctx, tree):
    out = await run(
        grep, ctx, pattern=r"line (3|5|15)$", output_mode="content", context=1, path="docs"
    )
    assert out.splitlines() == [
        "docs/guide.md-2-line 2",
        "docs/guide.md:3:line 3",
        "docs/guide.md-4-line 4",
        "docs/guide.md:5:line 5",
        "docs/guide.md-6-line 6",
        "--",
        "docs/guide.md-14-line 14",
        "docs/guide.md:15:line 15",
        "docs/guide.md-16-line 16",
    ]


async def test_count_mode(grep, ctx, tree):
    out = await run(grep, ctx, pattern="pass", output_mode="count")
    assert out.splitlines() == ["app/util.py:2", "(Total: 2 matching lines in 1 files)"]


async def test_case_insensitive(grep, ctx, tree):
    out = await run(grep, ctx, pattern="main_helper", output_mode="content")
    assert out.startswith("No matches")
    out = await run(grep, ctx, pattern="main_helper", case_insensitive=True, output_mode="content")
    assert out == "app/util.py:5:def Main_helper():"


async def test_glob_filter_by_name_and_by_path(grep, ctx, tree):
    assert await run(grep, ctx, pattern="main", glob="*.txt") == "app.txt"
    assert await run(grep, ctx, pattern="def", glob="app/*.py") == "app/main.py\napp/util.py"
    assert await run(grep, ctx, pattern="main", glob="!*.py") == "app.txt"


async def test_no_matches_message(grep, ctx, tree):
    out = await run(grep, ctx, pattern="zebra", glob="*.py")
    assert out == "No matches for 'zebra' in the workspace (glob '*.py')."
    out = await run(grep, ctx, pattern="zebra", path="app")
    assert out == "No matches for 'zebra' in app."


async def test_single_file_path(grep, ctx, tree):
    out = await run(grep, ctx, pattern="line 1", path="docs/guide.md", output_mode="count")
    assert out.splitlines()[0] == "docs/guide.md:11"  # line 1, line 10..19


async def test_head_limit_truncates_with_note(grep, ctx, tree):
    out = await run(grep, ctx, pattern="line", path="docs", output_mode="content", head_limit=3)
    lines = out.splitlines()
    assert lines[:3] == [
        "docs/guide.md:1:line 1",
        "docs/guide.md:2:line 2",
        "docs/guide.md:3:line 3",
    ]
    assert len(lines) == 4 and "truncated to the first 3 lines" in lines[3]


async def test_missing_path_is_an_error(grep, ctx, tree):
    with pytest.raises(ToolError, match="Path not found: nowhere"):
        await run(grep, ctx, pattern="x", path="nowhere")


async def test_invalid_regex_is_an_error(grep, ctx, tree):
    with pytest.raises(ToolError):
        await run(grep, ctx, pattern="(unclosed")


async def test_crlf_lines_match_at_end_and_print_without_carriage_return(grep, ctx, tmp_path):
    write(tmp_path, "w.txt", b"alpha\r\nbeta\r\n")
    assert await run(grep, ctx, pattern="alpha$", output_mode="content") == "w.txt:1:alpha"


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    return tmp_path


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
async def test_gitignore_is_honoured_in_git_repo(grep, ctx, tmp_path, git_repo):
    write(tmp_path, ".gitignore", "generated/\n")
    write(tmp_path, "src/a.py", "TODO one\n")
    write(tmp_path, "generated/b.py", "TODO two\n")
    write(tmp_path, ".hidden/c.py", "TODO three\n")  # hidden but not ignored: searched
    assert await run(grep, ctx, pattern="TODO") == ".hidden/c.py\nsrc/a.py"


@needs_rg
@pytest.mark.parametrize(
    "query",
    [
        {"pattern": "main"},
        {"pattern": "def \\w+", "output_mode": "content"},
        {"pattern": "line 1", "output_mode": "content", "context": 2},
        {"pattern": "e", "output_mode": "count"},
        {"pattern": "E", "case_insensitive": True, "glob": "*.{md,txt}"},
        {"pattern": "line", "output_mode": "content", "head_limit": 7, "context": 1},
        {"pattern": "xyz"},
    ],
)
async def test_engines_give_identical_output(ctx, tree, query):
    assert await run(Grep(use_ripgrep=True), ctx, **query) == await run(
        Grep(use_ripgrep=False), ctx, **query
    )


async def test_timeout_without_results_is_an_error(grep, ctx, tree, monkeypatch):
    monkeypatch.setattr(search, "SEARCH_TIMEOUT", 0)
    with pytest.raises(ToolError, match="timed out"):
        await run(grep, ctx, pattern="main")


@needs_rg
async def test_ripgrep_is_used_when_allowed(ctx, tree, monkeypatch):
    def no_python(*args):
        raise AssertionError("the Python engine ran")

    monkeypatch.setattr(search, "_search_in_python", no_python)
    assert await run(Grep(), ctx, pattern="entry") == "app.txt"


async def test_python_engine_is_used_without_rg(ctx, tree, monkeypatch):
    monkeypatch.setattr(search.shutil, "which", lambda name: None)
    assert await run(Grep(), ctx, pattern="entry") == "app.txt"


# --- Diagnostics -------------------------------------------------------------


def diag(line, col, message, severity=1, source=None, code=None) -> dict:
    item = {
        "range": {
            "start": {"line": line, "character": col},
            "end": {"line": line, "character": col + 1},
        },
        "message": message,
        "severity": severity,
    }
    if source:
        item["source"] = source
    if code is not None:
        item["code"] = code
    return item


def test_diagnostics_tool_is_read_only():
    assert DIAGNOSTICS_TOOLS == [Diagnostics] and Diagnostics.read_only


async def test_diagnostics_for_a_file_are_one_based_and_sorted(tmp_path):
    path = write(tmp_path, "src/a.py", "import os\n")
    source = ReportedDiagnostics(
        {
            path: [
                diag(4, 2, "undefined name 'x'", 1, "pyflakes"),
                diag(0, 0, "unused", 2, "ruff", "F401"),
            ]
        }
    )
    out = await run(Diagnostics(), make_ctx(tmp_path, source), path="src/a.py")
    assert out.splitlines() == [
        "src/a.py:1:1: warning [ruff F401] unused",
        "src/a.py:5:3: error [pyflakes] undefined name 'x'",
    ]


async def test_diagnostics_for_whole_workspace_use_all_diagnostics(tmp_path):
    a = write(tmp_path, "a.py", "")
    b = write(tmp_path, "b.py", "")
    source = ReportedDiagnostics(
        {b: [diag(1, 0, "bad", 3)], a: [diag(0, 4, "hm", 4)], tmp_path / "c.py": []}
    )
    out = await run(Diagnostics(), make_ctx(tmp_path, source))
    assert out.splitlines() == ["a.py:1:5: hint hm", "b.py:2:1: info bad"]


async def test_diagnostics_none_reported(tmp_path):
    write(tmp_path, "a.py", "")
    assert (
        await run(Diagnostics(), make_ctx(tmp_path)) == "No diagnostics reported for the workspace."
    )
    out = await run(Diagnostics(), make_ctx(tmp_path), path="a.py")
    assert out == "No diagnostics reported for a.py."


async def test_diagnostics_for_missing_file_is_an_error(tmp_path):
    with pytest.raises(ToolError, match=r"File not found: nope\.py"):
        await run(Diagnostics(), make_ctx(tmp_path), path="nope.py")


async def test_diagnostics_without_all_diagnostics_need_a_path(tmp_path):
    source = ReportedDiagnostics({}, with_all=False)
    with pytest.raises(ToolError, match="pass a file path"):
        await run(Diagnostics(), make_ctx(tmp_path, source))
