"""The transcript writer: order, chain, file modes, errors that switch persistence off, the
lock against a second writer, the torn-tail repair and the redaction of secrets."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import stat
from pathlib import Path

import pytest

from lsp_agent.store import Redactor, SessionInUse, Store, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store import writer as writer_module
from lsp_agent.store.writer import WriterClosed, open_writer_blocking, repair_torn_tail
from tests.store.helpers import reply, text_prompt, tool_call, tool_result


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_entries_are_written_in_order_as_a_parent_chain(store: Store, workspace: Path):
    writer = await store.create(workspace)
    uuids = [writer.append(en.system("n", str(i))) for i in range(500)]
    await writer.close()

    written = lines(writer.path)
    assert written[0]["type"] == "session" and written[0]["formatVersion"] == en.FORMAT_VERSION
    assert written[0]["parentUuid"] is None
    body = written[1:]
    assert [e["uuid"] for e in body] == uuids
    assert [e["message"] for e in body] == [str(i) for i in range(500)]
    assert body[0]["parentUuid"] is None  # the header is outside the chain
    assert all(b["parentUuid"] == a["uuid"] for a, b in itertools.pairwise(body))
    assert {e["sessionId"] for e in written} == {writer.session_id}
    assert all(e["timestamp"].endswith("Z") for e in written)


async def test_files_and_folders_are_user_only(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(text_prompt("hello"))
    await writer.close()
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(writer.meta_path.stat().st_mode) == 0o600
    folder = writer.path.parent
    while folder != store.layout.root.parent:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent


async def test_index_entry_follows_the_transcript(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(en.model_change("claude-opus-4-5"))
    writer.append(text_prompt("  rename   the\nfunction " + "x" * 100))
    writer.append(en.usage("claude-opus-4-5", {"input_tokens": 5}, 0.25))
    writer.append(en.turn_end("end_turn", 1, {"input_tokens": 5}, 0.25))
    await writer.flush()
    meta = json.loads(writer.meta_path.read_text())
    assert meta["turns"] == 1 and meta["model"] == "claude-opus-4-5"
    assert meta["costUsd"] == 0.25
    assert meta["firstPrompt"].startswith("rename the function xxx")
    assert len(meta["firstPrompt"]) == en.TITLE_MAX
    assert meta["transcriptBytes"] == writer.path.stat().st_size
    await writer.close()


async def test_append_after_close_is_refused(store: Store, workspace: Path):
    writer = await store.create(workspace)
    await writer.close()
    with pytest.raises(WriterClosed):
        writer.append(text_prompt("late"))


async def test_a_second_writer_of_the_same_session_is_refused(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(text_prompt("one"))
    await writer.flush()
    with pytest.raises(SessionInUse):
        await store.resume(workspace, writer.session_id)
    await writer.close()
    _reader, again = await store.resume(workspace, writer.session_id)
    again.append(text_prompt("two"))
    await again.close()
    assert [t.prompt for t in load_transcript(writer.path).turns()] == ["one", "two"]


async def test_disk_full_turns_persistence_off_once_and_the_caller_goes_on(
        store: Store, workspace: Path, monkeypatch: pytest.MonkeyPatch):
    reports: list[str] = []
    writer = await store.create(workspace, on_error=reports.append)
    writer.append(text_prompt("before"))
    assert await writer.flush()

    real_write_all = writer_module.write_all

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_module, "write_all", full)
    for i in range(20):
        writer.append(reply(f"lost {i}"))
    assert await writer.flush() is False
    await asyncio.sleep(0)  # the report is delivered on the loop
    monkeypatch.setattr(writer_module, "write_all", real_write_all)
    writer.append(text_prompt("after"))  # no error, nothing written
    await writer.close()

    assert len(reports) == 1 and "No space left on device" in reports[0]
    assert not writer.persisting and writer.turns == 2  # in-memory state kept going
    assert [t.prompt for t in load_transcript(writer.path).turns()] == ["before"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
async def test_a_real_enospc_from_the_kernel(store: Store, workspace: Path):
    """/dev/full fails every write with ENOSPC: the transcript is a link to it."""
    writer = await store.create(workspace)
    await writer.close()
    writer.path.unlink()
    writer.path.symlink_to("/dev/full")
    reader_state = writer_module.WriterState(leaf=None, meta=en.new_meta("x", "", ""))
    reports: list[str] = []
    full = await writer_module.open_writer(writer.path, writer.session_id, state=reader_state,
                                           on_error=reports.append)
    full.append(text_prompt("hello"))
    assert await full.flush() is False
    await asyncio.sleep(0)
    await full.close()
    assert len(reports) == 1 and "No space left" in reports[0]


async def test_an_unusable_state_dir_is_reported_at_open(tmp_path: Path, workspace: Path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state dir should be")
    reports: list[str] = []
    store = Store(blocker, redactor=Redactor())
    writer = await store.create(workspace, on_error=reports.append)
    uid = writer.append(text_prompt("works anyway"))
    assert uid and writer.leaf == uid and not writer.persisting
    assert await writer.flush() is False
    await writer.close()
    assert len(reports) == 1 and "not saved" in reports[0]


def test_torn_tail_is_cut_before_appending(tmp_path: Path):
    path = tmp_path / "s.jsonl"
    whole = json.dumps({"uuid": "a", "type": "x"}) + "\n"
    path.write_text(whole + '{"uuid": "b", "ty')
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        assert repair_torn_tail(fd) == len(whole)
    finally:
        os.close(fd)
    assert path.read_text() == whole


def test_a_whole_last_line_missing_its_newline_is_kept(tmp_path: Path):
    path = tmp_path / "s.jsonl"
    line = json.dumps({"uuid": "a", "type": "x"})
    path.write_text(line)
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        repair_torn_tail(fd)
    finally:
        os.close(fd)
    assert path.read_text() == line + "\n"


async def test_resume_after_a_torn_line_appends_cleanly(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(text_prompt("first"))
    await writer.close()
    writer.path.write_bytes(writer.path.read_bytes() + b'{"uuid":"torn","type":"assis')
    reader, again = await store.resume(workspace, writer.session_id)
    assert any("torn" in w for w in reader.warnings)
    again.append(reply("answer"))
    await again.close()
    loaded = load_transcript(writer.path)
    assert loaded.warnings == []
    assert [m["role"] for m in loaded.messages()] == ["user", "assistant"]


async def test_rewind_starts_a_branch_and_keeps_every_entry(store: Store, workspace: Path):
    writer = await store.create(workspace)
    for i in range(1, 4):
        writer.append(text_prompt(f"prompt {i}"))
        writer.append(reply(f"answer {i}"))
    count_before = len(lines(writer.path)) if writer.path.exists() else 0
    writer.rewind(2)
    assert writer.turns == 1
    writer.append(text_prompt("prompt 2b"))
    writer.append(reply("answer 2b"))
    await writer.close()

    reader = load_transcript(writer.path)
    assert [t.prompt for t in reader.turns()] == ["prompt 1", "prompt 2b"]
    texts = [b["text"] for m in reader.messages() for b in m["content"]]
    assert texts == ["prompt 1", "answer 1", "prompt 2b", "answer 2b"]
    assert len(reader.entries) > count_before  # the old branch is still in the file
    assert sum(e.get("prompt") == "prompt 3" for e in reader.entries) == 1
    rewind = next(e for e in reader.entries if e["type"] == "rewind")
    answer_1 = next(e for e in reader.entries if e["type"] == "assistant"
                    and e["message"]["content"][0]["text"] == "answer 1")
    assert rewind["toTurn"] == 2 and rewind["parentUuid"] == answer_1["uuid"]
    assert json.loads(writer.meta_path.read_text())["turns"] == 2


async def test_rewind_to_a_missing_turn_is_an_error(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(text_prompt("only"))
    with pytest.raises(ValueError, match="no turn 2"):
        writer.rewind(2)
    await writer.close()


async def test_stop_hook_prompts_are_not_turns(store: Store, workspace: Path):
    writer = await store.create(workspace)
    writer.append(text_prompt("real"))
    writer.append(en.user_prompt("hook says go on", [{"type": "text", "text": "go on"}],
                                 origin="stop_hook"))
    await writer.close()
    assert writer.turns == 1
    assert [t.prompt for t in load_transcript(writer.path).turns()] == ["real"]


# -- secrets -------------------------------------------------------------------------------------

API_KEY = "sk-ant-api03-" + "A1b2C3d4" * 6
HOOK_TOKEN = "hook-token-value-123"


async def test_secrets_never_reach_the_transcript_or_the_index(tmp_path: Path, workspace: Path):
    redactor = Redactor.from_environment({"ANTHROPIC_API_KEY": API_KEY, "PATH": "/usr/bin",
                                          "DEBUG": "1"})
    redactor.add_env({"MY_HOOK_SECRET": HOOK_TOKEN}, None, {"SHORT": "abc"})
    store = Store(tmp_path / "state", redactor=redactor)
    writer = await store.create(workspace)
    writer.append(text_prompt(f"my key is {API_KEY} and the hook uses {HOOK_TOKEN}"))
    writer.append(tool_call("t1", "Bash"))
    writer.append(tool_result("t1", f"env:\nTOKEN={HOOK_TOKEN}\nKEY=\"{API_KEY}\"\nabc 1"))
    writer.append(reply("an unrelated sk-ant-" + "z" * 30 + " in text"))
    await writer.close()

    raw = writer.path.read_text() + writer.meta_path.read_text()
    assert API_KEY not in raw and HOOK_TOKEN not in raw and "sk-ant-zzz" not in raw
    assert "/usr/bin" not in raw  # PATH is not a secret name: never registered...
    reader = load_transcript(writer.path)
    assert reader.warnings == []  # ...and every line is still valid JSON
    result = reader.messages()[2]["content"][0]["content"]
    assert result == 'env:\nTOKEN=[REDACTED]\nKEY="[REDACTED]"\nabc 1'  # short values stay


def test_redaction_cannot_break_json_escapes():
    secret = "n12345678"  # also appears right after the backslash of an escaped newline
    redactor = Redactor([secret])
    line = writer_module.dumps_line({"text": "a\n12345678 b " + secret})
    cleaned = redactor.line(line)
    assert json.loads(cleaned) == {"text": "a\n12345678 b [REDACTED]"}


def test_secrets_with_quotes_are_found_in_their_escaped_form():
    secret = 'pa"ss\\word!42'
    redactor = Redactor([secret])
    line = writer_module.dumps_line({"v": f"x{secret}y"})
    assert json.loads(redactor.line(line)) == {"v": "x[REDACTED]y"}


def test_private_key_blocks_are_masked():
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc+/=\nxyz\n-----END RSA PRIVATE KEY-----"
    line = writer_module.dumps_line({"a": f"key:\n{block}\nend", "b": "kept"})
    assert json.loads(Redactor().line(line)) == {"a": "key:\n[REDACTED]\nend", "b": "kept"}


def test_blocking_open_creates_then_refuses_an_existing_session(tmp_path: Path):
    path = tmp_path / "p" / "s1.jsonl"
    first = open_writer_blocking(path, "s1", cwd="/x")
    first.close_blocking()
    with pytest.raises(FileExistsError):
        open_writer_blocking(path, "s1", cwd="/x")


async def test_common_fields_are_always_the_writers(store: Store, workspace: Path):
    writer = await store.create(workspace)
    first = writer.append(text_prompt("one"))
    second = writer.append({**reply("two"), "uuid": "forged", "parentUuid": None,
                            "sessionId": "other", "timestamp": "1999"})
    await writer.close()
    entry = lines(writer.path)[-1]
    assert (entry["uuid"], entry["parentUuid"], entry["sessionId"]) == (
        second, first, writer.session_id)
    assert list(entry)[:5] == ["uuid", "parentUuid", "sessionId", "timestamp", "type"]


def test_entry_ids_are_unique_uuid4_and_timestamps_iso():
    import uuid as uuid_module

    from lsp_agent.store.writer import new_id, now_iso

    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:500]:
        parsed = uuid_module.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid_module.RFC_4122
        assert str(parsed) == value
    assert now_iso(1764585668.8049) == "2025-12-01T10:41:08.804Z"
    assert now_iso(1764585669.0) == "2025-12-01T10:41:09.000Z"


def test_a_forked_process_does_not_repeat_ids():
    from lsp_agent.store.writer import new_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id != new_id()
