"""`lsp-agent run` on a started server (client/warm.py, client/warm_host.py): a second run of
the same workspace and configuration is served by the warm server the first one started; a
changed environment gets a server of its own; the warm server ends when idle or when its
workspace is gone; a dead socket is cleaned up; a warm server that fails makes the run start a
fresh one and say so. Real processes, the scripted model over HTTP.

The suite keeps reuse off (tests/conftest.py); these tests turn it on with a runtime folder of
their own and stop every warm server they started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.client import warm
from lsp_agent.procs.rendezvous import private_folder
from lsp_agent.scripted.server import ScriptedModelServer

pytestmark = pytest.mark.e2e

WAIT = 120.0  # against hangs only


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_agent", *args], capture_output=True,
                          text=True, timeout=WAIT, env=env, stdin=subprocess.DEVNULL,
                          check=False)


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short XDG_RUNTIME_DIR (socket paths are limited to 108 bytes); at the end every warm
    server whose status file is there is stopped."""
    folder = Path(tempfile.mkdtemp(prefix="la-rt-"))
    try:
        yield folder
    finally:
        for status in (folder / "lsp-agent").glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                stop(json.loads(status.read_text())["pid"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer({"turns": [{"content": f"done {n}"} for n in range(6)]}) as server:
        yield server


def run_env(model: ScriptedModelServer, runtime: Path, tmp_path: Path,
            **extra: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "k",
            "LSP_AGENT_STATE_DIR": str(tmp_path / "state"), "XDG_RUNTIME_DIR": str(runtime),
            "LSP_AGENT_RUN_KEEPALIVE": "60", **extra}


def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text("print('hi')\n")
    return folder


def run(folder: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    done = cli("run", "say hi", "--workspace", str(folder), "--yes", *extra, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done" in done.stdout
    return done


def statuses(runtime: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (runtime / "lsp-agent").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found[path.stem] = json.loads(path.read_text())
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), f"warm server {pid} to end")


# -- reuse --------------------------------------------------------------------------------------

def test_a_second_run_reuses_the_warm_server_and_another_environment_does_not(
        model, runtime, tmp_path):
    folder, env = workspace(tmp_path), run_env(model, runtime, tmp_path)
    run(folder, env)
    [(name, first)] = statuses(runtime).items()
    assert first["served"] == 1 and alive(first["pid"])
    assert first["workspace"] == str(folder.resolve())

    second = run(folder, env, "--log-level", "warning")  # the default level: the same server
    now = statuses(runtime)
    assert list(now) == [name]
    assert now[name]["pid"] == first["pid"] and now[name]["served"] == 2
    assert "warm server" not in second.stderr  # nothing to say when all went well

    changed = {**env, "LSP_AGENT_CONTEXT_WINDOW": "150000"}  # changes what a server does
    run(folder, changed)
    now = statuses(runtime)
    assert len(now) == 2 and now[name]["served"] == 2
    [other] = [s for key, s in now.items() if key != name]
    assert other["pid"] != first["pid"] and other["served"] == 1


def test_the_socket_is_the_users_alone(model, runtime, tmp_path):
    run(workspace(tmp_path), run_env(model, runtime, tmp_path))
    folder = runtime / "lsp-agent"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [sock] = folder.glob("*.sock")
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600


def test_no_reuse_when_switched_off(model, runtime, tmp_path):
    folder = workspace(tmp_path)
    run(folder, run_env(model, runtime, tmp_path, LSP_AGENT_RUN_KEEPALIVE="0"))
    run(folder, run_env(model, runtime, tmp_path), "--no-reuse")
    assert statuses(runtime) == {}


def test_a_bad_keepalive_is_one_line_naming_the_variable(model, runtime, tmp_path):
    done = cli("run", "say hi", "--workspace", str(workspace(tmp_path)),
               env=run_env(model, runtime, tmp_path, LSP_AGENT_RUN_KEEPALIVE="soon"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lsp-agent: error: LSP_AGENT_RUN_KEEPALIVE: 'soon' is not a number of seconds "
        "(0 turns reuse off)"]


# -- the warm server's end ------------------------------------------------------------------------

def test_the_warm_server_ends_when_idle_and_removes_its_socket(model, runtime, tmp_path):
    run(workspace(tmp_path), run_env(model, runtime, tmp_path, LSP_AGENT_RUN_KEEPALIVE="3"))
    [status] = statuses(runtime).values()  # read at once: it stays 3 s after the run
    wait_until(lambda: not alive(status["pid"]), "the idle warm server to exit")
    assert list((runtime / "lsp-agent").glob("*.sock")) == []
    assert statuses(runtime) == {}


def test_the_warm_server_ends_when_its_workspace_is_gone(model, runtime, tmp_path):
    folder = workspace(tmp_path)
    run(folder, run_env(model, runtime, tmp_path))
    [status] = statuses(runtime).values()
    shutil.rmtree(folder)
    wait_until(lambda: not alive(status["pid"]), "the warm server to notice")
    assert statuses(runtime) == {}


def test_a_dead_servers_socket_is_cleaned_and_a_new_server_starts(model, runtime, tmp_path):
    folder, env = workspace(tmp_path), run_env(model, runtime, tmp_path)
    run(folder, env)
    [(name, dead)] = statuses(runtime).items()
    stop(dead["pid"])  # killed: its socket file stays behind
    sock = runtime / "lsp-agent" / f"{name}.sock"
    assert sock.exists()
    run(folder, env)
    now = statuses(runtime)[name]
    assert now["pid"] != dead["pid"] and now["served"] == 1


def test_a_warm_server_that_fails_makes_the_run_start_its_own_and_say_so(
        model, runtime, tmp_path):
    folder, env = workspace(tmp_path), run_env(model, runtime, tmp_path)
    run(folder, env)
    [(name, status)] = statuses(runtime).items()
    stop(status["pid"])
    # In its place, a "server" that takes the lock and the socket and hangs up on every run.
    base = runtime / "lsp-agent" / name
    (runtime / "lsp-agent" / f"{name}.json").unlink()
    lock = os.open(f"{base}.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    Path(f"{base}.sock").unlink()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(f"{base}.sock")
    listener.listen()
    listener.settimeout(WAIT)
    def hang_up() -> None:
        conn = listener.accept()[0]
        conn.recv(65536)  # the hello, then nothing
        conn.close()

    hung_up = threading.Thread(target=hang_up, daemon=True)
    hung_up.start()
    try:
        done = run(folder, env)
    finally:
        listener.close()
        os.close(lock)
    assert ("lsp-agent: the warm server did not answer (closed the connection); starting a "
            "fresh server for this run") in done.stderr
    assert not hung_up.is_alive()


# -- the key and the folder ----------------------------------------------------------------------

def test_the_key_follows_the_environment_that_matters_and_nothing_else(tmp_path):
    env = {"HOME": "/home/u", "PATH": "/bin", "ANTHROPIC_BASE_URL": "http://x"}
    key = warm.server_key(env, tmp_path)
    assert warm.server_key({**env, "TERM_SESSION": "42", "OLDPWD": "/"}, tmp_path) == key
    for name, value in [("ANTHROPIC_BASE_URL", "http://y"), ("ANTHROPIC_API_KEY", "k2"),
                        ("LSP_AGENT_MODEL", "m"), ("HOME", "/home/v"), ("PATH", "/usr/bin"),
                        ("XDG_CONFIG_HOME", "/c"), ("PYTHONPATH", "/p")]:
        assert warm.server_key({**env, name: value}, tmp_path) != key, name
    assert warm.server_key(env, tmp_path / "other") != key


def test_a_folder_others_can_enter_is_never_used(tmp_path):
    mine = tmp_path / "private"
    assert private_folder(mine) and stat.S_IMODE(mine.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert not private_folder(shared)
    link = tmp_path / "link"
    link.symlink_to(mine)
    assert not private_folder(link)


# -- a run handed over to the warm server behaves as one of its own --------------------------------

def test_ctrl_c_reaches_a_run_handed_to_the_warm_server(runtime, tmp_path):
    with ScriptedModelServer({"turns": [{"content": "done, warm"}]}) as model:
        folder, env = workspace(tmp_path), run_env(model, runtime, tmp_path)
        run(folder, env, "--json")  # starts the warm server
        model.load({"turns": [{"content": "word " * 400, "delay_ms": 50, "chunk_chars": 5}]})
        proc = subprocess.Popen(
            [sys.executable, "-m", "lsp_agent", "run", "talk", "--workspace", str(folder),
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL, env=env)
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
    [status] = statuses(runtime).values()
    assert status["served"] == 2  # the second run was the warm server's
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("lsp-agent: interrupted")
    assert "Traceback" not in err and "ERROR" not in err
    ended = json.loads(out.splitlines()[-1])
    assert ended["type"] == "turn_ended" and ended["stopReason"] == "cancelled"
