"""Sessions on disk: listing, the index entry, rename, delete, fork and prompt history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_agent.store import SessionInUse, SessionNotFound, Store, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store.catalog import PROMPT_HISTORY_KEEP
from lsp_agent.store.layout import workspace_slug
from tests.store.helpers import reply, text_prompt


async def session(store: Store, workspace: Path, prompts: list[str], *, model: str = "m1",
                  cost: float = 0.0, title: str | None = None) -> str:
    writer = await store.create(workspace)
    writer.append(en.model_change(model))
    for prompt in prompts:
        writer.append(text_prompt(prompt))
        writer.append(reply(f"re: {prompt}", model))
        writer.append(en.usage(model, {"output_tokens": 1}, cost))
        writer.append(en.turn_end("end_turn", 1, {}, cost))
    if title:
        writer.set_title(title)
    await writer.close()
    return writer.session_id


def test_workspace_slugs_follow_claude_code_and_stay_apart(tmp_path: Path):
    a, b = tmp_path / "b.c", tmp_path / "b-c"
    assert workspace_slug(a) != workspace_slug(b)  # Claude Code's bare rule merges these
    claude_code_rule = str(a.resolve()).replace("/", "-").replace(".", "-")
    assert workspace_slug(a).startswith(claude_code_rule + "-")
    assert len(workspace_slug(tmp_path / ("x" * 300))) < 100


async def test_listing_is_newest_first_with_what_a_picker_shows(store, workspace):
    (workspace / ".git").mkdir()
    (workspace / ".git" / "HEAD").write_text("ref: refs/heads/feature/x\n")
    first = await session(store, workspace, ["one", "two"], model="m1", cost=0.5)
    second = await session(store, workspace, ["please refactor " * 20], model="m2", cost=0.25)
    third = await session(store, workspace, ["three"], title="My title")

    page = await store.list_sessions(workspace)
    assert [s.session_id for s in page.items] == [third, second, first]
    by_id = {s.session_id: s for s in page.items}
    assert by_id[first].turns == 2 and by_id[first].cost_usd == 1.0
    assert by_id[first].model == "m1" and by_id[first].title == "one"
    assert by_id[first].git_branch == "feature/x"
    assert by_id[second].title.startswith("please refactor please") and len(
        by_id[second].title) == en.TITLE_MAX
    assert by_id[third].title == "My title"
    assert by_id[first].created_at <= by_id[first].updated_at
    assert not any(s.live for s in page.items)
    assert await store.latest(workspace) == third


async def test_listing_is_paginated(store, workspace):
    ids = [await session(store, workspace, [f"p{i}"]) for i in range(7)]
    seen = []
    offset = 0
    while offset is not None:
        page = await store.list_sessions(workspace, offset=offset, limit=3)
        assert page.total == 7
        seen += [s.session_id for s in page.items]
        offset = page.next_offset
    assert seen == ids[::-1]


async def test_listing_other_workspaces_is_separate(store, workspace, tmp_path):
    await session(store, workspace, ["here"])
    other = tmp_path / "other"
    other.mkdir()
    assert (await store.list_sessions(other)).total == 0


async def test_a_live_session_is_listed_as_live(store, workspace):
    writer = await store.create(workspace)
    writer.append(text_prompt("running"))
    await writer.flush()
    page = await store.list_sessions(workspace)
    assert page.items[0].live and page.items[0].turns == 1
    await writer.close()


async def test_a_missing_or_stale_index_entry_is_rebuilt(store, workspace):
    sid = await session(store, workspace, ["one"], cost=0.5)
    meta = store.layout.meta(workspace, sid)
    meta.unlink()
    page = await store.list_sessions(workspace)
    assert page.items[0].turns == 1 and page.items[0].cost_usd == 0.5
    assert json.loads(meta.read_text())["turns"] == 1  # written back

    # A crash after a line and before the index update: the transcript is longer.
    transcript = store.layout.transcript(workspace, sid)
    reader = load_transcript(transcript)
    extra = {"uuid": "u-extra", "parentUuid": reader.leaf, "sessionId": sid,
             "timestamp": "2099-01-01T00:00:00.000Z", **text_prompt("two")}
    with transcript.open("a") as f:
        f.write(json.dumps(extra) + "\n")
    item = (await store.list_sessions(workspace)).items[0]
    assert item.turns == 2 and item.updated_at == "2099-01-01T00:00:00.000Z"


async def test_rename_a_closed_session_and_refuse_a_live_one(store, workspace):
    sid = await session(store, workspace, ["one"])
    await store.rename(workspace, sid, "  Better\n name ")
    assert (await store.list_sessions(workspace)).items[0].title == "Better name"
    reader = await store.load(workspace, sid)
    assert reader.title() == "Better name" and reader.warnings == []

    _, writer = await store.resume(workspace, sid)
    with pytest.raises(SessionInUse):
        await store.rename(workspace, sid, "nope")
    await writer.close()


async def test_delete_removes_the_files_unless_open(store, workspace):
    sid = await session(store, workspace, ["one"])
    folder = store.layout.session_dir(workspace, sid)
    folder.mkdir()
    (folder / "tool-results").mkdir()
    (folder / "tool-results" / "x.txt").write_text("big output")
    keep = await session(store, workspace, ["two"])

    _, writer = await store.resume(workspace, sid)
    with pytest.raises(SessionInUse):
        await store.delete(workspace, sid)
    await writer.close()
    await store.delete(workspace, sid)
    assert not store.layout.transcript(workspace, sid).exists()
    assert not store.layout.meta(workspace, sid).exists()
    assert not folder.exists()
    assert [s.session_id for s in (await store.list_sessions(workspace)).items] == [keep]
    with pytest.raises(SessionNotFound):
        await store.load(workspace, sid)


async def test_fork_copies_the_branch_before_a_turn(store, workspace):
    writer = await store.create(workspace)
    writer.append(en.mode_change("plan"))
    for i in range(1, 4):
        writer.append(text_prompt(f"p{i}"))
        writer.append(reply(f"r{i}"))
        writer.append(en.usage("m", {"output_tokens": 1}, 1.0))
        writer.append(en.turn_end("end_turn", 1, {}, 1.0))
    writer.rewind(3)
    writer.append(text_prompt("p3b"))
    await writer.close()

    new_id = await store.fork(workspace, writer.session_id, before_turn=3)
    fork = await store.load(workspace, new_id)
    assert fork.warnings == []
    assert fork.header and fork.header["forkedFrom"] == {"sessionId": writer.session_id,
                                                         "beforeTurn": 3}
    assert [t.prompt for t in fork.turns()] == ["p1", "p2"]
    assert [b["text"] for m in fork.messages() for b in m["content"]] == ["p1", "r1", "p2", "r2"]
    assert fork.mode() == "plan"
    assert fork.cost().usd == 0.0  # the original paid for those requests
    assert {e["sessionId"] for e in fork.entries} == {new_id}
    # The copy is one linear chain.
    assert [e["parentUuid"] for e in fork.chain[1:]] == [e["uuid"] for e in fork.chain[:-1]]
    listed = {s.session_id: s for s in (await store.list_sessions(workspace)).items}
    assert listed[new_id].turns == 2 and listed[new_id].forked_from["beforeTurn"] == 3

    whole = await store.fork(workspace, writer.session_id, before_turn=4)
    assert [t.prompt for t in (await store.load(workspace, whole)).turns()] == ["p1", "p2",
                                                                               "p3b"]
    with pytest.raises(ValueError, match="cannot fork before turn 5"):
        await store.fork(workspace, writer.session_id, before_turn=5)


async def test_a_forked_session_can_be_resumed(store, workspace):
    sid = await session(store, workspace, ["a", "b"])
    new_id = await store.fork(workspace, sid, before_turn=2)
    _, writer = await store.resume(workspace, new_id)
    writer.append(text_prompt("c"))
    await writer.close()
    assert [t.prompt for t in (await store.load(workspace, new_id)).turns()] == ["a", "c"]


async def test_prompt_history_is_newest_first_and_deduplicated(store, workspace):
    for prompt in ["fix the test", "add docs", "fix the test", "   ", "rename x"]:
        await store.add_prompt(workspace, prompt, "s1")
    assert await store.prompt_history(workspace) == ["rename x", "fix the test", "add docs"]
    assert await store.prompt_history(workspace, limit=1) == ["rename x"]


async def test_prompt_history_is_compacted_when_large(store, workspace, monkeypatch):
    from lsp_agent.store import catalog

    monkeypatch.setattr(catalog, "PROMPT_HISTORY_COMPACT_BYTES", 20_000)
    compactions = []
    real = Store._compact_prompts
    monkeypatch.setattr(Store, "_compact_prompts",
                        lambda self, path: (compactions.append(1), real(self, path)))
    distinct = PROMPT_HISTORY_KEEP + 100
    for i in range(PROMPT_HISTORY_KEEP + 200):
        store.add_prompt_blocking(workspace, f"prompt {i % distinct}", "s")
    assert store.layout.prompts(workspace).stat().st_size <= 20_000 + 200
    assert 1 <= len(compactions) < 40  # rare: each keeps half the threshold at most
    history = store.prompt_history_blocking(workspace, limit=5000)
    assert history[0] == f"prompt {(PROMPT_HISTORY_KEEP + 199) % distinct}"
    assert len(history) == len(set(history)) > 100


async def test_prompt_history_skips_a_torn_line(store, workspace):
    await store.add_prompt(workspace, "kept", "s")
    with store.layout.prompts(workspace).open("a") as f:
        f.write('{"prompt": "tor')
    assert await store.prompt_history(workspace) == ["kept"]


async def test_invalid_session_ids_never_become_paths(store, workspace):
    for bad in ["../x", "a/b", "", ".hidden", "x" * 100]:
        with pytest.raises(ValueError):
            await store.load(workspace, bad)


async def test_prompt_history_in_an_unusable_state_dir_is_skipped(tmp_path, workspace):
    from lsp_agent.store import Redactor

    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    store = Store(blocker, redactor=Redactor())
    assert await store.add_prompt(workspace, "hello", "s") is False
    assert await store.prompt_history(workspace) == []
    assert (await store.list_sessions(workspace)).total == 0
