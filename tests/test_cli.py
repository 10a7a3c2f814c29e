"""The command line as a user runs it: real subprocesses, the scripted model over HTTP."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from tests.e2e_harness import demo_project

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
WAIT = 120.0  # against hangs only


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_agent", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          check=False)


def model_env(base_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "k",
            "LSP_AGENT_STATE_DIR": str(tmp_path / "state"), **extra}


def no_model_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    return {**env, "LSP_AGENT_STATE_DIR": str(tmp_path / "state")}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """stderr of a refused command: exactly one line, no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- the demo and the README's offline example -------------------------------------------------

def test_demo_fixes_the_failing_test():
    done = cli("demo", "--fast")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    order = ["FAILED (failures=2)", "● Bash", "? Bash wants to run: python -m unittest",
             "Proposed change", "+    return price - price * percent / 100", "accepted",
             "[cost, simulated", "Demo passed"]
    positions = [out.index(marker) for marker in order]
    assert positions == sorted(positions), "the demo tells its story in order"
    assert out.rstrip().endswith(
        "Demo passed: 2 tests failed before the agent's change; all 4 pass now.")
    assert "{'command'" not in out, "permission lines show the command, not a Python dict"


def test_readme_offline_run_example_fixes_the_demo_project(tmp_path):
    readme = (ROOT / "README.md").read_text()
    assert "--scripted fix_failing_test --yes" in readme
    workspace = demo_project(tmp_path / "shop")
    done = cli("run", "The tests fail. Find the bug and fix it.", "--workspace", str(workspace),
               "--scripted", "fix_failing_test", "--yes", env=no_model_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "percent / 100" in (workspace / "pricing.py").read_text()
    assert "costs are simulated" in done.stderr
    assert "[cost, simulated" in done.stdout
    assert "[end_turn; 5 model calls; tokens in " in done.stdout


# -- run: stdout, questions, answers -------------------------------------------------------------

def test_run_json_prints_only_json_lines_and_asks_on_stderr(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "text", "text": "Fixing."},
                     {"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}},
                     {"type": "tool_use", "name": "Edit", "input": {
                         "path": "pricing.py",
                         "old_string": "    return price - price * percent\n",
                         "new_string": "    return price - price * percent / 100\n"}}]},
        {"content": "Done.", "expect": {"tool_result_contains": "applied"}},
    ]}
    with ScriptedModelServer(scenario) as model:
        done = cli("run", "fix the discount", "--workspace", str(workspace), "--json", "--yes",
                   env=model_env(model.base_url, tmp_path))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line parses
    kinds = [e["type"] for e in events]
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_ended"
    assert kinds.index("proposal_created") < kinds.index("proposal_resolved")
    assert events[-1]["stopReason"] == "end_turn"
    assert "percent / 100" in (workspace / "pricing.py").read_text()
    assert (workspace / "made").exists()
    assert "? Bash wants to run: touch made" in done.stderr, "the question went to stderr"


def test_run_without_a_terminal_refuses_and_names_the_options(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}}]},
        {"content": "Understood.", "expect": {"tool_result_contains": "--permission-mode"}},
    ]}
    with ScriptedModelServer(scenario) as model:
        done = cli("run", "make a file", "--workspace", str(workspace),
                   env=model_env(model.base_url, tmp_path))
        told_the_agent = model.records[-1]["outcome"] == "ok"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "permission for Bash: deny" in done.stdout
    assert "no terminal to ask on" in done.stderr
    assert "--yes" in done.stderr and "--permission-mode" in done.stderr
    assert "--allow 'Bash(touch made)'" in done.stderr
    assert "declined" not in done.stdout + done.stderr, "nobody declined"
    assert told_the_agent, "the agent heard why, and what the user can do"
    assert not (workspace / "made").exists()


def read_until(fd: int, text: str) -> str:
    """What the process wrote to ``fd`` up to and including ``text`` (a prompt has no newline,
    so lines cannot be waited for)."""
    seen = b""
    deadline = time.monotonic() + WAIT  # against hangs only
    while text.encode() not in seen:
        assert time.monotonic() < deadline, f"never saw {text!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the stream ended before {text!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def test_run_asks_on_the_terminal_and_does_what_the_user_answers(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}}]},
        {"content": "Made it.", "expect": {"tool_result_is_error": False}},
    ]}
    controller, terminal = pty.openpty()
    with ScriptedModelServer(scenario) as model:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "run", "make a file", "--workspace",
             str(workspace)], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=model_env(model.base_url, tmp_path))
        os.close(terminal)
        try:
            assert proc.stderr is not None
            asked = read_until(proc.stderr.fileno(), "allow? [y]es / [a]lways this session")
            os.write(controller, b"y\n")
            out, _ = proc.communicate(timeout=WAIT)
        finally:
            os.close(controller)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "? Bash wants to run: touch made" in asked
    assert proc.returncode == 0
    assert b"permission for Bash: allow (user)" in out and b"Made it." in out
    assert (workspace / "made").exists()


def test_run_rules_from_the_command_line_allow_and_deny(tmp_path):
    workspace = demo_project(tmp_path / "shop")
    scenario = {"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}},
                     {"type": "tool_use", "name": "Bash", "input": {"command": "touch other"}}]},
        {"content": "ok", "expect": {"tool_result_contains": "deny rule"}},
    ]}
    with ScriptedModelServer(scenario) as model:
        done = cli("run", "touch files", "--workspace", str(workspace), "--json",
                   "--allow", "Bash(touch made)", "--deny", "Bash(touch other)",
                   env=model_env(model.base_url, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace / "made").exists(), "allowed by --allow without asking"
    assert not (workspace / "other").exists(), "refused by --deny"
    decided = [json.loads(line) for line in done.stdout.splitlines()
               if '"permission_decided"' in line]
    # An allowed call runs quietly; the refusal is reported with its source.
    assert [(d["decision"], d["source"]) for d in decided] == [("deny", "rule")]


# -- bad input: one line that says what to fix, and the exit code -------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (("run", "hi", "--workspace", "/no/such/dir"), "no such folder: /no/such/dir"),
    (("run", "hi", "--workspace", "{file}"), "is a file; give the project's folder"),
    (("run", "", "--workspace", "."), "the prompt is empty"),
    (("run", "  ", "--workspace", "."), "the prompt is empty"),
    (("serve", "--tcp", "bogus"), "'bogus' is not HOST:PORT (e.g. 127.0.0.1:2087"),
    (("serve", "--tcp", "localhost:70000"), "is not HOST:PORT"),
    (("--log-level", "bogus", "demo"), "'bogus' is not a log level (one of debug"),
    (("run", "hi", "--log-level", "loud"), "'loud' is not a log level"),
    (("run", "hi", "--scripted", "no_such_scenario"), "bundled: fix_failing_test"),
])
def test_bad_input_is_one_line_with_the_fix_and_exit_code_2(tmp_path, args, says):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    done = cli(*(arg.replace("{file}", str(a_file)) for arg in args),
               env=no_model_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in one_line_error(done)
    assert done.stdout == ""


def test_a_bad_log_level_in_the_environment_is_named(tmp_path):
    done = cli("serve", env={**no_model_env(tmp_path), "LSP_AGENT_LOG": "chatty"})
    assert done.returncode == 2
    assert "LSP_AGENT_LOG" in one_line_error(done)


def test_missing_key_fails_before_any_turn_naming_the_variable(tmp_path):
    done = cli("run", "hello", "--workspace", str(tmp_path), env=no_model_env(tmp_path))
    assert done.returncode == 3
    line = one_line_error(done)
    assert "ANTHROPIC_API_KEY" in line and "--scripted fix_failing_test" in line
    assert done.stdout == "", "no turn started: nothing was retried"


def test_unreachable_endpoint_is_named_before_any_turn(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    done = cli("run", "hello", "--workspace", str(tmp_path),
               env=model_env(url, tmp_path))
    assert done.returncode == 3
    line = one_line_error(done)
    assert f"cannot reach the model endpoint {url}" in line and "connection refused" in line
    assert done.stdout == ""


def test_unknown_model_says_what_to_change(tmp_path):
    scenario = {"turns": [{"faults": [{"http_status": 404, "error_type": "not_found_error",
                                       "message": "model: claude-nope", "times": 2}],
                           "content": "never"}]}
    with ScriptedModelServer(scenario) as model:
        env = model_env(model.base_url, tmp_path)
        text = cli("run", "hello", "--workspace", str(tmp_path), "--model", "claude-nope",
                   env=env)
        as_json = cli("run", "hello", "--workspace", str(tmp_path), "--model", "claude-nope",
                      "--json", env=env)
        bodies = model.requests
    assert [b["model"] for b in bodies] == ["claude-nope", "claude-nope"], "not retried"
    assert text.returncode == as_json.returncode == 3
    assert "Traceback" not in text.stderr + as_json.stderr
    [error] = [line for line in text.stdout.splitlines() if line.startswith("error")]
    assert "'claude-nope'" in error and "--model" in error
    assert "{'type'" not in error, "the endpoint's words, not the SDK's dict"
    assert "[error; 1 model call, failed]" in text.stdout
    [json.loads(line) for line in as_json.stdout.splitlines()]
    assert "--model" in one_line_error(as_json), "with --json the error also goes to stderr"


def test_a_cannot_listen_address_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = cli("serve", "--tcp", f"127.0.0.1:{port}", env=no_model_env(tmp_path))
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(done)


def test_every_option_has_help():
    from lsp_agent.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parsers = [parser, *commands.choices.values()]
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in parsers for a in p._actions
               if not a.help and a is not commands]
    assert missing == []
    assert "exit codes:" in commands.choices["run"].format_help()


# -- Ctrl-C -----------------------------------------------------------------------------------

def test_ctrl_c_cancels_the_turn_and_says_interrupted(tmp_path):
    slow = {"turns": [{"content": "word " * 400, "delay_ms": 50, "chunk_chars": 5}]}
    with ScriptedModelServer(slow) as model:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "run", "talk", "--workspace", str(tmp_path),
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, env=model_env(model.base_url, tmp_path))
        try:
            assert proc.stdout is not None
            while '"text_delta"' not in proc.stdout.readline():  # wait until it streams
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("lsp-agent: interrupted")
    assert "Traceback" not in err and "ERROR" not in err and "InvalidStateError" not in err
    ended = json.loads(out.splitlines()[-1])
    assert ended["type"] == "turn_ended" and ended["stopReason"] == "cancelled"


def test_serve_over_tcp_says_where_it_listens_and_ctrl_c_is_quiet(tmp_path):
    # PYTHONFAULTHANDLER: if the server ever hangs here, SIGABRT makes it print every thread's
    # stack, and the failure shows where it waited (it hung twice in full runs, never alone).
    env = {**no_model_env(tmp_path), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lsp_agent", "serve", "--tcp", ":0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        port = int(first.split("listening on 127.0.0.1:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT):
            proc.send_signal(signal.SIGINT)  # Ctrl-C while a client is connected
            try:  # below pytest-timeout's limit, so that the stacks below are seen
                out, err = proc.communicate(timeout=WAIT / 2)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                _, stacks = proc.communicate(timeout=WAIT)
                pytest.fail(f"serve --tcp did not end on SIGINT; its threads:\n{stacks[-8000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert out == ""
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "did not stop" not in err, err  # the stop watchdog's stacks, if it had to fire


# -- saved sessions: run --continue / --resume, sessions, export -------------------------------

def test_continue_resume_sessions_and_export(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    scenario = {"turns": [
        {"content": "FIRST-ANSWER"},
        {"content": "SECOND-ANSWER", "expect": {"user_text_contains": "and then?"}},
        {"content": "THIRD-ANSWER"},
    ]}
    with ScriptedModelServer(scenario) as model:
        env = model_env(model.base_url, tmp_path)
        first = cli("run", "remember the word kumquat", "--workspace", str(workspace),
                    "--yes", env=env)
        assert first.returncode == 0, first.stderr
        session = first.stderr.split("lsp-agent: session ")[1].split()[0]
        second = cli("run", "and then?", "--continue", "--workspace", str(workspace),
                     "--yes", env=env)
        assert second.returncode == 0, second.stderr
        sent = json.dumps(model.requests[-1]["messages"])
        assert "kumquat" in sent and "FIRST-ANSWER" in sent, "the earlier turn was sent"
        third = cli("run", "last one", "--resume", session, "--workspace", str(workspace),
                    "--yes", env=env)
        assert third.returncode == 0, third.stderr
        missing = cli("run", "x", "--resume", "nosuchsession", "--workspace", str(workspace),
                      "--yes", env=env)
    assert missing.returncode == 2
    assert "cannot resume session nosuchsession" in one_line_error(missing)

    listed = cli("sessions", "--workspace", str(workspace), "--json", env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["sessionId"] for r in rows] == [session]
    assert rows[0]["turns"] == 3 and rows[0]["title"] == "remember the word kumquat"

    md = cli("export", session, "--workspace", str(workspace), env=env)
    assert md.returncode == 0, md.stderr
    assert md.stdout.index("kumquat") < md.stdout.index("FIRST-ANSWER") \
        < md.stdout.index("and then?") < md.stdout.index("THIRD-ANSWER")
    out = tmp_path / "t.jsonl"
    raw = cli("export", session, "--workspace", str(workspace), "--format", "jsonl",
              "-o", str(out), env=env)
    assert raw.returncode == 0 and all(json.loads(line) for line in out.read_text().splitlines())
    assert "k" not in {json.loads(line).get("apiKey") for line in out.read_text().splitlines()}


def test_continue_without_a_saved_session_says_so(tmp_path):
    workspace = tmp_path / "empty"
    workspace.mkdir()
    with ScriptedModelServer({"turns": [{"content": "x"}]}) as model:
        done = cli("run", "hi", "--continue", "--workspace", str(workspace), "--yes",
                   env=model_env(model.base_url, tmp_path))
    assert done.returncode == 2
    assert "no saved session" in one_line_error(done)
    unknown = cli("export", "nope", "--workspace", str(workspace), env=no_model_env(tmp_path))
    assert unknown.returncode == 2 and "lsp-agent sessions" in one_line_error(unknown)


def test_a_plugin_dir_brings_its_commands_to_the_run(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    plugin = tmp_path / "greeter"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps({"name": "greeter"}))
    (plugin / "commands").mkdir()
    (plugin / "commands" / "hello.md").write_text("Say HELLO-FROM-PLUGIN to $ARGUMENTS.\n")
    scenario = {"turns": [{"content": "done", "expect": {
        "user_text_contains": "HELLO-FROM-PLUGIN to Ada"}}]}
    with ScriptedModelServer(scenario) as model:
        done = cli("run", "/greeter:hello Ada", "--workspace", str(workspace), "--yes",
                   "--plugin-dir", str(plugin), env=model_env(model.base_url, tmp_path))
        assert done.returncode == 0, done.stderr
        assert len(model.requests) == 1
    missing = cli("run", "x", "--plugin-dir", str(tmp_path / "nope"), env=no_model_env(tmp_path))
    assert missing.returncode == 2 and "no such folder" in one_line_error(missing)
