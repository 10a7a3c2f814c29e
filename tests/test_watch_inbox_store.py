"""The watcher's inbox on disk (sessions/watch_inbox_store.py, watch_inbox.py,
watch_restored.py): what is kept, bounds and retention, and a damaged file -- a clear warning,
the file set aside rather than overwritten, nothing lost elsewhere."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lsp_agent.sessions import watch_inbox_store as store_mod
from lsp_agent.sessions.watch_inbox import Inbox
from lsp_agent.sessions.watch_inbox_store import (
    MAX_ITEMS,
    MAX_PROPOSAL_BYTES,
    InboxStore,
    Record,
    SavedFile,
)
from lsp_agent.sessions.watch_restored import changed_since
from lsp_agent.types.watch import InboxItem, InboxProposal


def item(n: int, status: str = "pending", created: float | None = None) -> InboxItem:
    return InboxItem(id=f"i{n}", kind="test_failure", title=f"t{n}", detail="d",
                     session_id=f"s{n}", proposal_ids=[f"p{n}"],
                     proposals=[InboxProposal(id=f"p{n}", status=status)],  # type: ignore[arg-type]
                     created_at=created or time.time(), workspace_uri="file:///w")


def saved(path: Path, old: str | None, new: str) -> SavedFile:
    return SavedFile(str(path), str(path.resolve()), old, new)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "w"
    folder.mkdir()
    return folder


def test_records_come_back_as_they_were_kept(tmp_path, workspace):
    store = InboxStore(tmp_path / "state", workspace)
    calc = workspace / "calc.py"
    record = Record(item(1), updated_at=time.time(), failure="AssertionError: -1",
                    failure_key="k1", contents={"p1": [saved(calc, "a - b", "a + b")]})
    gone = Record(item(2, "accepted"), dismissed=True, updated_at=time.time())
    store.save([record, gone])
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    [back, back_gone], warnings = InboxStore(tmp_path / "state", workspace).load()
    assert warnings == []
    assert back.item == record.item and back.failure == "AssertionError: -1"
    assert back.failure_key == "k1" and back.contents == record.contents
    assert back_gone.dismissed and back_gone.item.proposals[0].status == "accepted"


@pytest.mark.parametrize("damage", [
    b"{\"version\": 1, \"items\": [{\"item\": ",  # cut short (a partial write of another tool)
    b"\x00\x01 not json",
    b"[1, 2, 3]",
    b"{\"version\": 99, \"items\": []}",
])
def test_a_damaged_file_is_set_aside_with_a_warning_and_never_overwritten(
        tmp_path, workspace, damage):
    other = tmp_path / "other"
    other.mkdir()
    InboxStore(tmp_path / "state", other).save([Record(item(9), updated_at=time.time())])
    store = InboxStore(tmp_path / "state", workspace)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(damage)

    records, [warning] = store.load()
    assert records == []
    assert str(store.path) in warning and "kept as inbox.json.bad-" in warning
    [aside] = store.path.parent.glob("inbox.json.bad-*")
    assert aside.read_bytes() == damage  # nothing lost
    assert not store.path.exists()
    store.save([Record(item(1), updated_at=time.time())])  # a fresh file beside it
    assert aside.read_bytes() == damage
    # Another workspace's inbox is untouched.
    [kept], warnings = InboxStore(tmp_path / "state", other).load()
    assert kept.item.id == "i9" and warnings == []


def test_one_bad_item_is_left_out_the_others_load_and_the_file_is_copied(tmp_path, workspace):
    store = InboxStore(tmp_path / "state", workspace)
    store.save([Record(item(1), updated_at=time.time()), Record(item(2), updated_at=time.time())])
    data = json.loads(store.path.read_text())
    data["items"][0]["item"]["kind"] = "not-a-kind"
    store.path.write_text(json.dumps(data))

    [good], warnings = store.load()
    assert good.item.id == "i2"
    assert any("inbox item 1 is not valid" in w for w in warnings)
    assert any("1 of its items were left out" in w for w in warnings)
    [aside] = store.path.parent.glob("inbox.json.bad-*")
    assert json.loads(aside.read_text()) == data  # the bad item is still on disk


def test_a_file_that_cannot_be_set_aside_is_not_overwritten(tmp_path, workspace, monkeypatch):
    store = InboxStore(tmp_path / "state", workspace)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"garbage")

    def refuse(*_args: object) -> None:
        raise OSError("read-only")

    monkeypatch.setattr(store_mod.os, "replace", refuse)
    _, [warning] = store.load()
    assert "could not be set aside" in warning
    store.save([Record(item(1), updated_at=time.time())])
    assert store.path.read_bytes() == b"garbage"


def test_retention_drops_old_records_and_the_settled_first_over_the_count(tmp_path, workspace):
    now = time.time()
    old = Record(item(0), updated_at=now - 31 * 86400)
    settled = [Record(item(n, "accepted"), updated_at=now - 100 + n) for n in range(1, 6)]
    waiting = [Record(item(n), updated_at=now - 1000 + n) for n in range(6, MAX_ITEMS + 6)]
    store = InboxStore(tmp_path / "state", workspace)
    store.save([old, *settled, *waiting], now=now)
    kept, _ = store.load(now=now)
    ids = {r.item.id for r in kept}
    assert len(kept) == MAX_ITEMS and "i0" not in ids
    assert not ids & {r.item.id for r in settled}  # pending ones outrank resolved ones
    assert ids == {r.item.id for r in waiting}


def test_a_proposal_too_large_to_keep_comes_back_stale(tmp_path, workspace):
    calc = workspace / "calc.py"
    calc.write_text("x")
    sent: list[dict[str, object]] = []
    inbox = Inbox(sent.append, lambda: tmp_path / "state")
    it = inbox.new_item("test_failure", workspace, "t", "d", session_id="s")
    it.proposal_ids.append("p1")
    inbox.set_status("p1", "pending")
    inbox.keep_contents(it, "p1", [saved(calc, "x", "y" * (MAX_PROPOSAL_BYTES + 1))])
    inbox.post(it)
    [record], _ = InboxStore(tmp_path / "state", workspace).load()
    assert record.contents == {"p1": None}
    assert changed_since(record.contents["p1"]) == (
        "its texts were not kept across a restart (too large, or holding a secret)")


def test_a_proposal_whose_texts_hold_a_secret_is_not_kept(tmp_path, workspace, monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-1234567890-secret")
    config = workspace / "config.py"
    config.write_text("TOKEN = ''\n")
    inbox = Inbox(lambda _: None, lambda: tmp_path / "state")
    it = inbox.new_item("test_failure", workspace, "t", "d", session_id="s")
    it.proposal_ids += ["p1", "p2"]
    for pid in ("p1", "p2"):
        inbox.set_status(pid, "pending")
    # One file holds our own secret, the other a well-known token shape; the third is plain.
    secret = "TOKEN = 'tok-1234567890-secret'\n"
    inbox.keep_contents(it, "p1", [saved(config, "TOKEN = ''\n", secret)])
    inbox.keep_contents(it, "p2", [saved(config, "TOKEN = ''\n", "KEY = 'ghp_" + "a" * 36 + "'\n")])
    it.proposal_ids.append("p3")
    inbox.set_status("p3", "pending")
    inbox.keep_contents(it, "p3", [saved(config, "TOKEN = ''\n", "TOKEN = None\n")])
    inbox.post(it)
    stored = (tmp_path / "state" / "watch").rglob("inbox.json")
    text = next(stored).read_text()
    assert "tok-1234567890-secret" not in text and "ghp_" not in text
    [record], _ = InboxStore(tmp_path / "state", workspace).load()
    assert record.contents is not None
    assert record.contents["p1"] is None and record.contents["p2"] is None
    assert record.contents["p3"] == [saved(config, "TOKEN = ''\n", "TOKEN = None\n")]


def test_what_the_inbox_keeps_of_a_failure_has_its_secrets_masked(tmp_path, workspace,
                                                                   monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-1234567890-secret")
    inbox = Inbox(lambda _: None, lambda: tmp_path / "state")
    it = inbox.new_item("test_failure", workspace, "t", "d")
    inbox.note_failure(it, "connecting with tok-1234567890-secret failed\n" + "x" * 10_000, "k")
    inbox.post(it)
    [record], _ = InboxStore(tmp_path / "state", workspace).load()
    assert "tok-1234567890-secret" not in (record.failure or "")
    assert "[REDACTED]" not in (record.failure or "")  # capped: only the tail is kept
    assert len(record.failure or "") == store_mod.MAX_FAILURE_CHARS
    inbox.note_failure(it, "connecting with tok-1234567890-secret failed", "k")
    inbox.post(it)
    [record], _ = InboxStore(tmp_path / "state", workspace).load()
    assert record.failure == "connecting with [REDACTED] failed"


def test_a_dismissed_item_is_kept_hidden_and_its_proposal_texts_dropped(tmp_path, workspace):
    calc = workspace / "calc.py"
    calc.write_text("a - b")
    inbox = Inbox(lambda _: None, lambda: tmp_path / "state")
    it = inbox.new_item("test_failure", workspace, "t", "d", session_id="s")
    it.proposal_ids.append("p1")
    inbox.set_status("p1", "pending")
    inbox.keep_contents(it, "p1", [saved(calc, "a - b", "a + b")])
    inbox.post(it)
    inbox.remove(it.id)
    [record], _ = InboxStore(tmp_path / "state", workspace).load()
    assert record.dismissed and not record.contents

    again = Inbox(lambda _: None, lambda: tmp_path / "state")
    again.restore([record], {})
    assert again.items == [] and not again.restored_contents("p1")


def test_changed_since_compares_the_disk_with_what_the_fix_was_prepared_against(workspace):
    calc = workspace / "calc.py"
    calc.write_text("a - b")
    new = workspace / "new.py"
    assert changed_since([saved(calc, "a - b", "a + b"), saved(new, None, "x")]) is None
    calc.write_text("a - b  # typed")
    assert changed_since([saved(calc, "a - b", "a + b")]) == \
        "calc.py changed since the fix was prepared"
    new.write_text("")  # created meanwhile
    assert changed_since([saved(new, None, "x")]) == "new.py changed since the fix was prepared"


def test_a_file_that_now_leads_elsewhere_is_stale(workspace, tmp_path):
    calc = workspace / "calc.py"
    calc.write_text("a - b")
    record = saved(calc, "a - b", "a + b")
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text("a - b")
    calc.unlink()
    os.symlink(elsewhere, calc)
    assert changed_since([record]) == "calc.py now leads elsewhere"
