"""SIGKILL a process while it writes a transcript: what is on disk loads, in order, without
gaps; a torn last line is skipped with a warning; the session can be resumed and appended to.
Also two processes writing sessions and prompt history of one workspace at once."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

from lsp_agent.store import Redactor, Store, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store.writer import open_writer_blocking

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lsp_agent.store import entries as en
    from lsp_agent.store import redact
    from lsp_agent.store.writer import open_writer_blocking

    redact._BYTE_ANCHORS = ()  # no secret scan: the writer thread spends its time in write()
    path, big, every = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    writer = open_writer_blocking(path, path.stem, cwd="/ws")
    padding = "x" * big
    i = 0
    while True:
        pad = padding if i >= 50 and i % every == 0 else "y" * (40 + i % 500)
        writer.append(en.system("seq", str(i) + ":" + pad))
        i += 1
        if i == 50:
            writer.flush_blocking()
            print("ready", flush=True)
""")


def child_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "home" / ".config"))
    return env


def kill_mid_stream(tmp_path: Path, path: Path, big: int, delay: float, every: int = 7) -> None:
    """Kill a writer ``delay`` s after its first 50 entries are flushed; after those, every
    ``every``-th entry is ``big`` characters (a long write is where a line can be torn)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(big), str(every)],
                            stdout=subprocess.PIPE, env=child_env(tmp_path))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def sequence(path: Path) -> tuple[list[int], list[str]]:
    """The sequence numbers of the child's entries, and the load warnings."""
    reader = load_transcript(path)
    seqs = [int(e["message"].split(":", 1)[0]) for e in reader.entries
            if e["type"] == "system"]
    return seqs, reader.warnings


def check_and_resume(path: Path) -> bool:
    """The invariants after a kill; True when the kill tore the last line."""
    seqs, warnings = sequence(path)
    assert len(seqs) >= 50  # everything flushed before "ready" survived
    assert seqs == list(range(len(seqs)))  # in order, no gaps
    assert len(warnings) <= 1 and all("torn last line" in w for w in warnings)

    # The session goes on: the torn tail is cut, new entries chain to the last whole one.
    reader = load_transcript(path)
    writer = open_writer_blocking(path, "s", state=reader.writer_state())
    writer.append(en.system("seq", f"{len(seqs)}:after the crash"))
    writer.close_blocking()
    again = load_transcript(path)
    assert again.warnings == []
    assert [int(e["message"].split(":")[0]) for e in again.chain] == list(range(len(seqs) + 1))
    return bool(warnings)


def test_sigkill_at_any_instant_leaves_a_loadable_prefix(tmp_path: Path):
    """Kill at random instants while 8 MB lines are written (a kill inside ``write`` tears the
    line) until one kill tore a line, ten kills at most."""
    rng = random.Random(1)
    torn = 0
    for attempt in range(10):
        path = tmp_path / f"state{attempt}" / "s.jsonl"
        kill_mid_stream(tmp_path, path, big=8_000_000, every=1, delay=rng.uniform(0.05, 0.4))
        torn += check_and_resume(path)
        shutil.rmtree(path.parent)
        if torn:
            break
    if not torn:
        warnings.warn("no kill landed inside a write: the torn-line case went unexercised "
                      "here (test_reader covers every cut of a file)", stacklevel=1)


def test_sigkill_among_small_lines(tmp_path: Path):
    for attempt, delay in enumerate((0.0, 0.02, 0.1)):
        path = tmp_path / f"state{attempt}" / "s.jsonl"
        kill_mid_stream(tmp_path, path, big=100_000, every=5, delay=delay)
        check_and_resume(path)


def test_a_crash_loop_of_kill_and_resume_never_loses_flushed_entries(tmp_path: Path):
    path = tmp_path / "state" / "s.jsonl"
    kill_mid_stream(tmp_path, path, big=500_000, every=3, delay=0.05)
    for round_ in range(2):
        seqs, _ = sequence(path)
        reader = load_transcript(path)
        writer = open_writer_blocking(path, "s", state=reader.writer_state())
        writer.append(en.system("seq", f"{len(seqs)}:resumed {round_}"))
        writer.close_blocking()
    seqs, warnings = sequence(path)
    assert seqs == list(range(len(seqs))) and warnings == []


WRITER_PROCESS = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from lsp_agent.store import Redactor, Store
    from lsp_agent.store import entries as en

    async def main(state, workspace, tag):
        store = Store(Path(state), redactor=Redactor())
        writers = [await store.create(Path(workspace)) for _ in range(3)]
        for i in range(200):
            for n, writer in enumerate(writers):
                writer.append(en.user_prompt(f"{tag}-{n}-{i}", []))
            store.add_prompt_blocking(Path(workspace), f"{tag} prompt {i % 50}", tag)
        for writer in writers:
            await writer.close()

    asyncio.run(main(*sys.argv[1:4]))
""")


def test_two_servers_write_one_workspace_without_corruption(tmp_path: Path):
    state, workspace = tmp_path / "state", tmp_path / "ws"
    workspace.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, str(state), str(workspace),
                               tag], env=child_env(tmp_path)) for tag in ("a", "b")]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = Store(state, redactor=Redactor())
    page = store.list_sessions_blocking(workspace)
    assert page.total == 6
    for item in page.items:
        assert item.turns == 200
        reader = store.load_blocking(workspace, item.session_id)
        assert reader.warnings == [] and len(reader.turns()) == 200
    history_lines = store.layout.prompts(workspace).read_text().splitlines()
    assert len(history_lines) == 400
    assert all(json.loads(line)["prompt"] for line in history_lines)  # no interleaving
    assert sorted(store.prompt_history_blocking(workspace, limit=1000)) == sorted(
        f"{t} prompt {i}" for t in "ab" for i in range(50))
