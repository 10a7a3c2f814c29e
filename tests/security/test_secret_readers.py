"""The other ways content reaches the model honour the secret table too: settings that extend
it, memory imports, editor context, re-reads after a compaction, workspace diagnostics; and the
shell checks themselves (bounded, independent of the secret's content, off the event loop)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path

import pytest

from lsp_agent.context.memory import MemoryLoader
from lsp_agent.permissions import settings as st
from lsp_agent.permissions import shell_secrets
from lsp_agent.permissions.guard import ToolGuard
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.scripted.usage import canonical_json
from lsp_agent.sessions.context import prompt_blocks
from lsp_agent.tools.base import ToolContext
from lsp_agent.tools.diagnostics import Diagnostics, DiagnosticsInput
from lsp_agent.tools.files import Read, ReadInput
from lsp_agent.tools.shell import Bash, BashInput
from lsp_agent.types.editor import EditorContext
from lsp_agent.workspace.documents import DiskDocuments
from tests.test_context_session import make_session, read, summary_turn

SECRET = "hunter2-7f3a"


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LSP_AGENT_MANAGED_SETTINGS", str(tmp_path / "managed.json"))
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / ".env").write_text(f"TOKEN={SECRET}\n")
    return root


def bash(gate: PermissionGate, command: str):
    return gate.evaluate(Bash(), BashInput(command=command), None)


# -- settings ----------------------------------------------------------------------------------


def test_settings_extend_the_secret_table_for_every_reader(ws):
    (ws / "deploy").mkdir()
    (ws / "deploy" / "prod.vault.yaml").write_text(f"token: {SECRET}\n")
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"permissions": {"secretFiles": ["*.vault.yaml"]}}))
    gate = PermissionGate(ws, settings=st.load(ws))
    target = ws / "deploy" / "prod.vault.yaml"
    assert gate.evaluate(Read(), ReadInput(path=str(target)), target).action == "ask"
    assert bash(gate, "cat deploy/prod.vault.yaml").action == "ask"
    assert "prod.vault.yaml" in bash(gate, "grep -r token deploy").reason
    plain = PermissionGate(ws)
    assert bash(plain, "grep -r token deploy").action == "allow"


def test_bad_secret_patterns_are_reported_not_fatal(ws):
    loaded = st.merge([st.Source("options", None, {"permissions": {
        "secretFiles": ["", "*.vault"], "protectedFiles": "not a list"}})], ws)
    assert loaded.secret_files == ["*.vault"]
    assert any("secretFiles" in w for w in loaded.warnings)
    assert any("protectedFiles" in w for w in loaded.warnings)


# -- prompt context ----------------------------------------------------------------------------


def test_memory_files_never_import_a_secret(ws):
    (ws / "AGENTS.md").write_text("Conventions: @docs/style.md and @config/.env.local\n")
    (ws / "docs").mkdir()
    (ws / "docs" / "style.md").write_text("Use tabs.\n")
    (ws / "config").mkdir()
    (ws / "config" / ".env.local").write_text(f"TOKEN={SECRET}\n")
    loaded = MemoryLoader(ws, user_dirs=[]).initial()
    texts = "".join(f.text for f in loaded)
    assert "Use tabs." in texts and SECRET not in texts


def test_editor_context_leaves_out_the_code_around_a_selection_in_a_secret(ws):
    (ws / ".env").write_text("".join(f"KEY{n}={SECRET}\n" for n in range(20)))
    position = {"line": 10, "character": 0}
    context = EditorContext(uri=(ws / ".env").as_uri(),
                            range={"start": position, "end": position})
    text = prompt_blocks("explain", context, ws, DiskDocuments())[0]["text"]
    assert SECRET not in text and "secret file" in text
    ordinary = EditorContext(uri=(ws / "src" / "app.py").as_uri(),
                             range={"start": {"line": 0, "character": 0},
                                    "end": {"line": 0, "character": 0}})
    assert "print('app')" in prompt_blocks("x", ordinary, ws, DiskDocuments())[0]["text"]


@pytest.mark.filterwarnings("ignore:The model .* is deprecated")
async def test_a_denied_read_is_not_read_again_after_a_compaction(model, ws):
    """The conversation 'used' .env (a Read the gate refused); the compaction re-reads the
    files used recently, but never a secret."""
    model.load({"sequencing": "sequential", "turns": [
        {"content": [read("src/app.py"), read(".env")]}, {"content": "read them"},
        summary_turn("SUMMARY: files were read."), {"content": "continuing"}]})
    session = make_session(model, ws, [])
    await session.prompt("inspect the app and its settings")
    assert await session.compact() is not None
    await session.prompt("go on")
    first = canonical_json(model.requests[-1]["messages"][0])
    assert "Current content of src/app.py" in first
    assert SECRET not in canonical_json(model.requests)


class Reported:
    def __init__(self, found: dict[Path, list[dict]]):
        self.found = found

    async def diagnostics(self, path: Path) -> list[dict]:
        return self.found.get(path, [])

    def all_diagnostics(self) -> dict[Path, list[dict]]:
        return self.found


async def test_workspace_diagnostics_leave_secret_files_out(ws):
    problem = {"range": {"start": {"line": 0, "character": 0}}, "severity": 1,
               "message": f"invalid line: TOKEN={SECRET}"}
    other = {**problem, "message": "undefined name"}
    found = {ws / ".env": [problem], ws / "src" / "app.py": [other]}
    ctx = ToolContext(workspace=ws, documents=DiskDocuments(), proposals=None,  # type: ignore
                      diagnostics=Reported(found), results_dir=ws / ".results")
    out = await Diagnostics().call(DiagnosticsInput(), ctx)
    assert SECRET not in out and "undefined name" in out and ".env" in out.splitlines()[-1]
    asked = await Diagnostics().call(DiagnosticsInput(path=".env"), ctx)  # the gate asked
    assert SECRET in asked


# -- the shell checks --------------------------------------------------------------------------


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=root, check=True, capture_output=True, timeout=60)


def test_the_git_check_does_not_depend_on_the_secret(ws):
    """-S/-G select commits by content: the check drops them, so the question (or its absence)
    says nothing about what the secret contains."""
    git(ws, "init", "-q")
    git(ws, "add", "-f", ".env", "src")
    git(ws, "commit", "-q", "-m", "c")
    gate = PermissionGate(ws)
    present, absent = bash(gate, f"git log -S {SECRET}"), bash(gate, "git log -S absent")
    assert present.action == absent.action == "ask"
    assert present.reason.replace(SECRET, "absent") == absent.reason


def test_rg_reads_hidden_files_only_when_told(ws):
    gate = PermissionGate(ws)
    assert bash(gate, "rg TOKEN").action == "allow"  # .env is hidden: rg skips it
    for command in ("rg --hidden TOKEN", "rg -uu TOKEN", "rg -u -u TOKEN", "rg -. TOKEN"):
        assert bash(gate, command).action == "ask", command
    assert bash(gate, "rg -u TOKEN").action == "allow"  # -u alone: ignore files, not hidden


def test_find_exec_follows_name_tests_only_when_they_are_plain(ws):
    gate = PermissionGate(ws)
    assert bash(gate, "find . -name '*.py' -type f -exec cat {} +").action == "allow"
    for command in ("find . -name '*.py' -o -name '.env' -exec cat {} +",
                    "find . ! -name '*.py' -exec cat {} +", "find . -exec cat {} \\;"):
        assert bash(gate, command).action == "ask", command


def test_a_walk_that_is_too_large_asks(ws, monkeypatch):
    monkeypatch.setattr(shell_secrets, "MAX_WALK_ENTRIES", 2)
    (ws / "many").mkdir()
    for n in range(5):
        (ws / "many" / f"{n}.txt").write_text("x\n")
    verdict = bash(PermissionGate(ws), "grep -r x many")
    assert verdict.action == "ask" and "more than 2" in verdict.reason


def test_checking_commands_are_bounded(ws, monkeypatch):
    monkeypatch.setattr(shell_secrets, "GIT_CHECK_TIMEOUT", 0.2)
    with pytest.raises(shell_secrets.GitCheckFailed, match="no answer"):
        list(shell_secrets.run_bounded(["sleep", "30"], ws))
    monkeypatch.setattr(shell_secrets, "MAX_GIT_OUTPUT", 10)
    with pytest.raises(shell_secrets.GitCheckFailed, match="too much"):
        list(shell_secrets.run_bounded(["yes"], ws))


async def test_shell_verdicts_are_computed_off_the_event_loop(ws):
    gate = PermissionGate(ws)
    threads = []
    original = gate.evaluate

    def evaluate(*args):
        threads.append(threading.get_ident())
        return original(*args)

    gate.evaluate = evaluate  # type: ignore[method-assign]
    screened = await ToolGuard(gate).screen(Bash(), BashInput(command="git log -p"),
                                            lambda raw: ws / raw)
    assert screened.verdict.action in {"allow", "ask"}
    assert threads and threads[0] != threading.get_ident()
    await asyncio.sleep(0)


def test_names_and_metadata_are_not_secret_reads(ws):
    """`ls .env` shows no content: it asks as before in default mode (a path that looks like a
    secret), but it is not a bypass-immune secret read."""
    assert bash(PermissionGate(ws), "ls -la .env").action == "ask"
    assert bash(PermissionGate(ws, "bypassPermissions"), "ls -la .env").action == "allow"
    assert bash(PermissionGate(ws, "bypassPermissions"), "cat .env").action == "ask"
