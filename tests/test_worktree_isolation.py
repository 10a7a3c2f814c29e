"""Agent with isolation "worktree": a real git worktree in a temporary repository, a real
Session, the real SDK against the scripted model. The child works in its worktree (tools,
rules, sandbox rooted there), cannot write the workspace, and its changes are kept on a
branch (or the worktree is removed when it changed nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.types import events as ev
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.worktrees import AgentWorktree, Worktrees, repo_key
from tests.test_sessions_inprocess import Editor, Events, make_session

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
WAIT = 60.0
ISOLATED = {"system_contains": "You work in an isolated git worktree"}
ORIGINAL = "def f():\n    return 1\n"


def exists(path: str | Path) -> bool:
    return Path(path).exists()


def real(path: str) -> str:
    return os.path.realpath(path)


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text(ORIGINAL)
    run_git(ws, "init", "-q", "-b", "main")
    run_git(ws, "add", "-A")
    run_git(ws, "commit", "-q", "-m", "start")
    return ws


def isolated_call(description: str = "change app", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": "Agent", "input": {
        "description": description, "prompt": "Change f to return 2.",
        "subagent_type": "general-purpose", "isolation": "worktree", **extra}}


async def run(model, repo: Path, scenario: dict[str, Any], mode: str = "default",
              asker: Any = None) -> tuple[Events, Any]:
    model.load(scenario)
    events = Events()
    session = make_session(model, repo, events, Editor(), mode=mode,  # type: ignore[arg-type]
                           asker=asker)
    try:
        ended = await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    return events, ended


def agent_result(events: Events) -> ev.ToolResult:
    return next(e for e in events.of(ev.ToolResult) if e.name == "Agent")


async def test_a_child_edits_only_its_worktree_and_its_changes_come_back_as_a_proposal(
        model, repo):
    outside = repo / "escaped.txt"
    asked: list[ev.PermissionAsked] = []

    async def allow_all(event: ev.PermissionAsked) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("allow")

    events, ended = await run(model, repo, {"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Edit", "input": {
                "path": "app.py", "old_string": "return 1", "new_string": "return 2"}},
            {"type": "tool_use", "name": "Write", "input": {"path": "new.py", "content": "N=1\n"}},
            {"type": "tool_use", "name": "Write", "input": {"path": str(outside),
                                                           "content": "escaped\n"}},
            {"type": "tool_use", "name": "Bash", "input": {"command": "pwd"}}]}]},
        {"content": "Merged nothing yet.", "when": [{**ISOLATED, "content": "Changed f."}]},
    ]}, mode="acceptEdits", asker=allow_all)
    assert ended.stop_reason == "end_turn"
    # Nothing escaped the worktree, whatever the child did and the asker would have allowed.
    assert not outside.exists()
    (started,) = events.of(ev.SubagentStarted)
    child = {e.name: e for e in events.of(ev.ToolResult) if e.agent_id == started.agent_id
             and e.name != "Write"}
    writes = [e for e in events.of(ev.ToolResult) if e.agent_id == started.agent_id
              and e.name == "Write"]
    assert "Written in the worktree" in child["Edit"].content
    refused = next(w for w in writes if w.is_error)
    assert "outside the workspace" in refused.content and "may write only there" in refused.content
    # No question for edits inside the worktree, none for the write outside (refused at once).
    assert {a.tool for a in asked} <= {"Bash"}
    (done,) = events.of(ev.SubagentEnded)
    wt = done.worktree
    assert wt is not None and wt.kept and wt.files_changed == 2
    assert wt.branch == f"lsp-agent/{started.agent_id}"
    assert not Path(wt.path).is_relative_to(repo), "the worktree is outside the workspace"
    assert child["Bash"].content.strip().startswith(real(wt.path))
    # Its changes came back as one proposal (applied at once in acceptEdits, as the parent's
    # own edits are), then the worktree and its branch were removed.
    (created,) = events.of(ev.ProposalCreated)
    assert sorted(f.path for f in created.files) == ["app.py", "new.py"] and created.auto_apply
    assert (repo / "app.py").read_text() == "def f():\n    return 2\n"
    assert (repo / "new.py").read_text() == "N=1\n"
    assert not exists(wt.path) and "lsp-agent/" not in run_git(repo, "branch", "--list")
    result = agent_result(events).content
    assert created.proposal_id in result and "worktree and branch were removed" in result
    # The model's next request holds the report (the child's text and where its work is).
    assert "Changed f." in str(model.requests[-1]["messages"][-1])


async def test_a_child_that_changes_nothing_leaves_no_worktree_nor_branch(model, repo):
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated_call("just look")], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Read", "input": {"path": "app.py"}}]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": "f returns 1."}]},
    ]})
    (done,) = events.of(ev.SubagentEnded)
    assert done.worktree is not None and not done.worktree.kept
    assert not exists(done.worktree.path)
    assert "lsp-agent/" not in run_git(repo, "branch", "--list")
    assert run_git(repo, "worktree", "list").count("\n") == 1
    assert "its git worktree was removed" in agent_result(events).content
    child_read = next(e for e in events.of(ev.ToolResult) if e.name == "Read")
    assert "return 1" in child_read.content


async def test_isolation_outside_git_is_a_clear_error(model, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    events, _ = await run(model, plain, {"turns": [
        {"content": [isolated_call()]}, {"content": "ok"}]})
    result = agent_result(events)
    assert result.is_error and "not in a git repository" in result.content
    assert "without isolation" in result.content
    assert events.of(ev.SubagentStarted) == [], "nothing was started"


async def test_an_agent_file_can_ask_for_isolation(model, repo):
    agents = repo / ".lsp-agent" / "agents"
    agents.mkdir(parents=True)
    (agents / "iso.md").write_text("---\nname: iso\ndescription: isolated\nisolation: worktree\n"
                                   "---\nYou are ISO.\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "agent")
    call = {"type": "tool_use", "name": "Agent", "input": {
        "description": "iso work", "prompt": "look", "subagent_type": "iso"}}
    events, _ = await run(model, repo, {"turns": [
        {"content": [call], "when": [{**ISOLATED, "content": "nothing to do"}]},
        {"content": "ok"}]})
    (done,) = events.of(ev.SubagentEnded)
    assert done.worktree is not None and not done.worktree.kept


async def test_a_deny_rule_of_the_workspace_holds_in_the_worktree(model, repo):
    (repo / ".lsp-agent").mkdir()
    (repo / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"permissions": {"deny": ["Edit(app.py)"]}}))
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Edit", "input": {
                "path": "app.py", "old_string": "return 1", "new_string": "return 2"}}]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": "denied"}]},
    ]}, mode="bypassPermissions")
    edit = next(e for e in events.of(ev.ToolResult) if e.name == "Edit")
    assert edit.is_error and "denied by the rule Edit(app.py)" in edit.content
    (done,) = events.of(ev.SubagentEnded)
    assert done.worktree is not None and not done.worktree.kept


async def test_a_link_to_the_workspace_is_refused_at_write_time(model, repo):
    """The child makes a link in its worktree pointing at the workspace's file, then edits
    through it: the write's final path is outside the worktree and nothing is written."""
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated_call()], "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Bash", "input": {
                "command": f"ln -s {repo / 'app.py'} link.py"}}]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": [
            {"type": "tool_use", "name": "Write", "input": {"path": "link.py",
                                                           "content": "hacked\n"}}]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": "done"}]},
    ]}, mode="bypassPermissions")
    assert (repo / "app.py").read_text() == ORIGINAL
    write = next(e for e in events.of(ev.ToolResult) if e.name == "Write")
    assert "outside" in write.content
    # The link it made is reported, not proposed as a file holding the link's target.
    assert not (repo / "link.py").exists() and events.of(ev.ProposalCreated) == []
    assert "link.py (not a plain file)" in agent_result(events).content


# -- the worktree store ------------------------------------------------------------------------


async def test_a_worktree_left_by_a_dead_server_is_cleaned_at_the_next_use(repo, tmp_path):
    state = tmp_path / "state"
    store = Worktrees(state)
    clean = await store.create(repo, "agent-clean", "s1", "clean one")
    dirty = await store.create(repo, "agent-dirty", "s1", "dirty one")
    (Path(dirty.path) / "app.py").write_text("changed\n")
    for record in (clean, dirty):  # as if the server that ran them had been killed
        record.pid = dead_pid()
        store._save(record)
    listed = await Worktrees(state).list_worktrees(repo)
    assert [r.agent_id for r in listed] == ["agent-dirty"]
    assert listed[0].status == "interrupted" and listed[0].files_changed == 1
    assert not exists(clean.path)
    assert "lsp-agent/agent-clean" not in run_git(repo, "branch", "--list")
    assert run_git(repo, "show", "lsp-agent/agent-dirty:app.py") == "changed\n"
    removed = await store.remove("agent-dirty")
    assert removed.agent_id == "agent-dirty" and not exists(dirty.path)
    assert await store.list_worktrees(repo) == []
    assert "lsp-agent/" not in run_git(repo, "branch", "--list")


async def test_a_running_agents_worktree_is_not_removed(repo, tmp_path):
    store = Worktrees(tmp_path / "state")
    record = await store.create(repo, "agent-live")
    with pytest.raises(Exception, match="still running"):
        await store.remove("agent-live")
    assert exists(record.path)
    assert (await store.finish(record, "m")).kept is False


async def test_a_state_dir_inside_the_repository_is_refused(repo):
    with pytest.raises(Exception, match="inside the repository"):
        await Worktrees(repo / "state").create(repo, "agent-x")


async def test_a_repository_without_commits_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run_git(empty, "init", "-q")
    with pytest.raises(Exception, match="no commit yet"):
        await Worktrees(tmp_path / "state").create(empty, "agent-x")


def test_repo_keys_are_readable_and_distinct():
    a, b = repo_key(Path("/x/proj")), repo_key(Path("/y/proj"))
    assert a.startswith("proj-") and b.startswith("proj-") and a != b
    assert AgentWorktree("a", "/r", "/p", "b", "c", "sub").root == Path("/p/sub")


async def test_the_writer_rechecks_the_final_path_at_write_time(tmp_path):
    from lsp_agent.agent.isolation import WorktreeWriter
    from lsp_agent.types.edits import FileEdit

    root, elsewhere = tmp_path / "wt", tmp_path / "main"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "app.py").write_text(ORIGINAL)
    writer = WorktreeWriter(root, "branch b")
    inside = await writer.propose("t1", [FileEdit(root / "a.py", None, "A\n", None)])
    assert "Written in the worktree" in inside and (root / "a.py").read_text() == "A\n"
    # Judged when the link did not exist yet; swapped in before the write.
    (root / "b.py").symlink_to(elsewhere / "app.py")
    refused = await writer.propose("t2", [FileEdit(root / "b.py", ORIGINAL, "x\n", None)])
    assert refused.startswith("Not written") and "outside" in refused
    assert (elsewhere / "app.py").read_text() == ORIGINAL
