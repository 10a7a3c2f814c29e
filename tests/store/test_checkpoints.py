"""Checkpoints: what is captured and what is not, deduplicated blobs, rewind targets (also
across branches and earlier rewinds, checked against a model of the files), garbage
collection."""

from __future__ import annotations

import asyncio
import os
import random
import stat
from pathlib import Path

import pytest

from lsp_agent.store import (
    BlobError,
    CaptureRules,
    Checkpointer,
    Store,
    TranscriptWriter,
    load_transcript,
    plan_rewind,
    read_target,
)
from lsp_agent.store.blobs import BlobStore
from lsp_agent.store.checkpoints import capture
from tests.store.helpers import text_prompt


async def start(store: Store, workspace: Path, **rules) -> tuple[TranscriptWriter, Checkpointer]:
    writer = await store.create(workspace)
    checkpointer = Checkpointer(CaptureRules(workspace, **rules), store.blobs, writer.append)
    return writer, checkpointer


async def new_turn(writer: TranscriptWriter, checkpointer: Checkpointer, prompt: str) -> str:
    uid = writer.append(text_prompt(prompt))
    checkpointer.begin_turn(uid)
    return uid


# -- what is captured ------------------------------------------------------------------------

SKIPPED = [
    # (files to create, path captured, words in the reason)
    ({".git/config": "x"}, ".git/config", "inside .git/"),
    ({"web/node_modules/lib/a.js": "x"}, "web/node_modules/lib/a.js", "inside node_modules/"),
    ({"env2/pyvenv.cfg": "home=/usr", "env2/lib/x.py": "x"}, "env2/lib/x.py", "virtualenv"),
    ({".gitignore": "build/\n*.log\n!keep.log\n", "build/out.js": "x"}, "build/out.js",
     ".gitignore"),
    ({".gitignore": "*.log\n", "logs/a.log": "x"}, "logs/a.log", ".gitignore"),
    ({"sub/.gitignore": "gen_*.py\n", "sub/gen_a.py": "x"}, "sub/gen_a.py", ".gitignore"),
    ({".git/info/exclude": "secret_dir/\n", "secret_dir/a.txt": "x"}, "secret_dir/a.txt",
     ".gitignore"),
    ({".env": "TOKEN=abc"}, ".env", "secret"),
    ({"certs/server.pem": "-----BEGIN"}, "certs/server.pem", "secret"),
]


@pytest.mark.parametrize(("files", "target", "reason"), SKIPPED)
def test_files_checkpoints_skip(tmp_path, workspace, files, target, reason):
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    entry = capture(CaptureRules(workspace), BlobStore(tmp_path / "blobs"), "s", target)
    assert entry["blob"] is None and reason in entry["skipped"]
    assert entry["existed"] is True


@pytest.mark.parametrize("files,target", [
    ({".gitignore": "*.log\n!keep.log\n", "keep.log": "x"}, "keep.log"),
    ({".gitignore": "/build\n", "src/build/a.py": "x"}, "src/build/a.py"),
    ({".gitignore": "*.tmp\n", "sub/.gitignore": "!b.tmp\n", "sub/b.tmp": "x"}, "sub/b.tmp"),
    ({"src/app.py": "x"}, "src/app.py"),
])
def test_files_checkpoints_capture(tmp_path, workspace, files, target):
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    blobs = BlobStore(tmp_path / "blobs")
    entry = capture(CaptureRules(workspace), blobs, "s", target)
    assert "skipped" not in entry and blobs.get(entry["blob"]) == b"x"


def test_outside_the_workspace_and_through_symlinks(tmp_path, workspace):
    outside = tmp_path / "outside.txt"
    outside.write_text("theirs")
    (workspace / "link.txt").symlink_to(outside)
    rules, blobs = CaptureRules(workspace), BlobStore(tmp_path / "blobs")
    for path in (outside, "link.txt", "../outside.txt"):
        entry = capture(rules, blobs, "s", path)
        assert entry["skipped"] == "outside the workspace"
        assert entry["path"] == str(outside.resolve())


def test_size_cap_and_non_regular_files(tmp_path, workspace):
    (workspace / "big.bin").write_bytes(b"x" * 2000)
    (workspace / "folder").mkdir()
    os.mkfifo(workspace / "pipe")
    rules, blobs = CaptureRules(workspace, max_file_bytes=1000), BlobStore(tmp_path / "blobs")
    assert "over the checkpoint size cap of 1,000" in capture(rules, blobs, "s", "big.bin")[
        "skipped"]
    assert capture(rules, blobs, "s", "folder")["skipped"] == "not a regular file"
    assert capture(rules, blobs, "s", "pipe")["skipped"] == "not a regular file"
    missing = capture(rules, blobs, "s", "new.py")
    assert missing["existed"] is False and missing["blob"] is None and "skipped" not in missing


def test_blobs_are_deduplicated_compressed_and_verified(tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    text = b"def f():\n    return 1\n" * 500
    digest, added = blobs.put(text)
    again, added_again = blobs.put(text)
    assert again == digest and added > 0 and added_again == 0
    assert blobs.path(digest).stat().st_size < len(text) / 10
    assert stat.S_IMODE(blobs.path(digest).stat().st_mode) == 0o600
    assert stat.S_IMODE(blobs.path(digest).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(blobs.root.stat().st_mode) == 0o700
    assert blobs.get(digest) == text
    noise = os.urandom(4096)  # incompressible: stored raw
    raw_digest, _ = blobs.put(noise)
    assert blobs.get(raw_digest) == noise
    path = blobs.path(digest)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    with pytest.raises(BlobError, match="damaged"):
        blobs.get(digest)
    with pytest.raises(BlobError, match="not a blob name"):
        blobs.path("../../etc/passwd")


async def test_same_content_in_two_sessions_is_one_blob(store, workspace):
    (workspace / "a.py").write_text("shared content\n" * 100)
    for _ in range(2):
        writer, cp = await start(store, workspace)
        await new_turn(writer, cp, "go")
        await cp.before_write(["a.py"])
        await writer.close()
    assert len(list(store.blobs.iter_blobs())) == 1


# -- recording pre-images --------------------------------------------------------------------


async def test_a_file_is_captured_once_per_turn(store, workspace):
    (workspace / "a.py").write_text("v1")
    writer, cp = await start(store, workspace)
    await new_turn(writer, cp, "one")
    first = await cp.before_write(["a.py", "b.py"])
    (workspace / "a.py").write_text("v2")
    assert await cp.before_write(["a.py", str(workspace / "a.py")]) == []
    await new_turn(writer, cp, "two")
    second = await cp.before_write(["a.py"])
    await writer.close()
    assert [(e["path"], e["existed"]) for e in first] == [("a.py", True), ("b.py", False)]
    assert store.blobs.get(second[0]["blob"]) == b"v2"
    backups = [e for e in load_transcript(writer.path).entries if e["type"] == "file_backup"]
    assert len(backups) == 3


async def test_concurrent_calls_for_one_file_wait_for_one_capture(store, workspace):
    (workspace / "a.py").write_text("v1")
    writer, cp = await start(store, workspace)
    await new_turn(writer, cp, "one")
    results = await asyncio.gather(*(cp.before_write(["a.py"]) for _ in range(5)))
    await writer.close()
    assert sum(len(r) for r in results) == 1


async def test_capturing_needs_a_turn(store, workspace):
    writer, cp = await start(store, workspace)
    with pytest.raises(RuntimeError, match="begin_turn"):
        await cp.before_write(["a.py"])
    await writer.close()


# -- rewinding -------------------------------------------------------------------------------


async def test_rewind_targets_for_each_turn(store, workspace):
    (workspace / "a.py").write_text("a0")
    (workspace / "c.py").write_text("c0")
    writer, cp = await start(store, workspace)

    await new_turn(writer, cp, "t1")
    await cp.before_write(["a.py"])
    (workspace / "a.py").write_text("a1")
    await new_turn(writer, cp, "t2")
    await cp.before_write(["a.py", "b.py"])
    (workspace / "a.py").write_text("a2")
    (workspace / "b.py").write_text("b2")
    await new_turn(writer, cp, "t3")
    await cp.before_write(["c.py"])
    (workspace / "c.py").unlink()
    await writer.close()

    reader = load_transcript(writer.path)
    plans = {n: plan_rewind(reader, n, workspace, store.blobs.exists) for n in (1, 2, 3)}
    targets = {n: {t.path: await read_target(store.blobs, t) for t in p.restore}
               for n, p in plans.items()}
    assert targets[3] == {"c.py": b"c0"}
    assert targets[2] == {"a.py": b"a1", "b.py": None, "c.py": b"c0"}
    assert targets[1] == {"a.py": b"a0", "b.py": None, "c.py": b"c0"}
    assert all(not p.unrestorable for p in plans.values())
    with pytest.raises(ValueError, match="no turn 4"):
        plan_rewind(reader, 4, workspace, store.blobs.exists)


async def test_what_cannot_be_restored_says_why(store, workspace, tmp_path):
    (workspace / "big.bin").write_bytes(b"x" * 50)
    (workspace / "gone.py").write_text("gone")
    writer, cp = await start(store, workspace, max_file_bytes=20)
    await new_turn(writer, cp, "t1")
    await cp.before_write(["big.bin", tmp_path / "elsewhere.txt", "gone.py"])
    await writer.close()
    reader = load_transcript(writer.path)
    gone_blob = next(e["blob"] for e in reader.entries if e.get("path") == "gone.py")
    store.blobs.path(gone_blob).unlink()
    plan = plan_rewind(reader, 1, workspace, store.blobs.exists)
    reasons = {u.path: u.reason for u in plan.unrestorable}
    assert "size cap" in reasons["big.bin"]
    assert reasons[str(tmp_path / "elsewhere.txt")] == "outside the workspace"
    assert "snapshot is gone" in reasons["gone.py"]
    assert plan.restore == []


class Model:
    """The test's own record of every file's content at each checkpoint."""

    def __init__(self, workspace: Path, names: list[str]):
        self.workspace = workspace
        self.names = names
        self.checkpoints: list[dict[str, bytes | None]] = []  # index n-1: before turn n

    def now(self) -> dict[str, bytes | None]:
        out = {}
        for name in self.names:
            path = self.workspace / name
            out[name] = path.read_bytes() if path.exists() else None
        return out


async def apply_plan(store: Store, cp: Checkpointer, plan) -> None:
    await cp.before_write([t.path for t in plan.restore])
    for target in plan.restore:
        content = await read_target(store.blobs, target)
        if content is None:
            target.absolute.unlink(missing_ok=True)
        else:
            target.absolute.parent.mkdir(parents=True, exist_ok=True)
            target.absolute.write_bytes(content)


@pytest.mark.parametrize("seed", range(8))
async def test_rewinds_restore_every_checkpoint_across_branches(store, workspace, seed):
    """Random turns edit, create and delete files; random rewinds go back with code and
    conversation, code only or conversation only. After every code rewind the files must
    equal the model's record of that checkpoint."""
    rng = random.Random(seed)
    names = ["a.py", "b.py", "src/c.py", "src/deep/d.txt", "e.md"]
    for name in names[:3]:
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_bytes(f"{name} v0\n".encode())
    model = Model(workspace, names)
    writer, cp = await start(store, workspace)
    checked = 0
    for step in range(40):
        action = rng.choice(["turn"] * 5 + ["both", "code", "conversation"])
        if action == "turn" or not model.checkpoints:
            model.checkpoints.append(model.now())
            await new_turn(writer, cp, f"step {step}")
            for name in rng.sample(names, rng.randint(1, 3)):
                await cp.before_write([name])
                path = workspace / name
                if path.exists() and rng.random() < 0.25:
                    path.unlink()
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"{name} at step {step} {rng.random()}\n".encode())
            continue
        turn = rng.randint(1, len(model.checkpoints))
        target_state = model.checkpoints[turn - 1]
        await writer.flush()
        plan = plan_rewind(load_transcript(writer.path), turn, workspace, store.blobs.exists)
        assert plan.unrestorable == []
        if action in ("both", "conversation"):
            writer.rewind(turn)
            del model.checkpoints[turn - 1:]
        if action in ("both", "code"):
            cp.begin_restore(turn)
            await apply_plan(store, cp, plan)
            assert model.now() == target_state, (step, action, turn)
            checked += 1
    await writer.close()
    assert checked > 0
    assert writer.turns == len(model.checkpoints)


# -- garbage collection ------------------------------------------------------------------------


async def test_garbage_collection_keeps_what_sessions_reference(store, workspace):
    (workspace / "kept.py").write_text("kept")
    (workspace / "dropped.py").write_text("dropped")
    keep_writer, keep_cp = await start(store, workspace)
    await new_turn(keep_writer, keep_cp, "keep")
    kept = (await keep_cp.before_write(["kept.py"]))[0]["blob"]
    await keep_writer.close()
    drop_writer, drop_cp = await start(store, workspace)
    await new_turn(drop_writer, drop_cp, "drop")
    dropped = (await drop_cp.before_write(["dropped.py"]))[0]["blob"]
    await drop_writer.close()
    young, _ = store.blobs.put(b"a checkpoint being written right now")
    stale_tmp = store.blobs.root / "ab" / ".tmp-left-by-a-crash"
    stale_tmp.parent.mkdir(exist_ok=True)
    stale_tmp.write_text("x")
    os.utime(stale_tmp, (1, 1))
    old = 1.0  # the epoch: older than any grace period
    os.utime(store.blobs.path(dropped), (old, old))

    await store.delete(workspace, drop_writer.session_id)
    report = await store.collect_garbage()
    assert store.blobs.exists(kept) and store.blobs.exists(young)
    assert not store.blobs.exists(dropped) and not stale_tmp.exists()
    assert report.deleted == 2


def test_a_changed_gitignore_is_seen(tmp_path, workspace, monkeypatch):
    from lsp_agent.store.checkpoints import GitIgnore

    monkeypatch.setattr(GitIgnore, "RECHECK_SECONDS", 0.0)
    (workspace / "out").mkdir()
    (workspace / "out" / "gen.js").write_text("x")
    rules, blobs = CaptureRules(workspace), BlobStore(tmp_path / "blobs")
    assert "skipped" not in capture(rules, blobs, "s", "out/gen.js")
    (workspace / ".gitignore").write_text("out/\n")
    assert capture(rules, blobs, "s", "out/gen.js")["skipped"] == "ignored by .gitignore"
    (workspace / ".gitignore").write_text("# nothing ignored\n")
    os.utime(workspace / ".gitignore", ns=(1, 1))  # a different mtime, whatever the clock
    assert "skipped" not in capture(rules, blobs, "s", "out/gen.js")
