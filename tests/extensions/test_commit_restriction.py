"""/commit may only run git add/status/commit (and read): the gate refuses anything else while
it runs, even in bypassPermissions mode, and the limit ends with the turn. A real Session and
git repository, the real SDK against the scripted model server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import anthropic
import pytest

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.restriction import Restriction
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.commands import COMMIT_TOOLS
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import Subject
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

WAIT = 60.0
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")


@pytest.mark.parametrize("tool, subject, allowed", [
    ("Bash", Subject("shell", command="git status"), True),
    ("Bash", Subject("shell", command="git add app.py && git commit -m 'x y'"), True),
    ("Bash", Subject("shell", command="git add . && rm -rf build"), False),
    ("Bash", Subject("shell", command="git push origin main"), False),
    ("Bash", Subject("shell", command="git commit -m \"$(cat /etc/passwd)\""), False),
    ("Write", Subject("write", path="app.py"), False),
    ("mcp__srv__deploy", Subject("external"), False),
    ("Read", Subject("read", path="app.py"), True),
    ("TodoWrite", Subject("session"), True),
])
def test_what_commit_may_do(tmp_path: Path, tool: str, subject: Subject, allowed: bool) -> None:
    restriction = Restriction.parse("/commit", list(COMMIT_TOOLS), tmp_path)
    refusal = restriction.refusal(tool, subject)
    assert (refusal is None) == allowed
    if refusal:
        assert "while /commit runs only these" in refusal and "Bash(git add:*)" in refusal


@pytest.mark.parametrize("command, flag", [
    ("git commit --amend -m 'x'", "--amend"),
    ("git add app.py && git commit --no-verify -m x", "--no-verify"),
    ("git commit -n -m x", "-n"),
    ("git commit -anm x", "-n"),  # hidden in a cluster of short flags
    ("git add -f .env", "-f"),
    ("git add --force secrets.key", "--force"),
])
def test_commit_never_amends_skips_hooks_or_forces_ignored_files(tmp_path: Path, command: str,
                                                                 flag: str) -> None:
    restriction = Restriction.parse("/commit", list(COMMIT_TOOLS), tmp_path)
    refusal = restriction.refusal("Bash", Subject("shell", command=command))
    assert refusal is not None and f" {flag} is refused" in refusal


def test_ordinary_commit_flags_stay_allowed(tmp_path: Path) -> None:
    restriction = Restriction.parse("/commit", list(COMMIT_TOOLS), tmp_path)
    for command in ("git commit -am 'fix'", "git commit --no-edit -m x", "git add -A"):
        assert restriction.refusal("Bash", Subject("shell", command=command)) is None, command


def bash(command: str) -> dict:
    return {"type": "tool_use", "name": "Bash", "input": {"command": command}}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    (ws / "app.py").write_text("x = 1\n")
    (ws / "keep").mkdir()
    return ws


async def test_commit_refuses_other_commands_until_the_turn_ends(
        model: ScriptedModelServer, ws: Path, tmp_path: Path) -> None:
    model.load({"sequencing": "sequential", "turns": [
        {"content": [bash("rm -rf keep")]},
        {"content": [bash("git status --short")]},
        {"content": "Nothing more to do."},
        {"content": [bash("touch after.txt")]},
        {"content": "done"}]})
    settings = ModelSettings(model="claude-sonnet-4-5", fallback_model=None, api_key="k",
                             base_url=model.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)
    events: list[ev.AgentEvent] = []
    session = Session(SessionConfig(workspace=ws, settings=settings, mode="bypassPermissions",
                                    state_dir=tmp_path / "state", user_memory_dirs=[]),
                      model=ModelService(settings, client), tools=default_pool(),
                      documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                      applier=None, sink=events.append, asker=None)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(session.prompt("/commit"), WAIT)
        assert (ws / "keep").is_dir(), "refused even in bypassPermissions mode"
        refused = model.requests[1]["messages"][-1]["content"][0]
        assert refused["is_error"] and "while /commit runs only these" in json.dumps(refused)
        status = model.requests[2]["messages"][-1]["content"][0]
        assert not status.get("is_error") and "app.py" in json.dumps(status)
        assert session.gate.restriction is None, "the limit ends with the turn"
        await asyncio.wait_for(session.prompt("make a file"), WAIT)
    finally:
        await session.close()
    assert (ws / "after.txt").exists()
