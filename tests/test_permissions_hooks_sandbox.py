"""Hooks (real subprocesses, JSON on stdin, exit codes, time limits) and the bubblewrap
sandbox (a write outside the workspace and a loopback connection are blocked)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from lsp_agent.permissions import hooks as hk
from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy, availability
from lsp_agent.tools.base import ToolContext
from lsp_agent.tools.shell import Bash, BashInput


def hooks_for(ws: Path, event: str, command: str, matcher: str = "",
              timeout: float = 10) -> hk.Hooks:
    table, warnings = hk.parse_config([("test", {event: [{"matcher": matcher, "hooks": [
        {"type": "command", "command": command, "timeout": timeout}]}]})])
    assert warnings == []
    return hk.Hooks(table, ws, "s1")


async def test_hook_gets_json_on_stdin_and_exit_2_blocks_with_stderr(tmp_path):
    hooks = hooks_for(tmp_path, "PreToolUse",
                      "cat > seen.json; echo 'no pushing today' >&2; exit 2", "Bash")
    outcome = await hooks.run("PreToolUse", {"tool_name": "Bash",
                                             "tool_input": {"command": "git push"}},
                              "Bash", {"command": "git push"})
    assert outcome.decision == "deny" and outcome.reason == "no pushing today"
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["hook_event_name"] == "PreToolUse" and seen["tool_input"]["command"] == "git push"
    assert seen["session_id"] == "s1" and seen["cwd"] == str(tmp_path)


async def test_matcher_selects_tools_by_regex_or_rule(tmp_path):
    regex = hooks_for(tmp_path, "PreToolUse", "exit 2", "Edit|Write")
    assert (await regex.run("PreToolUse", {}, "Bash", {})).decision is None
    assert (await regex.run("PreToolUse", {}, "Write", {})).decision == "deny"
    rule = hooks_for(tmp_path, "PreToolUse", "exit 2", "Bash(git push:*)")
    assert (await rule.run("PreToolUse", {}, "Bash", {"command": "git status"})).decision is None
    assert (await rule.run("PreToolUse", {}, "Bash", {"command": "git push -f"})
            ).decision == "deny"


async def test_json_output_can_allow_ask_change_input_and_add_context(tmp_path):
    reply = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                                    "permissionDecisionReason": "check this",
                                    "updatedInput": {"command": "ls -la"},
                                    "additionalContext": "the repo is frozen"}}
    hooks = hooks_for(tmp_path, "PreToolUse", f"echo '{json.dumps(reply)}'")
    outcome = await hooks.run("PreToolUse", {}, "Bash", {"command": "ls"})
    assert outcome.decision == "ask" and outcome.reason == "check this"
    assert outcome.updated_input == {"command": "ls -la"}
    assert outcome.context == ["the repo is frozen"]


async def test_timeout_stops_the_hook_and_does_not_decide(tmp_path):
    hooks = hooks_for(tmp_path, "PreToolUse", "sleep 30", timeout=0.5)
    outcome = await hooks.run("PreToolUse", {}, "Bash", {})
    assert outcome.decision is None and "timed out" in outcome.messages[0]


async def test_other_exit_codes_do_not_block(tmp_path):
    hooks = hooks_for(tmp_path, "PreToolUse", "echo oops >&2; exit 1")
    assert (await hooks.run("PreToolUse", {}, "Bash", {})).decision is None


async def test_user_prompt_submit_stdout_is_context(tmp_path):
    hooks = hooks_for(tmp_path, "UserPromptSubmit", "echo 'Ticket: ABC-1'")
    outcome = await hooks.run("UserPromptSubmit", {"prompt": "fix it"})
    assert outcome.context == ["Ticket: ABC-1"]


def test_bad_hook_configuration_is_reported():
    _, warnings = hk.parse_config([("x", {"Nope": [], "Stop": [{"hooks": [{"type": "prompt"}]}],
                                          "PreToolUse": "not a list"})])
    assert len(warnings) == 3


# -- the sandbox ---------------------------------------------------------------------------


def ctx_for(ws: Path, policy: SandboxPolicy) -> ToolContext:
    return ToolContext(workspace=ws, documents=None, proposals=None, diagnostics=None,  # type: ignore[arg-type]
                       results_dir=ws / ".results", sandbox=Sandbox(policy, ws))


needs_bwrap = pytest.mark.skipif(not availability().works,
                                 reason=f"bubblewrap cannot run here: {availability().detail}")


@needs_bwrap
async def test_sandbox_blocks_a_write_outside_the_workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside.txt"
    home_target = Path.home() / ".lsp-agent-sandbox-probe"
    command = f"echo in > inside.txt; echo out > {outside}; echo h > {home_target}; true"
    result = await Bash().call(BashInput(command=command), ctx_for(ws, SandboxPolicy()))
    assert (ws / "inside.txt").read_text() == "in\n", result.content
    assert not outside.exists() and not home_target.exists()


@needs_bwrap
async def test_sandbox_blocks_network_unless_allowed(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        probe = (f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', "
                 f"{port}), timeout=3); print('CONNECTED')\"")
        blocked = await Bash().call(BashInput(command=probe), ctx_for(tmp_path, SandboxPolicy()))
        assert "CONNECTED" not in blocked.content
        allowed = await Bash().call(BashInput(command=probe),
                                    ctx_for(tmp_path, SandboxPolicy(network=True)))
        assert "CONNECTED" in allowed.content


def test_fallback_is_reported_when_bwrap_cannot_run(tmp_path, monkeypatch):
    from lsp_agent.permissions import sandbox as sb

    monkeypatch.setattr(sb, "availability", lambda: sb.Availability(False, "no namespaces"))
    auto = Sandbox(SandboxPolicy(), tmp_path)
    assert auto.wrap(["bash", "-c", "ls"]) == ["bash", "-c", "ls"]
    assert "unavailable: no namespaces" in auto.status()
    required = Sandbox(SandboxPolicy(enabled=True), tmp_path)
    with pytest.raises(sb.SandboxUnavailable, match="no namespaces"):
        required.wrap(["bash", "-c", "ls"])


def test_interpreter_prefixes_under_a_hidden_root_are_found_outermost_first(tmp_path,
                                                                          monkeypatch):
    from lsp_agent.permissions import sandbox as sb

    base = tmp_path / "python"
    venv = base / "envs" / "work"  # nested inside base: only base needs binding
    venv.mkdir(parents=True)
    monkeypatch.setattr(sb.sys, "prefix", str(venv))
    monkeypatch.setattr(sb.sys, "exec_prefix", str(venv))
    monkeypatch.setattr(sb.sys, "base_prefix", str(base))
    root = os.path.realpath(tmp_path)
    assert sb._interpreter_dirs_under(root) == [os.path.realpath(base)]
    monkeypatch.setattr(sb.sys, "base_prefix", "/usr")
    assert sb._interpreter_dirs_under(root) == [os.path.realpath(venv)]
    assert sb._interpreter_dirs_under("/nonexistent-root") == []
