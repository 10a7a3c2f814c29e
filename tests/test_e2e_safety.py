"""Safety end to end: the real server over stdio, the real SDK against the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio

from lsp_agent.permissions.sandbox import availability
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import Editor, start_editor

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("safety")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, root):
    ed = await start_editor(model.base_url, root, permissions={
        "allow": ["Bash(make:*)"], "deny": ["Bash(make deploy:*)"]})
    yield ed
    await ed.client.shutdown_session()


@pytest.fixture
def workspace(root, request) -> Path:
    ws = root / request.node.name
    ws.mkdir()
    (ws / "app.py").write_text("x = 1\n")
    return ws


def one_tool_then_done(name: str, tool_input: dict) -> dict:
    return {"turns": [{"content": [{"type": "tool_use", "name": name, "input": tool_input}]},
                      {"content": "done"}]}


async def run_turn(editor: Editor, workspace: Path, mode: str = "default") -> str:
    session = await editor.new_session(workspace, mode=mode)
    await editor.request("agent/prompt", {"sessionId": session, "text": "go"})
    return session


def last_tool_result(model) -> dict:
    blocks = model.requests[-1]["messages"][-1]["content"]
    return next(b for b in blocks if b["type"] == "tool_result")


async def test_a_protected_write_asks_in_default_mode(editor, model, workspace):
    model.load(one_tool_then_done("Write", {"path": ".env", "content": "TOKEN=1\n"}))
    before = len(editor.permission_requests)

    async def deny(params):
        return {"decision": "deny", "message": "not my secrets"}

    with editor.answering(deny):
        await run_turn(editor, workspace)
    asked = editor.permission_requests[before:]
    assert [a["tool"] for a in asked] == ["Write"] and "secret" in asked[0]["reason"]
    result = last_tool_result(model)
    assert result["is_error"] and "not my secrets" in str(result["content"])
    assert not (workspace / ".env").exists()


async def test_a_write_is_refused_in_plan_mode(editor, model, workspace):
    model.load(one_tool_then_done("Write", {"path": "new.py", "content": "y = 2\n"}))
    before = len(editor.permission_requests)
    session = await run_turn(editor, workspace, mode="plan")
    assert len(editor.permission_requests) == before, "plan mode refuses without asking"
    assert "Plan mode is on" in str(last_tool_result(model)["content"])
    decided = editor.of(session, ev.PermissionDecided)
    assert decided[-1].decision == "deny" and decided[-1].source == "mode"


async def test_a_deny_rule_beats_an_allow_rule(editor, model, workspace):
    model.load(one_tool_then_done("Bash", {"command": "make deploy"}))
    before = len(editor.permission_requests)
    session = await run_turn(editor, workspace)
    assert len(editor.permission_requests) == before
    content = str(last_tool_result(model)["content"])
    assert "Bash(make deploy:*)" in content and "denied" in content
    assert editor.of(session, ev.PermissionDecided)[-1].source == "rule"


async def test_read_only_shell_runs_without_asking(editor, model, workspace):
    model.load(one_tool_then_done("Bash", {"command": "ls && cat app.py | wc -l"}))
    before = len(editor.permission_requests)
    await run_turn(editor, workspace)
    assert len(editor.permission_requests) == before
    assert "app.py" in str(last_tool_result(model)["content"])


async def test_a_hook_blocks_a_tool_and_the_model_sees_why(editor, model, workspace):
    (workspace / ".lsp-agent").mkdir()
    (workspace / ".lsp-agent" / "settings.local.json").write_text(json.dumps({"hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command":
            "echo 'builds are frozen until Monday' >&2; exit 2"}]}]}}))
    model.load(one_tool_then_done("Bash", {"command": "make build"}))
    session = await run_turn(editor, workspace)
    result = last_tool_result(model)
    assert result["is_error"] and "builds are frozen until Monday" in str(result["content"])
    assert editor.of(session, ev.PermissionDecided)[-1].source == "hook"


@pytest.mark.skipif(not availability().works,
                    reason=f"bubblewrap cannot run here: {availability().detail}")
async def test_the_sandbox_blocks_an_escape(editor, model, workspace, root):
    target = root / "escaped.txt"
    model.load(one_tool_then_done("Bash", {
        "command": f"echo inside > ok.txt; python3 -c \"open('{target}', 'w').write('x')\""}))
    await run_turn(editor, workspace, mode="bypassPermissions")
    assert (workspace / "ok.txt").read_text() == "inside\n"
    assert not target.exists(), "outside the workspace, /tmp is private and the rest read-only"
