"""Worktree isolation through a real ``lsp-agent serve``: an isolated child's changes come back
as one proposal, rebased onto the editor's unsaved buffer, reviewed with ``agent/review``
(deletions go out as the editor's DeleteFile); a worktree kept on request is listed with
``agent/worktrees`` and removed with ``agent/removeWorktree``; a worktree left by a killed
server is cleaned by the next one. Real git, real SDK over HTTP against the scripted model."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.types import events as ev
from tests.e2e_harness import processes_with, start_editor, unique_duration, wait_for_processes

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
ISOLATED = {"system_contains": "You work in an isolated git worktree"}
GAP = "\n\n\n"  # lines apart: a 3-way merge takes changes on both sides


def exists(path: str | Path) -> bool:
    return Path(path).exists()


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("X = 1\n")
    run_git(ws, "init", "-q", "-b", "main")
    run_git(ws, "add", "-A")
    run_git(ws, "commit", "-q", "-m", "start")
    return ws


async def editor_for(model, tmp_path: Path):
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    return await start_editor(model.base_url, tmp_path, server_env=env)


def isolated_call(**extra: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": "bump X", "prompt": "Set X to 2.", "subagent_type": "general-purpose",
        "isolation": "worktree", **extra}}


def tool(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": args}


async def test_a_rejected_proposal_on_an_unsaved_buffer_and_a_kept_worktree(
        model, tmp_path, repo):
    model.load({"turns": [
        {"content": [isolated_call(keep_worktree=True)], "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="X = 1", new_string="X = 2")]}]},
        {"content": "The user said no.", "when": [{**ISOLATED, "content": "X is 2 now."}]},
    ]})
    app = repo / "app.py"
    app.write_text(f"X = 1\n{GAP}def g():\n    return 0\n")
    run_git(repo, "commit", "-q", "-am", "g")
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(repo, mode="default")
        editor.open(app)
        typed = f"X = 1\n{GAP}def g():\n    return 9  # typed, not saved\n"
        editor.type_text(app, typed)
        turn = asyncio.ensure_future(
            editor.request("agent/prompt", {"sessionId": session, "text": "bump X"}))
        (created,) = await editor.wait_for(session, ev.ProposalCreated)
        # Rebased onto the buffer the user is typing in: only the child's line changes.
        (file,) = created.files
        assert file.path == "app.py" and file.version == 2
        assert "-X = 1\n+X = 2\n" in file.diff and "return 0" not in file.diff
        assert created.agent_name == "general-purpose" and created.agent_description == "bump X"
        review = await editor.request("agent/review", {"proposalId": created.proposal_id,
                                                       "reject": "all"})
        assert review["status"] == "rejected"
        await turn
        assert app.read_text() == f"X = 1\n{GAP}def g():\n    return 0\n"
        assert editor.buffer(app) == typed
        (ended,) = editor.of(session, ev.SubagentEnded)
        listed = await editor.request("agent/worktrees", {"workspaceUri": repo.as_uri()})
        (entry,) = listed["worktrees"]
        assert entry["agentId"] == ended.agent_id and entry["status"] == "kept"
        assert run_git(repo, "show", f"{entry['branch']}:app.py").startswith("X = 2\n")
        removed = await editor.request("agent/removeWorktree", {"agentId": entry["agentId"]})
        assert removed["removed"]["path"] == entry["path"]
        assert not exists(entry["path"])
        assert (await editor.request("agent/worktrees", {}))["worktrees"] == []
        assert "lsp-agent/" not in run_git(repo, "branch", "--list")
    finally:
        await editor.client.shutdown_session()


async def test_an_accepted_proposal_creates_and_deletes_through_the_editor(
        model, tmp_path, repo):
    (repo / "old.py").write_text("OLD = 1\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "old")
    model.load({"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            tool("Write", path="new.py", content="NEW = 1\n"),
            tool("Edit", path="app.py", old_string="X = 1", new_string="X = 2"),
            tool("Bash", command="rm old.py")]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": "done"}]},
    ]})
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(repo, mode="default")
        turn = asyncio.ensure_future(  # the editor allows the child's rm (it is asked)
            editor.request("agent/prompt", {"sessionId": session, "text": "go"}))
        (created,) = await editor.wait_for(session, ev.ProposalCreated)
        assert {f.path: (f.is_new, f.is_deleted) for f in created.files} == {
            "new.py": (True, False), "app.py": (False, False), "old.py": (False, True)}
        assert (repo / "old.py").exists() and not (repo / "new.py").exists()
        review = await editor.request("agent/review", {"proposalId": created.proposal_id,
                                                       "accept": "all"})
        assert review["status"] == "accepted"
        await turn
        deletes = [c for e in editor.applied for c in e["documentChanges"]
                   if c.get("kind") == "delete"]
        assert [d["uri"] for d in deletes] == [(repo / "old.py").as_uri()]
        assert not (repo / "old.py").exists()
        assert (repo / "new.py").read_text() == "NEW = 1\n"
        assert (repo / "app.py").read_text() == "X = 2\n"
        assert (await editor.request("agent/worktrees", {}))["worktrees"] == []
    finally:
        await editor.client.shutdown_session()


async def test_a_worktree_of_a_killed_server_is_cleaned_by_the_next(model, tmp_path, repo):
    marker = unique_duration(300)
    model.load({"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Bash", "input": {"command": f"sleep {marker}"}}]}]},
        {"content": "never"},
    ]})
    editor = await editor_for(model, tmp_path)
    turn: asyncio.Future[Any] = asyncio.Future()
    try:
        session = await editor.new_session(repo, mode="bypassPermissions")
        turn = asyncio.ensure_future(  # the turn never ends: the server dies
            editor.request("agent/prompt", {"sessionId": session, "text": "go"}))
        assert await wait_for_processes(f"sleep {marker}", present=True)
        (started,) = editor.of(session, ev.SubagentStarted)
        worktrees = list((tmp_path / ".state" / "worktrees").glob("*/agent-*/"))
        assert [w.name for w in worktrees] == [started.agent_id]
        os.kill(editor.client._server.pid, signal.SIGKILL)
        assert await wait_for_processes(marker, present=False) == []
    finally:
        turn.cancel()
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await editor.client.shutdown_session()
    editor = await editor_for(model, tmp_path)
    try:
        listed = await editor.request("agent/worktrees", {"workspaceUri": repo.as_uri()})
        assert listed["worktrees"] == [], "unchanged: removed"
        assert not exists(worktrees[0])
        assert "lsp-agent/" not in run_git(repo, "branch", "--list")
    finally:
        await editor.client.shutdown_session()
