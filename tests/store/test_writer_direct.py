"""The writer's direct path: a short line is written by ``append`` itself, so it is in the
kernel when ``append`` returns (a SIGKILL right after loses nothing); a long line goes to the
writer's thread and the lines behind it wait for it, so that the order is kept; the index
entry counts the bytes of the lines before it, whichever wrote them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from lsp_agent.store import Store, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store import writer as writer_module
from tests.store.helpers import text_prompt

WAIT = 30.0  # generous: only against a hang


def messages(path: Path) -> list[str]:
    return [e["message"] for e in load_transcript(path).entries if e["type"] == "system"]


async def test_a_short_line_is_in_the_file_when_append_returns(store: Store, workspace: Path):
    writer = await store.create(workspace)
    await writer.flush()  # the header
    for i in range(3):
        writer.append(en.system("n", f"line {i}"))
        # No flush, no await: the thread never ran for it.
        assert messages(writer.path) == [f"line {j}" for j in range(i + 1)]
    await writer.close()


async def test_lines_behind_a_long_one_wait_for_it_and_keep_their_order(
        store: Store, workspace: Path, monkeypatch: pytest.MonkeyPatch):
    writer = await store.create(workspace)
    await writer.flush()
    real_write_all = writer_module.write_all
    long_started, release = threading.Event(), threading.Event()

    def slow_for_long_lines(fd: int, data: bytes) -> None:
        if len(data) > writer_module.DIRECT_MAX:  # the thread, held mid-write
            long_started.set()
            release.wait(WAIT)
        real_write_all(fd, data)

    monkeypatch.setattr(writer_module, "write_all", slow_for_long_lines)
    writer.append(en.system("n", "before"))
    writer.append(en.system("n", "long " + "x" * writer_module.DIRECT_MAX))
    assert long_started.wait(WAIT)
    writer.append(en.system("n", "after"))
    assert messages(writer.path) == ["before"]  # "after" waits behind the long line
    release.set()
    assert await writer.flush()
    assert [m[:5] for m in messages(writer.path)] == ["befor", "long ", "after"]
    writer.append(en.system("n", "direct again"))  # the thread is idle: written at once
    assert messages(writer.path)[-1] == "direct again"
    await writer.close()


async def test_the_index_counts_the_bytes_before_it_whoever_wrote_them(
        store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(en.system("n", "x" * (writer_module.DIRECT_MAX + 1)))  # the thread's
    writer.append(text_prompt("short"))  # a prompt: the index is written after it
    await writer.flush()
    size = writer.path.stat().st_size
    writer.append(en.system("n", "after the index"))
    await writer.flush()
    assert json.loads(writer.meta_path.read_text())["transcriptBytes"] == size
    await writer.close()
    assert json.loads(writer.meta_path.read_text())["transcriptBytes"] == \
        writer.path.stat().st_size


CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from lsp_agent.store import entries as en
    from lsp_agent.store.writer import open_writer_blocking

    path = Path(sys.argv[1])
    writer = open_writer_blocking(path, path.stem, cwd="/ws")
    writer.append(en.user_prompt("do it", [{"type": "text", "text": "do it"}]))
    for i in range(200):
        writer.append(en.system("seq", str(i)))
    writer.append(en.turn_end("end_turn", 1, {"input_tokens": 5}, 0.0))
    os.kill(os.getpid(), signal.SIGKILL)  # no flush, no close, no atexit
""")


def test_a_sigkill_right_after_a_turn_loses_none_of_its_lines(tmp_path: Path):
    path = tmp_path / "state" / "s.jsonl"
    env = dict(os.environ)
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, timeout=60,
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    reader = load_transcript(path)
    assert reader.warnings == []
    assert [e["type"] for e in reader.entries][-1] == "turn_end"
    assert messages(path) == [str(i) for i in range(200)]
