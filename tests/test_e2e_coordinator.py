"""Coordinator mode through a real ``lsp-agent serve``: the main agent only orchestrates (its
requests offer no tool that edits or runs commands), two research workers run in parallel and
leave their findings in the session's scratchpad, an implementation worker reads them and
changes the code in a git worktree, and the shared task list follows the work. The real SDK
talks to the scripted model server over real HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.store.layout import StateLayout
from lsp_agent.types import events as ev
from tests.e2e_harness import start_editor

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
WORKER = {"system_contains": "Shared scratchpad of this session"}
ISOLATED = {"system_contains": "You work in an isolated git worktree"}
COORDINATOR = "You are the coordinator."
ALPHA, BETA = "ALPHA-FINDING: f is called from cli.py", "BETA-FINDING: tests expect 2"


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def exists(path: str | Path) -> bool:
    return Path(path).exists()


def read(path: Path) -> str:
    return path.read_text()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("def f():\n    return 1\n")
    run_git(ws, "init", "-q", "-b", "main")
    run_git(ws, "add", "-A")
    run_git(ws, "commit", "-q", "-m", "start")
    return ws


def tool(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": args}


def worker(name: str, prompt: str, **extra: Any) -> dict[str, Any]:
    return tool("Agent", description=f"{name} task", prompt=prompt,
                subagent_type="general-purpose", name=name, **extra)


def scenario(scratch: Path) -> dict[str, Any]:
    alpha, beta = scratch / "alpha.md", scratch / "beta.md"
    return {"turns": [
        {"content": [tool("TaskCreate", subject="Research callers"),
                     tool("TaskCreate", subject="Make f return 2", blockedBy=["1"])],
         "when": [
             {**WORKER, "user_text_contains": "Research alpha",
              "content": [tool("Write", path=str(alpha), content=ALPHA)]},
             {**WORKER, "user_text_contains": "Research beta",
              "content": [tool("Write", path=str(beta), content=BETA)]},
             {**ISOLATED, "content": [tool("Read", path=str(alpha)), tool("Read", path=str(beta)),
                          tool("TaskUpdate", taskId="2", status="in_progress")]}]},
        {"content": [worker("alpha", "Research alpha: who calls f?"),
                     worker("beta", "Research beta: what do tests expect?")],
         "when": [
             {**ISOLATED, "content": [
                 tool("Edit", path="app.py", old_string="return 1", new_string="return 2")]},
             {**WORKER, "content": "Findings written to the scratchpad."}]},
        {"content": [tool("TaskUpdate", taskId="1", status="completed"),
                     tool("Read", path=str(alpha))],
         "when": [{**ISOLATED, "content": [tool("TaskUpdate", taskId="2", status="completed")]}]},
        {"content": [worker("impl", "Implement task 2: make f return 2.", isolation="worktree")],
         "when": [{**ISOLATED, "content": "f returns 2 on my branch."}]},
        {"content": "Research, implementation and its branch are done."},
    ]}


async def test_a_coordinator_delegates_research_and_implementation(model, tmp_path, repo):
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    editor = await start_editor(model.base_url, tmp_path, server_env=env)
    try:
        session = await editor.new_session(repo, mode="default", coordinator=True)
        scratch = StateLayout(tmp_path / ".state").session_dir(repo, session) / "scratch"
        model.load(scenario(scratch))
        turn = asyncio.ensure_future(editor.request(
            "agent/prompt", {"sessionId": session, "text": "Make f return 2"}))
        # The implementer's worktree changes come back as one proposal, labelled with it.
        (proposal,) = await editor.wait_for(session, ev.ProposalCreated)
        assert proposal.agent_name == "impl" and proposal.agent_description == "impl task"
        assert [f.path for f in proposal.files] == ["app.py"]
        assert read(repo / "app.py") == "def f():\n    return 1\n", "untouched until accepted"
        review = await editor.request("agent/review", {"proposalId": proposal.proposal_id,
                                                       "accept": "all"})
        assert review["status"] == "accepted"
        await turn
        (ended,) = editor.of(session, ev.TurnEnded)
        assert ended.stop_reason == "end_turn"
        # The coordinator orchestrates and reads; it cannot edit or run commands.
        own = [b for b in model.requests if COORDINATOR in str(b.get("system"))]
        tools = {t["name"] for t in own[0]["tools"]}
        assert {"Agent", "SendMessage", "TaskCreate", "TaskUpdate", "Read", "Grep"} <= tools
        assert not tools & {"Edit", "Write", "Bash", "TodoWrite"}
        assert str(scratch) in str(own[0]["system"])
        # The research workers overlapped and left their findings in the scratchpad.
        starts = {e.agent_id: e for e in editor.of(session, ev.SubagentStarted)}
        ends = {e.agent_id: e for e in editor.of(session, ev.SubagentEnded)}
        research = [a for a, e in starts.items() if e.name in {"alpha", "beta"}]
        assert max(starts[a].ts for a in research) < min(ends[a].ts for a in research)
        assert read(scratch / "alpha.md") == ALPHA and read(scratch / "beta.md") == BETA
        assert len(editor.of(session, ev.ProposalCreated)) == 1, "scratch files are not proposals"
        # The coordinator read a finding; the implementer read both and worked in a worktree.
        coordinator_read = next(e for e in editor.of(session, ev.ToolResult)
                                if e.name == "Read" and e.agent_id is None)
        assert ALPHA in coordinator_read.content
        impl = next(a for a, e in starts.items() if e.name == "impl")
        impl_reads = [e.content for e in editor.of(session, ev.ToolResult)
                      if e.agent_id == impl and e.name == "Read"]
        assert any(ALPHA in c for c in impl_reads) and any(BETA in c for c in impl_reads)
        assert proposal.agent_id == impl
        branch = ends[impl].worktree
        assert branch is not None and not exists(branch.path), "removed once reviewed"
        assert "lsp-agent/" not in run_git(repo, "branch", "--list")
        assert read(repo / "app.py") == "def f():\n    return 2\n", "accepted: on disk"
        # The task list: created by the coordinator, claimed and finished by the implementer.
        final = editor.of(session, ev.TaskListUpdated)[-1].tasks
        assert [(t.id, t.status, t.owner) for t in final] == [
            ("1", "completed", None), ("2", "completed", "impl")]
    finally:
        await editor.client.shutdown_session()


async def test_the_task_list_comes_back_with_a_resumed_session(model, tmp_path, repo):
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "LSP_AGENT_MANAGED_SETTINGS": str(tmp_path / "managed.json")}
    model.load({"turns": [
        {"content": [tool("TaskCreate", subject="Survive a restart"),
                     tool("TaskCreate", subject="Then this", blockedBy=["1"])]},
        {"content": "noted"}]})
    first = await start_editor(model.base_url, tmp_path, server_env=env)
    try:
        session = await first.new_session(repo, mode="default")
        await first.request("agent/prompt", {"sessionId": session, "text": "plan"})
    finally:
        await first.client.shutdown_session()
    model.load({"turns": [
        {"content": "-"}, {"content": "-"},  # the first turn's two assistant messages
        {"content": [tool("TaskList"), tool("TaskCreate", subject="Third")]},
        {"content": "ok"}]})
    second = await start_editor(model.base_url, tmp_path, server_env=env)
    try:
        await second.request("agent/resumeSession", {"sessionId": session,
                                                     "workspaceUri": repo.as_uri()})
        await second.request("agent/prompt", {"sessionId": session, "text": "what is left?"})
        listed, created = [e for e in second.of(session, ev.ToolResult)
                           if e.name in {"TaskList", "TaskCreate"}]
        assert listed.content == ("#1 [pending] Survive a restart\n"
                                  "#2 [pending] Then this blocked by #1")
        assert created.content == "Created task #3: Third"
    finally:
        await second.client.shutdown_session()
