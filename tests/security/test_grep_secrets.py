"""Grep never shows a secret file's lines, with ripgrep and with the pure-Python engine, and
says which secret files it left out (whatever the pattern: which ones matched would leak)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lsp_agent.permissions.secrets import file_rules
from lsp_agent.tools.base import FileEdit, ToolContext
from lsp_agent.tools.search import Grep
from lsp_agent.workspace.documents import DiskDocuments

SECRET = "DB_PASSWORD=hunter2-7f3a"
ENGINES = [pytest.param(True, id="rg", marks=pytest.mark.skipif(
    shutil.which("rg") is None, reason="ripgrep (rg) not installed")),
    pytest.param(False, id="python")]


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        raise AssertionError("Grep never proposes changes")


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


def make_ctx(root: Path, **kwargs) -> ToolContext:
    return ToolContext(workspace=root, documents=DiskDocuments(), proposals=NoProposals(),
                       diagnostics=NoDiagnostics(), results_dir=root.parent / "results",
                       **kwargs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Not a git repository, so nothing is ignored: the .env of the issue report."""
    root = tmp_path / "project"
    for rel, text in {
        ".env": f"{SECRET}\n",
        "config/prod.pem": f"{SECRET}\n",
        ".aws/credentials": f"{SECRET}\n",
        "app/settings.py": "DB_PASSWORD = os.environ['DB_PASSWORD']\n",
        "deploy/prod.secret.yaml": "token: OTHER-7f3a\n",  # a secret only by settings
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


async def grep(engine: bool, ctx: ToolContext, **raw) -> str:
    tool = Grep(use_ripgrep=engine)
    return await tool.call(tool.input_model.model_validate(raw), ctx)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["content", "files_with_matches", "count"])
async def test_the_env_line_never_appears(project, engine, mode):
    out = await grep(engine, make_ctx(project), pattern="DB_PASSWORD", output_mode=mode)
    assert "hunter2" not in out
    assert "app/settings.py" in out  # the rest is searched as before
    shown = out.splitlines()
    assert not any(line.startswith((".env", "config/prod.pem", ".aws")) for line in shown)
    assert shown[-1] == ("(3 secret files not searched: .aws/credentials, .env, "
                         "config/prod.pem. Read one to ask the user for its content.)")


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_note_does_not_depend_on_the_pattern(project, engine):
    """If only matching secret files were named, a pattern would test their content."""
    hit = await grep(engine, make_ctx(project), pattern="hunter")
    miss = await grep(engine, make_ctx(project), pattern="no-such-text-anywhere")
    assert hit.splitlines()[-1] == miss.splitlines()[-1]
    assert hit.startswith("No matches") and miss.startswith("No matches")


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_glob_or_folder_of_secrets_finds_nothing(project, engine):
    ctx = make_ctx(project)
    assert (await grep(engine, ctx, pattern="hunter2", glob=".env")).startswith("No matches")
    assert (await grep(engine, ctx, pattern="hunter2", path="config")).startswith("No matches")


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_secret_named_as_the_path_is_searched(project, engine):
    """The permission gate asked about the path (tests/security/test_secret_corpus.py); once
    the user agreed, the file is searched like any other."""
    out = await grep(engine, make_ctx(project), pattern="hunter2", path=".env",
                     output_mode="content")
    assert SECRET in out
    folder = await grep(engine, make_ctx(project), pattern="hunter2", path=".aws")
    assert ".aws/credentials" in folder


@pytest.mark.parametrize("engine", ENGINES)
async def test_settings_add_secret_files(project, engine):
    ctx = make_ctx(project, file_rules=file_rules(("*.secret.yaml",)))
    out = await grep(engine, ctx, pattern="OTHER-", output_mode="content")
    assert "7f3a" not in out and "deploy/prod.secret.yaml" in out.splitlines()[-1]
    plain = await grep(engine, make_ctx(project), pattern="OTHER-", output_mode="content")
    assert "deploy/prod.secret.yaml:1:token: OTHER-7f3a" in plain  # not a secret by default
