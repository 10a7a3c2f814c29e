"""The command line as a user runs it: real subprocesses, the scripted model over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from tests.e2e_harness import demo_project

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_agent", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          check=False)


def test_demo_fixes_the_failing_test():
    done = cli("demo", "--fast")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    order = ["FAILED (failures=2)", "● Bash", "permission asked", "Proposed change",
             "+    return price - price * percent / 100", "accepted", "Demo passed"]
    positions = [out.index(marker) for marker in order]
    assert positions == sorted(positions), "the demo tells its story in order"
    assert out.rstrip().endswith("Demo passed: the failing test is fixed.")


def test_run_streams_json_events_and_applies_with_yes(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "text", "text": "Fixing."}, {"type": "tool_use", "name": "Edit",
                      "input": {"path": "pricing.py",
                                "old_string": "    return price - price * percent\n",
                                "new_string": "    return price - price * percent / 100\n"}}]},
        {"content": "Done.", "expect": {"tool_result_contains": "applied"}},
    ]}
    with ScriptedModelServer(scenario) as model:
        env = {**os.environ, "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "k",
               "LSP_AGENT_STATE_DIR": str(tmp_path / "state")}
        done = cli("run", "fix the discount", "--workspace", str(workspace), "--json", "--yes",
                   env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_ended"
    assert kinds.index("proposal_created") < kinds.index("proposal_resolved")
    assert events[-1]["stopReason"] == "end_turn"
    assert "percent / 100" in (workspace / "pricing.py").read_text()


def test_run_without_a_terminal_declines_and_leaves_files_alone(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}}]},
        {"content": "Understood.", "expect": {"tool_result_is_error": True}},
    ]}
    with ScriptedModelServer(scenario) as model:
        env = {**os.environ, "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "k",
               "LSP_AGENT_STATE_DIR": str(tmp_path / "state")}
        done = cli("run", "make a file", "--workspace", str(workspace), env=env)
    assert done.returncode == 0, done.stderr
    assert "permission for Bash: deny" in done.stdout
    assert not (workspace / "made").exists()


def test_run_reports_an_unreachable_model_clearly(tmp_path):
    env = {**os.environ, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": "k",
           "LSP_AGENT_STATE_DIR": str(tmp_path / "state"), "LSP_AGENT_BACKOFF_BASE": "0.01"}
    done = cli("run", "hello", "--workspace", str(tmp_path), env=env)
    assert done.returncode == 1
    assert "error (transient)" in done.stdout and "connection" in done.stdout.lower()


def test_run_rules_from_the_command_line_allow_and_deny(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}},
                     {"type": "tool_use", "name": "Bash", "input": {"command": "touch other"}}]},
        {"content": "ok", "expect": {"tool_result_contains": "deny rule"}},
    ]}
    with ScriptedModelServer(scenario) as model:
        env = {**os.environ, "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "k",
               "LSP_AGENT_STATE_DIR": str(tmp_path / "state")}
        done = cli("run", "touch files", "--workspace", str(workspace), "--json",
                   "--allow", "Bash(touch made)", "--deny", "Bash(touch other)", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace / "made").exists(), "allowed by --allow without asking"
    assert not (workspace / "other").exists(), "refused by --deny"
    decided = [json.loads(line) for line in done.stdout.splitlines()
               if '"permission_decided"' in line]
    # An allowed call runs quietly; the refusal is reported with its source.
    assert [(d["decision"], d["source"]) for d in decided] == [("deny", "rule")]
