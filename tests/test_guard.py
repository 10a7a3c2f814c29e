"""ToolGuard: what a PreToolUse hook's rewritten input is judged on, and the notes PostToolUse
hooks add. Real hook subprocesses, the real permission gate, the real file tools and the
path resolution the agent loop uses (``ToolContext.resolve``).

Each test names, in its docstring, the line it guards: deleting that line makes it fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.permissions import hooks as hk
from lsp_agent.permissions.guard import ToolGuard
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.tools.base import Tool, ToolContext
from lsp_agent.tools.files import Read, Write


def hook_replying(ws: Path, event: str, reply: dict[str, Any] | None = None,
                  command: str | None = None) -> hk.Hooks:
    command = command or f"echo '{json.dumps(reply)}'"
    table, warnings = hk.parse_config([("test", {event: [{"matcher": "", "hooks": [
        {"type": "command", "command": command, "timeout": 10}]}]})])
    assert warnings == []
    return hk.Hooks(table, ws, "s1")


def rewrite_to(path: str, decision: str | None) -> dict[str, Any]:
    specific: dict[str, Any] = {"hookEventName": "PreToolUse", "updatedInput": {"path": path}}
    if decision:
        specific |= {"permissionDecision": decision, "permissionDecisionReason": "fine by me"}
    return {"hookSpecificOutput": specific}


def resolver(ws: Path) -> Any:
    ctx = ToolContext(workspace=ws, documents=None, proposals=None,  # type: ignore[arg-type]
                      diagnostics=None, results_dir=ws / ".results")  # type: ignore[arg-type]
    return ctx.resolve


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("notes\n")
    (ws / ".env").write_text("API_KEY=sk-not-for-the-model\n")
    return ws


def call_of(tool: Tool) -> Any:
    fields = {"path": "notes.txt"} | ({"content": "x\n"} if tool.name == "Write" else {})
    return tool.input_model.model_validate(fields)


@pytest.mark.parametrize(("tool", "new_path", "decision", "concern"), [
    (Write(), "/etc/passwd", "allow", "is outside the workspace"),
    (Write(), "/etc/passwd", None, "is outside the workspace"),
    (Write(), ".git/hooks/pre-commit", "allow", "inside .git"),
    (Write(), ".lsp-agent/settings.json", None, "permission settings file"),
    (Read(), ".env", "allow", "looks like a secret"),
    (Read(), "../../outside.txt", None, "is outside the workspace"),
], ids=["write-etc-allow", "write-etc", "write-git-hook", "write-settings", "read-env",
        "read-outside"])
async def test_a_hook_rewritten_path_is_resolved_again_and_judged(
        workspace, tool, new_path, decision, concern):
    """A PreToolUse hook turns a harmless workspace path into a sensitive one; the gate must
    judge the new path, even when the hook also says "allow". Guards
    ``path = _path_of(tool, args, resolve)`` under ``if changed:`` in ``ToolGuard.screen``."""
    gate = PermissionGate(workspace)
    args, resolve = call_of(tool), resolver(workspace)
    unhooked = await ToolGuard(gate).screen(tool, args, resolve)
    assert unhooked.verdict.action == "allow", "the call as the model made it is harmless"

    guard = ToolGuard(gate, hook_replying(workspace, "PreToolUse", rewrite_to(new_path, decision)))
    screened = await guard.screen(tool, args, resolve)

    assert (screened.verdict.action, screened.verdict.source) == ("ask", "safety")
    assert concern in screened.verdict.reason
    assert screened.input_changed and screened.args.path == new_path
    assert screened.path == resolve(new_path)


async def test_a_hook_rewrite_inside_the_workspace_is_judged_on_the_new_path(workspace):
    """The other side: a rewrite to an ordinary file stays allowed, and the verdict (and the
    path the loop remembers rules for) is about the new file."""
    guard = ToolGuard(PermissionGate(workspace),
                      hook_replying(workspace, "PreToolUse", rewrite_to("other.txt", None)))
    screened = await guard.screen(Write(), call_of(Write()), resolver(workspace))
    assert screened.verdict.action == "allow" and screened.path == workspace / "other.txt"


async def test_a_hook_rewrite_that_does_not_validate_is_denied(workspace):
    guard = ToolGuard(PermissionGate(workspace), hook_replying(workspace, "PreToolUse", {
        "hookSpecificOutput": {"hookEventName": "PreToolUse",
                               "permissionDecision": "allow", "updatedInput": {"path": 7}}}))
    screened = await guard.screen(Read(), call_of(Read()), resolver(workspace))
    assert screened.verdict.action == "deny" and "updatedInput is invalid" in \
        screened.verdict.reason


@pytest.mark.parametrize("how", ["json", "exit2"])
async def test_a_blocking_post_tool_use_hook_leaves_its_reason_for_the_model(workspace, how):
    """PostToolUse cannot undo a call, but its "block" must reach the model with the reason.
    Guards ``notes.append(f"PostToolUse hook: {outcome.reason}")`` in ``ToolGuard.after``."""
    command = ("echo 'ruff: 2 errors in notes.txt' >&2; exit 2" if how == "exit2" else None)
    hooks = hook_replying(workspace, "PostToolUse",
                          {"decision": "block", "reason": "ruff: 2 errors in notes.txt"}, command)
    notes = await ToolGuard(PermissionGate(workspace), hooks).after(
        Write(), call_of(Write()), "Wrote notes.txt", False)
    assert notes == ["PostToolUse hook: ruff: 2 errors in notes.txt"]


async def test_post_tool_use_context_is_a_note_and_silence_adds_none(workspace):
    gate = PermissionGate(workspace)
    context = hook_replying(workspace, "PostToolUse", {"hookSpecificOutput": {
        "hookEventName": "PostToolUse", "additionalContext": "formatted with black"}})
    assert await ToolGuard(gate, context).after(Read(), call_of(Read()), "x", False) == \
        ["PostToolUse hook: formatted with black"]
    silent = hook_replying(workspace, "PostToolUse", command="true")
    assert await ToolGuard(gate, silent).after(Read(), call_of(Read()), "x", False) == []
