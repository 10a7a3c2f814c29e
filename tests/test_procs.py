"""The processes the server starts: the environment they inherit, the server's sealed key, the
sandbox's PID namespace, the guard that kills what a command leaves behind, and the
permission prompt for reading another process's environment. Real processes, real bwrap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lsp_agent.permissions import settings as st
from lsp_agent.permissions.hooks import Hooks, parse_config
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.sandbox import Sandbox, SandboxPolicy, availability
from lsp_agent.procs.environment import EnvPolicy
from lsp_agent.procs.lifetime import contained_by_sandbox, guarded
from lsp_agent.tools.base import ToolContext
from lsp_agent.tools.files import Read, ReadInput
from lsp_agent.tools.shell import Bash, BashInput
from tests.e2e_harness import processes_with, unique_duration, wait_for_processes

needs_bwrap = pytest.mark.skipif(not availability().works,
                                 reason=f"bubblewrap cannot run here: {availability().detail}")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PID namespaces, subreapers and /proc are Linux's")
SANDBOX_MODES = [pytest.param(False, id="unsandboxed", marks=linux_only),
                 pytest.param(True, id="sandboxed", marks=needs_bwrap)]
KEY = "sk-ant-test-never-inherited-8d1f"


def ctx_for(ws: Path, sandboxed: bool, **policy) -> ToolContext:
    sandbox = Sandbox(SandboxPolicy(enabled=sandboxed, **policy), ws)
    return ToolContext(workspace=ws, documents=None, proposals=None, diagnostics=None,  # type: ignore[arg-type]
                       results_dir=ws / ".results", sandbox=sandbox)


async def run(ws: Path, command: str, sandboxed: bool, **extra) -> str:
    result = await Bash().call(BashInput(command=command, **extra), ctx_for(ws, sandboxed))
    return result.content


# -- the environment ---------------------------------------------------------------------------


def test_the_table_hides_credentials_and_the_servers_configuration():
    policy = EnvPolicy.from_settings({"hideEnv": ["database_url"],
                                      "passEnv": ["GH_TOKEN", "ANTHROPIC_API_KEY"]})
    assert policy.hidden("ANTHROPIC_API_KEY"), "the server's own key cannot be passed on"
    assert policy.hidden("ANTHROPIC_AUTH_TOKEN") and policy.hidden("LSP_AGENT_STATE_DIR")
    assert policy.hidden("AWS_SECRET_ACCESS_KEY") and policy.hidden("npm_config_password")
    assert policy.hidden("DATABASE_URL"), "hideEnv adds names"
    assert not policy.hidden("GH_TOKEN"), "passEnv lets a credential through"
    assert not policy.hidden("PATH") and not policy.hidden("HOME")


def test_project_settings_cannot_pass_credentials_to_commands(tmp_path):
    merged = st.merge([
        st.Source("project", tmp_path / "settings.json", {"sandbox": {
            "passEnv": ["AWS_SECRET_ACCESS_KEY"], "hideEnv": ["DATABASE_URL"]}}),
        st.Source("user", tmp_path / "user.json", {"sandbox": {"passEnv": ["GH_TOKEN"]}}),
    ], tmp_path)
    assert merged.sandbox == {"hideEnv": ["DATABASE_URL"], "passEnv": ["GH_TOKEN"]}
    assert any("passEnv is only honoured" in w for w in merged.warnings)


@pytest.mark.parametrize("sandboxed", SANDBOX_MODES)
async def test_commands_inherit_no_credentials(tmp_path, monkeypatch, sandboxed):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("GITHUB_TOKEN", KEY + "-gh")
    monkeypatch.setenv("LSP_AGENT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    out = await run(tmp_path, "env", sandboxed)
    assert KEY not in out and "LSP_AGENT_STATE_DIR" not in out
    assert "PLAIN_SETTING=visible" in out


async def test_pass_env_and_hide_env_reach_bash(tmp_path, monkeypatch):
    monkeypatch.setenv("GH_TOKEN", "gh-passed")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db")
    ctx = ctx_for(tmp_path, False, env=EnvPolicy(hide=("DATABASE_URL",), passed=("GH_TOKEN",)))
    out = (await Bash().call(BashInput(command="env"), ctx)).content
    assert "GH_TOKEN=gh-passed" in out and "postgres://" not in out


async def test_hooks_inherit_no_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    table, _ = parse_config([("test", {"UserPromptSubmit": [{"hooks": [
        {"type": "command", "command": "env > hook-env.txt"}]}]})])
    await Hooks(table, tmp_path, "s1").run("UserPromptSubmit", {"prompt": "hi"})
    seen = (tmp_path / "hook-env.txt").read_text()
    assert "PATH=" in seen and KEY not in seen


SEALED_PROBE = textwrap.dedent("""
    import ctypes, json, os, subprocess, sys
    from lsp_agent.procs.environment import seal_server_secrets, server_secret
    from lsp_agent.model.client import ModelSettings
    sealed = seal_server_secrets()
    inherited = subprocess.run(["env"], capture_output=True, text=True).stdout
    # another process reading this one's /proc entry, as an unsandboxed command would
    peeked = subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True)
    print(json.dumps({
        "sealed": sealed, "in_os_environ": "ANTHROPIC_API_KEY" in os.environ,
        "model_key": ModelSettings.from_env().api_key, "secret": server_secret("ANTHROPIC_API_KEY"),
        "inherited": inherited, "peeked": peeked.stdout.decode(errors="replace"),
        "peek_status": peeked.returncode, "own_environ": open("/proc/self/environ").read(),
        "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
        "other_vars_kept": "PLAIN_SETTING=visible" in inherited}))
""")


@linux_only
def test_sealing_keeps_the_key_for_the_model_and_from_everything_else(tmp_path):
    env = {**os.environ, "ANTHROPIC_API_KEY": KEY, "PLAIN_SETTING": "visible"}
    done = subprocess.run([sys.executable, "-c", SEALED_PROBE], env=env, capture_output=True,
                          text=True, timeout=60, check=True, cwd=tmp_path)
    seen = json.loads(done.stdout)
    assert seen["sealed"] == ["ANTHROPIC_API_KEY"] and seen["in_os_environ"] is False
    assert seen["model_key"] == KEY and seen["secret"] == KEY
    assert KEY not in seen["inherited"] and seen["other_vars_kept"]
    assert KEY not in seen["own_environ"], "blanked in the initial environment block"
    assert KEY not in seen["peeked"], seen["peek_status"]
    assert seen["dumpable"] == 0, "same-user processes cannot read its environ or memory"


# -- the sandbox hides the host ------------------------------------------------------------------


@needs_bwrap
async def test_the_sandbox_shows_no_host_process(tmp_path):
    server = os.getpid()  # the process running the tool stands for the server
    out = await run(tmp_path, "echo PIDS $(ls /proc | grep -E '^[0-9]+$');"
                              f"cat /proc/{server}/environ && echo READ-ENVIRON;"
                              f"kill -0 {server} && echo SIGNALLED; kill -0 1 && echo OWN-INIT",
                    sandboxed=True)
    pids = [int(p) for p in next(line for line in out.splitlines()
                                 if line.startswith("PIDS")).split()[1:]]
    assert server not in pids and max(pids) < 50, f"only the sandbox's processes: {pids}"
    assert "READ-ENVIRON" not in out and "SIGNALLED" not in out
    assert "OWN-INIT" in out, "the namespace's own init is all a command can signal"


def test_only_a_pid_namespace_sandbox_skips_the_guard(tmp_path):
    argv = [*Sandbox(SandboxPolicy(enabled=True), tmp_path).bwrap_args(), "--", "true"]
    assert contained_by_sandbox(argv)
    assert not contained_by_sandbox([a for a in argv if a != "--unshare-pid"])
    if sys.platform.startswith("linux"):
        assert guarded(["bash", "-c", "true"])[0][-4:] == ["--", "bash", "-c", "true"]


# -- nothing outlives its command when stopped, or the server -------------------------------

DOUBLE_FORK = ("python3 -c 'import os; os.fork() == 0 and (os.setsid(), os.fork() == 0 and "
               "os.execvp(\"sleep\", [\"sleep\", \"{}\"]))'")


@pytest.mark.parametrize("sandboxed", SANDBOX_MODES)
async def test_a_timeout_stops_daemons_that_left_the_process_group(tmp_path, sandboxed):
    marker = unique_duration(100)
    command = (f"(setsid sleep {marker}1 > /dev/null 2>&1 &); {DOUBLE_FORK.format(marker + '2')}; "
               f"sleep {marker}3")
    out = await run(tmp_path, command, sandboxed, timeout=2)
    assert "timed out" in out
    assert await wait_for_processes(marker, present=False) == []


@linux_only
async def test_a_background_job_may_outlive_its_command_but_not_a_stop(tmp_path):
    marker = unique_duration(100)
    out = await run(tmp_path, f"sleep {marker} > /dev/null 2>&1 & echo started", False)
    assert out == "started"
    keeper, keeper_cmdline = parent_of(f"sleep\0{marker}\0")
    assert "guard.py" in keeper_cmdline, "still guarded by its keeper"
    os.kill(keeper, signal.SIGTERM)  # what its keeper does when the server goes
    assert await wait_for_processes(marker, present=False) == []


@linux_only
async def test_a_hook_that_times_out_leaves_no_daemon(tmp_path):
    marker = unique_duration(100)
    table, _ = parse_config([("test", {"UserPromptSubmit": [{"hooks": [{
        "type": "command", "timeout": 1,
        "command": f"(setsid sleep {marker} > /dev/null 2>&1 &); sleep 30"}]}]})])
    outcome = await Hooks(table, tmp_path, "s1").run("UserPromptSubmit", {"prompt": "hi"})
    assert "timed out" in outcome.messages[0]
    assert await wait_for_processes(marker, present=False) == []


def parent_of(cmdline: str) -> tuple[int, str]:
    """(pid, command line) of the parent of the one process running ``cmdline``."""
    (pid,) = [p for p in processes_with(cmdline.split("\0")[1])
              if Path(f"/proc/{p}/cmdline").read_text() == cmdline]
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return parent, Path(f"/proc/{parent}/cmdline").read_text()


CHILD_OF_A_DOOMED_SERVER = textwrap.dedent("""
    import subprocess, sys, time
    from lsp_agent.procs.lifetime import child_options
    subprocess.Popen(["sleep", sys.argv[1]], **child_options())
    print("started", flush=True)
    time.sleep(100)
""")


@linux_only
def test_programs_the_server_runs_die_with_it(tmp_path):
    marker = unique_duration(100)
    with subprocess.Popen([sys.executable, "-c", CHILD_OF_A_DOOMED_SERVER, marker],
                          stdout=subprocess.PIPE, text=True, cwd=tmp_path) as server:
        assert server.stdout is not None and server.stdout.readline() == "started\n"
        assert processes_with(marker)
        server.kill()
    deadline = time.monotonic() + 30  # only against a hang: the kill is immediate
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []


# -- the permission prompt -------------------------------------------------------------------


@pytest.fixture
def gate(tmp_path, monkeypatch) -> PermissionGate:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings = st.merge([st.Source("options", None, {"permissions": {"allow": ["Bash(cat:*)"]}})],
                        tmp_path)
    return PermissionGate(tmp_path, "bypassPermissions", settings=settings)


def test_reading_the_servers_environment_is_a_secret_read_in_every_mode(gate):
    environ = f"/proc/{os.getpid()}/environ"
    for command in (f"cat {environ}", f"tr '\\0' '\\n' < {environ}",
                    f"python3 -c \"print(open('{environ}').read())\""):
        verdict = gate.evaluate(Bash(), BashInput(command=command), None)
        assert verdict.action == "ask", command  # despite bypassPermissions and Bash(cat:*)
        assert "the language server's environment, which holds its API key" in verdict.reason


def test_other_processes_environment_and_memory_and_ps_e_ask(gate):
    for command, words in (("cat /proc/1/environ", "environment of another process"),
                           ("dd if=/proc/$PPID/mem", "memory of a running process"),
                           ("cat /proc/self/task/1/environ", "environment of a running process"),
                           ("ps eww", "ps e shows the environment")):
        verdict = gate.evaluate(Bash(), BashInput(command=command), None)
        assert verdict.action == "ask" and words in verdict.reason, command
    gate.mode = "default"
    assert gate.evaluate(Bash(), BashInput(command="ps aux"), None).action == "allow"


def test_the_read_tool_says_whose_environment_it_is(gate):
    path = Path(f"/proc/{os.getpid()}/environ")
    verdict = gate.evaluate(Read(), ReadInput(path=str(path)), path)
    assert verdict.action == "ask"
    assert verdict.reason.endswith("the language server's environment, which holds its API key")
