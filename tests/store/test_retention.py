"""Retention: the pure plan (ages, size budget, shared blobs, sessions never deleted) and the
policy applied to a real state dir."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from lsp_agent.store import CaptureRules, Checkpointer, RetentionPolicy, Store
from lsp_agent.store import entries as en
from lsp_agent.store.retention import DAY, StoredSession, plan_retention, stored_size
from tests.store.helpers import text_prompt

NOW = 1_000_000_000.0


def stored(name: str, age_days: float, size: int = 100, blobs: tuple[str, ...] = (),
           live: bool = False) -> StoredSession:
    return StoredSession(Path(f"/s/{name}.jsonl"), name, NOW - age_days * DAY, size,
                         frozenset(blobs), live)


def names(sessions: list[StoredSession]) -> set[str]:
    return {s.session_id for s in sessions}


def test_old_sessions_go_first():
    sessions = [stored("new", 1), stored("month", 31), stored("old", 400)]
    assert names(plan_retention(sessions, {}, RetentionPolicy(), NOW)) == {"month", "old"}


def test_open_and_kept_sessions_are_never_deleted():
    sessions = [stored("live", 400, live=True), stored("kept", 400), stored("old", 400)]
    doomed = plan_retention(sessions, {}, RetentionPolicy(), NOW,
                            keep=frozenset({Path("/s/kept.jsonl")}))
    assert names(doomed) == {"old"}


def test_over_budget_the_least_recently_updated_go():
    sessions = [stored(f"s{i}", age_days=i, size=100) for i in range(10)]
    doomed = plan_retention(sessions, {}, RetentionPolicy(max_total_bytes=500), NOW)
    assert names(doomed) == {"s5", "s6", "s7", "s8", "s9"}


def test_a_shared_blob_is_freed_with_the_last_session_using_it():
    sizes = {"shared": 1000, "own": 500}
    sessions = [stored("a", 1, 10, ("shared",)), stored("b", 2, 10, ("shared", "own")),
                stored("c", 3, 10, ("shared",))]
    # Deleting c frees nothing but its 10 bytes; b frees 510; then we are under 1100.
    doomed = plan_retention(sessions, sizes, RetentionPolicy(max_total_bytes=1100), NOW)
    assert names(doomed) == {"b", "c"}
    assert stored_size(sizes, [sessions[0]]) == 1010


@pytest.mark.parametrize("seed", range(30))
def test_plan_properties(seed: int):
    rng = random.Random(seed)
    blob_names = [f"b{i}" for i in range(8)]
    sizes = {b: rng.randint(1, 500) for b in blob_names}
    sessions = [stored(f"s{i}", rng.uniform(0, 60), rng.randint(1, 300),
                       tuple(rng.sample(blob_names, rng.randint(0, 3))),
                       live=rng.random() < 0.15) for i in range(rng.randint(0, 15))]
    policy = RetentionPolicy(max_age_days=30, max_total_bytes=rng.randint(0, 3000))
    doomed = plan_retention(sessions, sizes, policy, NOW)
    kept = [s for s in sessions if s not in doomed]

    assert not any(s.live for s in doomed)
    assert all(NOW - s.updated <= 30 * DAY for s in kept if not s.live)
    deletable_kept = [s for s in kept if not s.live]
    if stored_size(sizes, kept) > policy.max_total_bytes:
        assert deletable_kept == []  # over budget only when nothing more may go
    # Size-based deletions are oldest first: no kept deletable session is older than a
    # session deleted for size.
    for_size = [s for s in doomed if NOW - s.updated <= 30 * DAY]
    if for_size and deletable_kept:
        assert min(s.updated for s in deletable_kept) >= max(s.updated for s in for_size)


async def test_retention_on_disk_deletes_sessions_with_their_blobs(tmp_path, workspace):
    store = Store(tmp_path / "state", policy=RetentionPolicy(max_age_days=30))
    for name in ("old.py", "recent.py"):
        (workspace / name).write_text(f"content of {name}\n" * 50)

    async def session_with_blob(file: str) -> tuple[str, str]:
        writer = await store.create(workspace)
        cp = Checkpointer(CaptureRules(workspace), store.blobs, writer.append)
        cp.begin_turn(writer.append(text_prompt(file)))
        blob = (await cp.before_write([file]))[0]["blob"]
        await writer.close()
        return writer.session_id, blob

    old_id, old_blob = await session_with_blob("old.py")
    recent_id, recent_blob = await session_with_blob("recent.py")
    live = await store.create(workspace)
    live.append(text_prompt("still running"))
    await live.flush()
    meta_path = store.layout.meta(workspace, old_id)
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "updatedAt": "2000-01-01T00:00:00.000Z"}))

    report = await store.apply_retention()
    assert report.deleted == [str(store.layout.transcript(workspace, old_id))]
    assert not store.layout.transcript(workspace, old_id).exists()
    listed = {s.session_id for s in (await store.list_sessions(workspace)).items}
    assert listed == {recent_id, live.session_id}
    assert store.blobs.exists(recent_blob)
    # The old blob is younger than the grace period (written seconds ago): kept for now...
    assert store.blobs.exists(old_blob)
    # ...and collected once the grace period has passed.
    assert (await store.apply_retention()).deleted == []
    gc = await store.collect_garbage(grace_seconds=0)
    assert gc.deleted == 1 and not store.blobs.exists(old_blob)
    assert store.blobs.exists(recent_blob)
    await live.close()


async def test_size_budget_on_disk_keeps_the_open_session(tmp_path, workspace):
    store = Store(tmp_path / "state", policy=RetentionPolicy(max_total_bytes=1))
    writer = await store.create(workspace)
    writer.append(en.system("x", "y" * 1000))
    await writer.flush()
    closed = await store.create(workspace)
    closed.append(text_prompt("done"))
    await closed.close()
    report = await store.apply_retention()
    assert report.deleted == [str(closed.path)] and report.total_bytes_after > 0
    assert writer.path.exists()
    await writer.close()


async def test_retention_at_start_runs_at_most_twice_a_day_per_policy(tmp_path, workspace):
    """A server start applies retention only when due: reading every transcript at each start of
    each editor window would cost every user with many sessions."""
    from lsp_agent.store.catalog import RETENTION_INTERVAL_S

    state = tmp_path / "state"
    store = Store(state, policy=RetentionPolicy(max_age_days=30))
    closed = await store.create(workspace)
    closed.append(text_prompt("done"))
    await closed.close()
    now = time.time()
    assert (await store.apply_retention_if_due(now=now)).deleted == []  # type: ignore[union-attr]
    # Another server, soon after, same policy: not due (even though this session is now old).
    later = Store(state, policy=RetentionPolicy(max_age_days=30))
    assert await later.apply_retention_if_due(now=now + 60) is None
    # A different policy is due at once; so is the same one after the interval.
    stricter = Store(state, policy=RetentionPolicy(max_age_days=1 / 86400))
    report = await stricter.apply_retention_if_due(now=now + 60)
    assert report is not None and report.deleted == [str(closed.path)]
    again = Store(state, policy=RetentionPolicy(max_age_days=30))
    assert await again.apply_retention_if_due(now=now + 120) is not None  # policy changed back
    assert await again.apply_retention_if_due(now=now + 180) is None
    assert await again.apply_retention_if_due(now=now + 120 + RETENTION_INTERVAL_S) is not None
    (state / "retention.json").write_text("not json")
    assert await again.apply_retention_if_due(now=now + 200) is not None  # a broken marker
