"""An isolated child's worktree changes come back as ONE proposal: a real git repository, a
real Session, the real SDK against the scripted model.

The worktree starts from HEAD plus the workspace's uncommitted state; when the child ends its
changes are rebased onto the workspace as it is then (a 3-way merge per file), proposed in the
session's review flow labelled with the child, and the worktree is removed (kept when asked,
or when something could not be proposed). Without a sandbox, every shell command of an
isolated child asks the user."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.model.service import ModelService
from lsp_agent.server.editor import DiskApplier
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import Mode, PermissionAnswer
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments
from lsp_agent.workspace.worktrees import Worktrees
from tests.test_sessions_inprocess import Events, settings_for

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
WAIT = 60.0
ISOLATED = {"system_contains": "You work in an isolated git worktree"}
TEN = "".join(f"line{i}\n" for i in range(1, 11))


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def is_dir(path: str) -> bool:
    return Path(path).is_dir()


def tool(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": args}


def isolated(description: str = "change app", **extra: Any) -> dict[str, Any]:
    return tool("Agent", description=description, prompt="Do the change.",
                subagent_type="general-purpose", isolation="worktree", name="fixer", **extra)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text(TEN)
    (ws / "gone.py").write_text("G = 1\n")
    (ws / ".gitignore").write_text("*.log\n")
    run_git(ws, "init", "-q", "-b", "main")
    run_git(ws, "add", "-A")
    run_git(ws, "commit", "-q", "-m", "start")
    return ws


async def run(model, repo: Path, scenario: dict[str, Any], mode: Mode = "default",
              asker: Any = None, review: str | None = "all",
              sandbox: bool | None = None) -> tuple[Events, Session]:
    """One prompt; every proposal is accepted (``review="all"``) or rejected ("none") by
    the user as it comes. ``sandbox`` False forces the sandbox off."""
    model.load(scenario)
    events = Events()
    settings = settings_for(model)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)
    options = {"sandbox": {"enabled": False}} if sandbox is False else None
    config = SessionConfig(workspace=repo, settings=settings, mode=mode,
                           state_dir=repo.parent / "state", user_memory_dirs=[],
                           safety_options=options)
    session = Session(config, model=ModelService(settings, client), tools=default_pool(),
                      documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                      applier=DiskApplier(), sink=events, asker=asker)

    async def reviewer() -> None:
        seen: set[str] = set()
        while True:
            await asyncio.sleep(0.01)
            for created in events.of(ev.ProposalCreated):
                if created.proposal_id in seen or created.auto_apply:
                    continue
                seen.add(created.proposal_id)
                accept = "all" if review == "all" else []
                await session.proposals.review(created.proposal_id, accept,
                                               [] if review == "all" else "all", None)

    watching = asyncio.ensure_future(reviewer())
    try:
        await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        watching.cancel()
        await session.close()
    return events, session


async def allow_all(event: ev.PermissionAsked) -> PermissionAnswer:
    return PermissionAnswer("allow")


def agent_result(events: Events) -> ev.ToolResult:
    return next(e for e in events.of(ev.ToolResult) if e.name == "Agent")


def child_results(events: Events, name: str) -> list[ev.ToolResult]:
    return [e for e in events.of(ev.ToolResult) if e.name == name and e.agent_id is not None]


async def worktrees_of(repo: Path) -> list[Any]:
    return await Worktrees(repo.parent / "state").list_worktrees(repo)


async def test_the_worktree_holds_the_uncommitted_state_and_changes_come_back_as_one_proposal(
        model, repo):
    edited = TEN.replace("line10\n", "line10\n# the user's uncommitted note\n")
    (repo / "app.py").write_text(edited)
    (repo / "notes.txt").write_text("untracked notes\n")
    (repo / ".env").write_text("API_KEY=sk-do-not-copy\n")  # untracked secret: stays out
    (repo / "build.log").write_text("ignored\n")  # ignored: stays out
    (repo / "gone.py").unlink()  # deleted, uncommitted
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Read", path="app.py"), tool("Read", path="notes.txt"),
            tool("Bash", command="ls -A")]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="line2\n", new_string="two\n")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "Changed line 2."}]},
    ]}, asker=allow_all)
    read_app, read_notes = child_results(events, "Read")
    assert "the user's uncommitted note" in read_app.content
    assert "untracked notes" in read_notes.content
    (listed,) = child_results(events, "Bash")
    assert "notes.txt" in listed.content
    assert ".env" not in listed.content and "build.log" not in listed.content
    assert "gone.py" not in listed.content
    # ONE proposal of exactly the child's change, labelled with it, made for the parent's call.
    (created,) = events.of(ev.ProposalCreated)
    (started,) = events.of(ev.SubagentStarted)
    assert [f.path for f in created.files] == ["app.py"]
    assert created.agent_id == started.agent_id and created.agent_name == "fixer"
    assert created.agent_description == "change app"
    agent_call = next(e for e in events.of(ev.ToolCallStarted) if e.name == "Agent")
    assert created.tool_use_id == agent_call.tool_use_id
    assert "+two" in created.files[0].diff and "note" not in created.files[0].diff
    # Accepted: on disk with the user's uncommitted change kept; nothing else touched.
    assert (repo / "app.py").read_text() == edited.replace("line2\n", "two\n")
    assert not (repo / "gone.py").exists() and (repo / ".env").exists()
    result = agent_result(events).content
    assert created.proposal_id in result and "Changed line 2." in result
    assert "worktree and branch were removed" in result
    assert await worktrees_of(repo) == []
    assert "lsp-agent/" not in run_git(repo, "branch", "--list")


async def test_a_user_edit_in_another_region_meanwhile_is_merged(model, repo):
    async def user_edits_then_allows(asked: ev.PermissionAsked) -> PermissionAnswer:
        (repo / "app.py").write_text(TEN.replace("line9\n", "nine by the user\n"))
        return PermissionAnswer("allow")

    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="line2\n", new_string="two\n")]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": [tool("Bash", command="touch x")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, asker=user_edits_then_allows)
    (created,) = events.of(ev.ProposalCreated)
    assert {f.path for f in created.files} == {"app.py", "x"}
    assert (repo / "app.py").read_text() == TEN.replace("line2\n", "two\n").replace(
        "line9\n", "nine by the user\n")
    assert "conflict" not in agent_result(events).content.lower()


async def test_a_user_edit_of_the_same_lines_meanwhile_is_a_reported_conflict(model, repo):
    user_text = TEN.replace("line2\n", "TWO BY THE USER\n")

    async def user_edits_then_allows(asked: ev.PermissionAsked) -> PermissionAnswer:
        (repo / "app.py").write_text(user_text)
        return PermissionAnswer("allow")

    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="line2\n", new_string="two\n")]}]},
        {"content": "ok", "when": [{**ISOLATED, "content": [tool("Bash", command="touch x")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, asker=user_edits_then_allows)
    (created,) = events.of(ev.ProposalCreated)
    assert [f.path for f in created.files] == ["x"], "the conflicting file is left out"
    assert (repo / "app.py").read_text() == user_text, "the user's text is untouched"
    result = agent_result(events).content
    assert "NOT proposed, they conflict" in result and "app.py" in result
    assert "TWO BY THE USER" in result and "two" in result
    # Kept, so the child's version of the conflicting file is not lost.
    (kept,) = await worktrees_of(repo)
    assert kept.path in result
    assert run_git(repo, "show", f"{kept.branch}:app.py") == TEN.replace("line2\n", "two\n")


async def test_new_deleted_and_binary_files(model, repo):
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Write", path="new.py", content="N = 1\n"),
            tool("Bash", command="rm gone.py && printf 'a\\000b' > data.bin")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, mode="bypassPermissions")
    (created,) = events.of(ev.ProposalCreated)
    files = {f.path: f for f in created.files}
    assert set(files) == {"new.py", "gone.py"}
    assert files["new.py"].is_new and files["gone.py"].is_deleted
    assert "-G = 1" in files["gone.py"].diff and "+++ /dev/null" in files["gone.py"].diff
    # bypassPermissions applies proposals at once, as for the parent's own edits.
    assert (repo / "new.py").read_text() == "N = 1\n"
    assert not (repo / "gone.py").exists()
    assert not (repo / "data.bin").exists(), "binary files are reported, not proposed"
    result = agent_result(events).content
    assert "data.bin (binary)" in result and "new.py (new)" in result
    assert "gone.py (deleted)" in result
    (kept,) = await worktrees_of(repo)
    assert kept.path in result and (Path(kept.path) / "data.bin").read_bytes() == b"a\0b"


async def test_a_rejected_proposal_leaves_the_disk_untouched(model, repo):
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="line2\n", new_string="two\n"),
            tool("Write", path="new.py", content="N = 1\n")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, review="none")
    (resolved,) = events.of(ev.ProposalResolved)
    assert resolved.status == "rejected"
    assert (repo / "app.py").read_text() == TEN and not (repo / "new.py").exists()
    assert "rejected by the user" in agent_result(events).content
    assert await worktrees_of(repo) == []


async def test_keep_worktree_keeps_it_and_names_it(model, repo):
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated(keep_worktree=True)], "when": [{**ISOLATED, "content": [
            tool("Edit", path="app.py", old_string="line2\n", new_string="two\n")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, mode="acceptEdits")
    assert (repo / "app.py").read_text() == TEN.replace("line2\n", "two\n")
    (kept,) = await worktrees_of(repo)
    result = agent_result(events).content
    assert "kept (as asked)" in result and kept.path in result and kept.branch in result
    assert is_dir(kept.path)
    await Worktrees(repo.parent / "state").remove(kept.agent_id)
    assert "lsp-agent/" not in run_git(repo, "branch", "--list")


# -- shell confinement without a sandbox --------------------------------------------------------


async def test_without_a_sandbox_every_shell_command_of_an_isolated_child_asks(model, repo):
    asked: list[ev.PermissionAsked] = []

    async def allow(event: ev.PermissionAsked) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("allow")

    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Bash", command="pwd")]}]},
        {"content": [tool("Bash", command="pwd")], "when": [{**ISOLATED, "content": "done"}]},
        {"content": "-"},
    ]}, asker=allow, sandbox=False)
    # The main agent's read-only command runs unasked; the isolated child's asks, naming it.
    (question,) = asked
    (started,) = events.of(ev.SubagentStarted)
    assert question.agent_id == started.agent_id and question.tool == "Bash"
    assert "[subagent fixer: change app]" in question.reason
    assert "no sandbox keeps its shell commands there" in question.reason
    assert started.agent_id in question.reason
    shells = [r for r in events.of(ev.ToolResult) if r.name == "Bash"]
    assert len(shells) == 2 and not any(r.is_error for r in shells)


async def test_without_a_sandbox_dont_ask_denies_an_isolated_childs_shell(model, repo):
    events, _ = await run(model, repo, {"turns": [
        {"content": [isolated()], "when": [{**ISOLATED, "content": [
            tool("Bash", command="pwd")]}]},
        {"content": "-", "when": [{**ISOLATED, "content": "done"}]},
    ]}, mode="dontAsk", sandbox=False)
    (denied,) = child_results(events, "Bash")
    assert denied.is_error and "no sandbox keeps its shell commands there" in denied.content


# -- the rules, one file at a time ---------------------------------------------------------------


@pytest.mark.parametrize(("base", "ours", "theirs", "expected"), [
    ("a\n", "a\n", "b\n", ("b\n", False)),  # only the agent changed it
    ("a\n", "a\n", None, ("", True)),  # the agent deleted it, unchanged since
    ("a\n", None, None, None),  # both deleted it
    ("a\n", "c\n", None, "deleted"),  # deleted by the agent, changed since
    (None, None, "n\n", ("n\n", False)),  # created by the agent
    (None, "n\n", "n\n", None),  # the same file appeared meanwhile
    (None, "x\n", "n\n", "created"),  # another file of that name appeared
    ("a\n", None, "b\n", "deleted from the workspace"),  # changed, but deleted since
    ("a\nb\nc\nd\ne\n", "a\nb\nc\nd\nE\n", "A\nb\nc\nd\ne\n", ("A\nb\nc\nd\nE\n", False)),
    ("a\nb\n", "X\nb\n", "Y\nb\n", "same lines"),  # both changed line 1
    ("a\n", "b\n", "b\n", None),  # the workspace already has it
])
def test_merge_one(base, ours, theirs, expected):
    from lsp_agent.agent.worktree_return import merge_one

    got = merge_one(base, ours, theirs)
    if isinstance(expected, str):
        assert isinstance(got, str) and expected in got
    else:
        assert got == expected


def test_a_deletion_conflicts_when_the_file_changed_and_is_unchanged_when_gone(tmp_path):
    from lsp_agent.edits.proposal import Proposal
    from lsp_agent.types.edits import FileEdit

    path = tmp_path / "gone.py"
    proposal = Proposal.from_edits("p1", "s", "t", [FileEdit(path, "G = 1\n", "", None,
                                                             delete=True)], tmp_path)
    (change,) = proposal.files
    assert change.deleted and [h.id for h in change.hunks] == ["h1"]
    decision = proposal.decide("all", [])
    changed = proposal.plan_application(decision, {path: ("G = 2\n", None)})
    assert changed.files[0].status == "conflict" and not changed.edit_targets()
    gone = proposal.plan_application(decision, {path: (None, None)})
    assert gone.files[0].status == "unchanged"
    same = proposal.plan_application(decision, {path: ("G = 1\n", 3)})
    (target,) = same.edit_targets()
    assert target.delete and target.target_text == "" and target.version == 3


def test_a_client_without_delete_gets_no_delete_file(tmp_path):
    from lsp_agent.edits.workspace_edit import (
        EditCaps,
        EditTarget,
        build_workspace_edit,
        needs_disk_deletion,
    )

    target = EditTarget((tmp_path / "gone.py").as_uri(), "G = 1\n", "", None, delete=True)
    with_delete = build_workspace_edit([target])
    assert [c.kind for c in with_delete.document_changes or []] == ["delete"]
    caps = EditCaps(resource_operations=frozenset({"create"}))
    assert build_workspace_edit([target], caps=caps).document_changes == []
    assert needs_disk_deletion(target, caps) and not needs_disk_deletion(target, EditCaps())
    assert build_workspace_edit([target], caps=EditCaps.none()).changes == {}
