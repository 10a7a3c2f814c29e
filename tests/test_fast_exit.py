"""``run`` and ``serve`` end their process without the interpreter's teardown (procs/fast_exit.py),
and lose nothing by it: output complete, transcripts complete, the exit code right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.scripted.server import ScriptedModelServer

pytestmark = pytest.mark.e2e

WAIT = 120.0
ANSWER = " ".join(f"word{i}" for i in range(3000))  # ~25 KB: more than a pipe's buffer


def test_a_thread_that_never_ends_does_not_keep_the_process_alive(tmp_path):
    program = textwrap.dedent("""
        import threading
        from lsp_agent.procs.fast_exit import exit_now

        threading.Thread(target=threading.Event().wait).start()  # not a daemon, never ends
        exit_now(3)
    """)
    env = {**os.environ, "LSP_AGENT_EXIT_GRACE_SECONDS": "0.5"}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=WAIT, env=env)
    assert done.returncode == 3
    assert "did not finish; exiting anyway" in done.stderr


def test_exit_now_does_what_the_teardown_must_and_keeps_the_code(tmp_path):
    program = textwrap.dedent(f"""
        import atexit, sys, threading, time
        from lsp_agent.procs.fast_exit import exit_now

        atexit.register(lambda: open({str(tmp_path / "atexit")!r}, "w").write("ran"))
        def late():
            time.sleep(0.3)
            open({str(tmp_path / "thread")!r}, "w").write("finished")
        threading.Thread(target=late).start()  # not a daemon: waited for, as at a normal exit
        sys.stdout.write("x" * 200_000)  # buffered, no newline
        sys.stderr.write("to stderr")
        exit_now(7)
        print("never")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=WAIT)
    assert done.returncode == 7
    assert done.stdout == "x" * 200_000
    assert done.stderr == "to stderr"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "finished"


def run_env(base_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "k",
            "LSP_AGENT_STATE_DIR": str(tmp_path / "state")}


def transcript_texts(state: Path) -> list[str]:
    """Every text an assistant entry of the saved transcripts holds."""
    texts = []
    for path in state.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            blocks = (entry.get("message") or {}).get("content") or []
            texts += [b.get("text", "") for b in blocks if isinstance(b, dict)]
    return texts


def test_a_run_piped_to_a_reader_gets_every_line_and_the_transcript_every_word(tmp_path):
    scenario = {"turns": [{"content": ANSWER, "chunk_chars": 40}]}
    with ScriptedModelServer(scenario) as model:
        done = subprocess.run(
            [sys.executable, "-m", "lsp_agent", "run", "talk", "--workspace", str(tmp_path),
             "--json"], capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
            env=run_env(model.base_url, tmp_path))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == ANSWER
    assert events[-1]["type"] == "turn_ended" and events[-1]["stopReason"] == "end_turn"
    assert "lsp-agent: session " in done.stderr  # the last note, after the turn
    assert ANSWER in transcript_texts(tmp_path / "state")  # written by the server as it exited


def test_a_failed_turn_still_exits_with_its_code(tmp_path):
    scenario = {"turns": [{"content": "x", "faults": [
        {"http_status": 400, "message": "bad request here"}]}]}
    with ScriptedModelServer(scenario) as model:
        done = subprocess.run(
            [sys.executable, "-m", "lsp_agent", "run", "talk", "--workspace", str(tmp_path)],
            capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
            env=run_env(model.base_url, tmp_path))
    assert done.returncode == 1, done.stderr
    assert "bad request here" in done.stdout + done.stderr


async def allow(params: dict[str, Any]) -> dict[str, Any]:
    return {"decision": "allow"}


async def reject(event: Any) -> dict[str, Any]:
    return {"reject": "all"}


@pytest.mark.parametrize(("shutdown", "code"), [(True, 0), (False, 1)])
async def test_the_server_exits_with_the_transcript_complete(tmp_path, shutdown, code):
    with ScriptedModelServer({"turns": [{"content": ANSWER}]}) as model:
        client = AgentClient(tmp_path, lambda e: None, allow, reject,
                             env={**run_env(model.base_url, tmp_path),
                                  "LSP_AGENT_PRELOAD_MODEL": "0"})
        await client.start()
        session = await client.new_session()
        assert (await client.prompt(session, "talk"))["stopReason"] == "end_turn"
        if shutdown:
            await client._client.shutdown_async(None)
        client._client.exit(None)  # without shutdown: LSP's exit code 1, nothing flushed before
        assert client._process is not None
        assert await client._process.wait() == code
        await client.kill()
    assert ANSWER in transcript_texts(tmp_path / "state")


def test_a_stop_that_hangs_ends_with_its_code_and_every_threads_stack():
    """serve --tcp's Ctrl-C arms this: the process ends even if its clean-up hangs, saying
    where it waited."""
    code = ("import time\n"
            "from lsp_agent.server import transport\n"
            "transport.STOP_GRACE_S = 0.5\n"
            "transport._stop_watchdog(130)\n"
            "time.sleep(60)  # the clean-up that never ends\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130
    assert "did not stop within 0.5 s" in done.stderr
    assert "time.sleep" in done.stderr or "<string>" in done.stderr  # the main thread's stack
