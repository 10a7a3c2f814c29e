"""Worktree isolation through a real ``lsp-agent serve``: an isolated child's changes are kept
on a branch, listed with ``agent/worktrees`` and removed with ``agent/removeWorktree``; a
worktree left by a killed server is cleaned by the next one. Real git, real SDK over HTTP
against the scripted model."""

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


def isolated_call() -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": "bump X", "prompt": "Set X to 2.", "subagent_type": "general-purpose",
        "isolation": "worktree"}}


async def test_kept_changes_are_listed_and_removed_through_the_protocol(model, tmp_path, repo):
    model.load({"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Edit", "input": {
                "path": "app.py", "old_string": "X = 1", "new_string": "X = 2"}}]}]},
        {"content": "The change waits on its branch.",
         "when": [{**ISOLATED, "content": "X is 2 now."}]},
    ]})
    editor = await editor_for(model, tmp_path)
    try:
        session = await editor.new_session(repo, mode="default")
        await editor.request("agent/prompt", {"sessionId": session, "text": "bump X"})
        (ended,) = editor.of(session, ev.SubagentEnded)
        assert ended.worktree is not None and ended.worktree.kept
        assert editor.of(session, ev.ProposalCreated) == [], "no proposal to the editor"
        assert (repo / "app.py").read_text() == "X = 1\n"
        listed = await editor.request("agent/worktrees", {"workspaceUri": repo.as_uri()})
        (entry,) = listed["worktrees"]
        assert entry["agentId"] == ended.agent_id and entry["status"] == "kept"
        assert entry["branch"] == ended.worktree.branch and entry["filesChanged"] == 1
        assert run_git(repo, "show", f"{entry['branch']}:app.py") == "X = 2\n"
        # The user merges the branch, then removes the worktree and its branch.
        run_git(repo, "merge", "-q", "--ff-only", entry["branch"])
        removed = await editor.request("agent/removeWorktree", {"agentId": entry["agentId"]})
        assert removed["removed"]["path"] == entry["path"]
        assert not exists(entry["path"])
        assert (await editor.request("agent/worktrees", {}))["worktrees"] == []
        assert "lsp-agent/" not in run_git(repo, "branch", "--list")
        assert (repo / "app.py").read_text() == "X = 2\n"
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
