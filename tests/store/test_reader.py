"""Reading transcripts back: the model's view after compactions, repairs after a crash,
damaged lines, newer formats, paged history and the session's state."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lsp_agent.store import Store, TranscriptVersionError, load_transcript
from lsp_agent.store import entries as en
from lsp_agent.store.reader import INTERRUPTED, ORPHAN_RESULT
from tests.store.helpers import reply, text_prompt, tool_call, tool_result


async def write(store: Store, workspace: Path, items: list[en.Entry]):
    writer = await store.create(workspace)
    uuids = [writer.append(item) for item in items]
    await writer.close()
    return writer.path, uuids


def texts(messages: list[dict]) -> list[str]:
    out = []
    for m in messages:
        for b in m["content"]:
            out.append(b.get("text") or b.get("content") or b.get("id") or b["type"])
    return out


async def test_messages_rebuild_the_conversation_with_tool_rounds(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("fix"), tool_call("t1"), tool_result("t1", "file text"),
        reply("fixed"), en.usage("m", {"input_tokens": 1}, 0.0), text_prompt("thanks"),
        reply("welcome")])
    messages = load_transcript(path).messages()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user",
                                             "assistant"]
    assert texts(messages) == ["fix", "t1", "file text", "fixed", "thanks", "welcome"]


async def test_after_a_summary_only_the_boundary_and_what_follows_count(store, workspace):
    summary_history = [{"role": "user", "content": [{"type": "text", "text": "SUMMARY"}]}]
    path, _ = await write(store, workspace, [
        text_prompt("old prompt"), reply("old answer"),
        en.compact_boundary(strategy="summary", trigger="auto", tokens_before=900,
                            tokens_after=100, summary="SUMMARY", messages=summary_history),
        reply("after"), text_prompt("next"), reply("done")])
    reader = load_transcript(path)
    assert texts(reader.messages()) == ["SUMMARY", "after", "next", "done"]
    # The display history still has everything.
    shown = [e["type"] for e in reader.history(limit=100).items]
    assert shown.count("user") == 2 and "compact_boundary" in shown


async def test_cleared_tool_results_stay_cleared(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("go"), tool_call("t1"), tool_result("t1", "big output one"),
        tool_call("t2"), tool_result("t2", "big output two"),
        en.compact_boundary(strategy="clear_tool_results", trigger="auto", tokens_before=10,
                            tokens_after=5, cleared=["t1"], placeholder="[cleared]"),
        reply("ok")])
    assert texts(load_transcript(path).messages()) == [
        "go", "t1", "[cleared]", "t2", "big output two", "ok"]


async def test_a_crash_mid_turn_leaves_a_history_the_api_accepts(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("go"),
        en.assistant([{"type": "text", "text": "running"},
                      {"type": "tool_use", "id": "a", "name": "Bash", "input": {}},
                      {"type": "tool_use", "id": "b", "name": "Read", "input": {}}], "m"),
        tool_result("a", "only a finished")])
    messages = load_transcript(path).messages()
    last = messages[-1]["content"]
    assert [(b["tool_use_id"], b["content"]) for b in last] == [
        ("b", INTERRUPTED), ("a", "only a finished")]
    assert last[0]["is_error"] is True


async def test_a_prompt_after_unanswered_tool_calls_gets_their_results_first(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("go"), tool_call("t1"), text_prompt("are you there?")])
    messages = load_transcript(path).messages()
    assert messages[-1]["content"][0]["tool_use_id"] == "t1"
    assert messages[-1]["content"][1]["text"] == "are you there?"


async def test_results_without_their_call_become_text(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("go"), reply("no tools"), tool_result("ghost", "stray")])
    messages = load_transcript(path).messages()
    assert messages[-1]["content"] == [{"type": "text", "text": ORPHAN_RESULT}]


async def test_torn_and_damaged_lines_are_skipped_with_warnings(store, workspace):
    path, uuids = await write(store, workspace, [text_prompt("a"), reply("b"), reply("c")])
    raw = path.read_bytes().splitlines(keepends=True)
    raw[2] = b"this is not json\n"  # the line of reply "b"
    path.write_bytes(b"".join(raw) + b'{"uuid": "x", "type": "assist')
    reader = load_transcript(path)
    assert any("torn last line" in w for w in reader.warnings)
    assert any("line 3" in w for w in reader.warnings)
    assert any("missing" in w for w in reader.warnings)  # reply "c" lost its parent
    assert [e["uuid"] for e in reader.entries[1:]] == [uuids[0], uuids[2]]
    assert texts(reader.messages()) == ["a", "c"]  # the chain bridges the damaged line


@pytest.mark.parametrize("seed", range(3))
async def test_any_cut_of_the_file_loads_as_a_prefix(store, workspace, seed):
    rng = random.Random(seed)
    items = [text_prompt("p" * rng.randint(1, 300)) if i % 3 == 0 else
             reply("r" * rng.randint(1, 3000)) for i in range(30)]
    path, uuids = await write(store, workspace, items)
    data = path.read_bytes()
    for cut in [*sorted(rng.sample(range(len(data) + 1), 60)), len(data)]:
        path.write_bytes(data[:cut])
        reader = load_transcript(path)
        got = [e["uuid"] for e in reader.entries if e["type"] != "session"]
        assert got == uuids[: len(got)]
        assert len(reader.warnings) <= 1 + (cut < 300)  # torn line (+ header missing)
        reader.messages()  # never raises


async def test_a_newer_format_is_a_clear_error(store, workspace):
    path, _ = await write(store, workspace, [text_prompt("hi")])
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    head["formatVersion"] = en.FORMAT_VERSION + 1
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    with pytest.raises(TranscriptVersionError, match=r"newer lsp-agent.*Update lsp-agent"):
        load_transcript(path)
    page = await store.list_sessions(workspace)
    assert page.items[0].error and "newer" in page.items[0].error


async def test_history_pages_go_backwards_and_cover_everything_once(store, workspace):
    items = []
    for i in range(23):
        items += [text_prompt(f"p{i}"), en.usage("m", {}, 0.0), reply(f"r{i}")]
    path, _ = await write(store, workspace, items)
    reader = load_transcript(path)
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = reader.history(before=before, limit=10)
        pages += 1
        seen += [e.get("prompt") or e["message"]["content"][0]["text"] for e in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    expected = [x for i in range(23) for x in (f"p{i}", f"r{i}")][::-1]
    assert seen == expected and pages == 5
    with pytest.raises(KeyError):
        reader.history(before="not-a-uuid")


async def test_state_todos_mode_model_cost_and_pending_proposals(store, workspace):
    writer = await store.create(workspace)
    writer.append(en.mode_change("plan"))
    writer.append(text_prompt("one"))
    writer.append(en.todos([{"content": "a", "status": "pending"}]))
    writer.append(en.usage("claude-a", {"input_tokens": 10, "output_tokens": 2}, 0.5))
    writer.append(en.proposal("p1", "t1", [{"path": "a.py", "isNew": False, "diff": "-x\n+y"}]))
    writer.append(en.proposal("p2", "t2", [{"path": "b.py", "isNew": True}]))
    writer.append(en.proposal_decision("p1", "accepted", accepted=["h1"]))
    writer.append(text_prompt("two"))
    writer.append(en.todos([{"content": "b", "status": "in_progress"}]))
    writer.append(en.usage("claude-b", {"input_tokens": 1}, 0.25))
    writer.rewind(2)  # the second turn is abandoned; its cost was still paid
    writer.append(en.mode_change("acceptEdits"))
    writer.append(en.model_change("claude-c"))
    await writer.close()

    reader = load_transcript(writer.path)
    assert reader.todos() == [{"content": "a", "status": "pending"}]
    assert reader.mode() == "acceptEdits" and reader.model() == "claude-c"
    cost = reader.cost()
    assert cost.usd == 0.75
    assert cost.by_model["claude-a"]["usage"] == {"input_tokens": 10, "output_tokens": 2}
    assert [p["proposalId"] for p in reader.pending_proposals()] == ["p2"]


async def test_cost_comes_from_the_last_turn_end_plus_later_requests(store, workspace):
    writer = await store.create(workspace)
    writer.append(text_prompt("one"))
    writer.append(en.usage("a", {"input_tokens": 10}, 1.0))
    writer.append(en.usage("b", {"input_tokens": 1}, 0.5))
    writer.append(en.turn_end("end_turn", 2, {}, 1.5))
    writer.append(text_prompt("two"))
    writer.append(en.usage("a", {"input_tokens": 5}, 0.25))  # the turn crashed: no turn end
    await writer.close()
    reader = load_transcript(writer.path)
    turn_end = next(e for e in reader.entries if e["type"] == "turn_end")
    assert turn_end["sessionCost"]["usd"] == 1.5
    cost = reader.cost()
    assert cost.usd == 1.75
    assert cost.by_model["a"] == {"usage": {"input_tokens": 15}, "usd": 1.25}

    # Resuming carries the running total on.
    _, again = await store.resume(workspace, writer.session_id)
    again.append(en.usage("b", {"input_tokens": 1}, 0.5))
    again.append(en.turn_end("end_turn", 1, {}, 0.5))
    await again.close()
    resumed = load_transcript(writer.path)
    assert resumed.cost().usd == 2.25
    assert [e for e in resumed.entries if e["type"] == "turn_end"][-1]["sessionCost"][
        "byModel"]["b"]["usd"] == 1.0


async def test_a_line_damaged_after_its_prefix_is_skipped_when_read(store, workspace):
    path, _ = await write(store, workspace, [
        text_prompt("go"), tool_call("t1"), tool_result("t1", "file text"), reply("done")])
    data = path.read_bytes().replace(b'"content":"file text"', b'"content":"file text')
    path.write_bytes(data)
    reader = load_transcript(path)
    assert len(reader.records) == 5  # the prefix still reads: the chain is whole
    assert texts(reader.messages()) == ["go", "t1", "done", INTERRUPTED]
