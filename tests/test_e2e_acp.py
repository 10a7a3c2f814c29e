"""``lsp-agent acp`` end to end: the SDK's client side drives a real agent subprocess, which
talks to the scripted model server over real HTTP with the real anthropic SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from acp import PROTOCOL_VERSION, RequestError
from acp.connection import StreamDirection, StreamEvent

from lsp_agent.client.offline import resolve_scenario
from lsp_agent.scripted.server import ScriptedModelServer
from tests.acp_harness import (
    FS_CAPABILITIES,
    NO_FS,
    WAIT,
    Asked,
    Editor,
    acp_agent,
    prompt,
)
from tests.e2e_harness import (
    demo_project,
    processes_with,
    unique_duration,
    wait_for_processes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FIX_PROMPT = "The tests fail. Find the bug and fix it."
BUGGY_LINE = "    return price - price * percent\n"
FIXED_LINE = "    return price - price * percent / 100\n"


async def start(conn: Any, root: Path, capabilities: Any = FS_CAPABILITIES) -> str:
    init = await asyncio.wait_for(conn.initialize(
        protocol_version=PROTOCOL_VERSION, client_capabilities=capabilities), WAIT)
    assert init.protocol_version == PROTOCOL_VERSION
    session = await asyncio.wait_for(conn.new_session(cwd=str(root), mcp_servers=[]), WAIT)
    return session.session_id


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return demo_project(tmp_path / "shop")


@pytest.fixture
def fix_model():
    with ScriptedModelServer(resolve_scenario("fix_failing_test")) as server:
        yield server


async def test_a_bug_fixed_with_a_permission_prompt_and_an_approved_diff(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    pricing = shop / "pricing.py"
    # An unsaved change in the editor: the agent must read (and edit) the buffer, not the disk.
    original = pricing.read_text()
    editor.buffers[str(pricing)] = original + "# unsaved note\n"

    async def policy(asked: Asked) -> str | None:  # "always" for the command, once for edits
        return asked.kinds["allow_always" if not asked.diffs else "allow_once"]

    editor.policy = policy
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
        assert result.stop_reason == "end_turn"

        # The command asked once; "always" made a session rule, so its re-run did not ask.
        commands = [a for a in editor.asked if not a.diffs]
        assert len(commands) == 1 and commands[0].tool_call.kind == "execute"
        assert "unittest" in json.dumps(commands[0].tool_call.raw_input)
        # The edit was shown as a diff of the whole buffer before anything was written.
        (edit,) = [a for a in editor.asked if a.diffs]
        (diff,) = edit.diffs
        assert diff.path == str(pricing)
        assert BUGGY_LINE in diff.old_text and "# unsaved note" in diff.old_text
        assert FIXED_LINE in diff.new_text
        assert BUGGY_LINE in edit.disk_then[str(pricing)]  # not written yet when asked
        edit_id = edit.tool_call.tool_call_id
        assert any(u.tool_call_id == edit_id and u.content and u.content[0].type == "diff"
                   for u in editor.updates_of("tool_call_update"))
        # Written through the client, onto the buffer's text; the disk has it right after.
        assert editor.writes == [str(pricing)]
        assert pricing.read_text() == original.replace(BUGGY_LINE, FIXED_LINE) + "# unsaved note\n"
        assert str(pricing) in editor.reads

        # The stream: text, tool calls with locations and results, usage.
        text = "".join(u.content.text for u in editor.updates_of("agent_message_chunk"))
        assert "All 4 tests pass now" in text
        started = editor.updates_of("tool_call")
        assert [s.title for s in started][:2] == ["Bash", "Read"]
        progress = editor.updates_of("tool_call_update")
        read_id = started[1].tool_call_id
        assert any(u.tool_call_id == read_id and u.locations
                   and u.locations[0].path == str(pricing) for u in progress)
        finished = [u for u in progress if u.status == "completed"]
        assert len(finished) == len(started)  # every tool call ended, none failed
        usage = editor.updates_of("usage_update")
        assert usage and usage[-1].size > 0 and usage[-1].used > 0
        assert result.usage is not None and result.usage.output_tokens > 0
        commands_update = editor.updates_of("available_commands_update")
        assert [c.name for c in commands_update[0].available_commands] == ["compact"]


async def test_a_client_without_fs_gets_the_disk_written_by_the_agent(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop, capabilities=NO_FS)
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
    assert result.stop_reason == "end_turn"
    assert editor.reads == [] and editor.writes == []  # never asked to do what it cannot
    assert FIXED_LINE in (shop / "pricing.py").read_text()
    assert any(a.diffs for a in editor.asked)  # still reviewed before written


async def test_a_rejected_diff_writes_nothing(shop: Path,
                                               fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    before = (shop / "pricing.py").read_text()

    async def policy(asked: Asked) -> str | None:
        return asked.kinds["reject_once" if asked.diffs else "allow_once"]

    editor.policy = policy
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
    assert result.stop_reason == "end_turn"
    assert (shop / "pricing.py").read_text() == before and editor.writes == []
    text = "".join(u.content.text for u in editor.updates_of("agent_message_chunk"))
    assert "You rejected the change" in text


async def test_a_prompt_on_an_unknown_session_is_a_clear_error(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        with pytest.raises(RequestError) as caught:
            await asyncio.wait_for(conn.prompt(session_id="nope", prompt=prompt("hi")), WAIT)
        assert caught.value.code == -32602 and "unknown session: nope" in str(caught.value)
        with pytest.raises(RequestError) as caught:
            await asyncio.wait_for(conn.set_session_mode(session_id=session_id,
                                                         mode_id="yolo"), WAIT)
        assert "unknown mode 'yolo'" in str(caught.value)
        with pytest.raises(RequestError) as caught:
            await asyncio.wait_for(conn.load_session(cwd=str(shop), session_id="0" * 12,
                                                     mcp_servers=[]), WAIT)
        assert caught.value.code == -32602 and "unknown session" in str(caught.value)
        with pytest.raises(RequestError) as caught:
            await asyncio.wait_for(conn.load_session(cwd=str(shop), session_id="../etc",
                                                     mcp_servers=[]), WAIT)
        assert caught.value.code == -32602
        assert fix_model.requests == []  # nothing reached the model


async def test_cancel_during_a_permission_request(shop: Path, model: ScriptedModelServer
                                                  ) -> None:
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "touch marker.txt"}}]},
        {"content": "Stopped as asked."},
    ]})
    editor = Editor()
    asked_event, answer = asyncio.Event(), asyncio.Event()

    async def policy(asked: Asked) -> str | None:
        asked_event.set()
        await answer.wait()
        return None  # as ACP says: a cancelled turn's questions are answered "cancelled"

    editor.policy = policy
    async with acp_agent(editor, model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        turn = asyncio.ensure_future(conn.prompt(session_id=session_id,
                                                 prompt=prompt("make a marker")))
        await asyncio.wait_for(asked_event.wait(), WAIT)
        with pytest.raises(RequestError) as caught:  # one turn at a time per session
            await asyncio.wait_for(conn.prompt(session_id=session_id,
                                               prompt=prompt("and this too")), WAIT)
        assert caught.value.code == -32600 and "already running a turn" in str(caught.value)
        await conn.cancel(session_id=session_id)
        result = await asyncio.wait_for(turn, WAIT)
        answer.set()
        assert result.stop_reason == "cancelled"
        assert not (shop / "marker.txt").exists()
        # The session keeps serving.
        editor.policy = _reject
        again = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt("and now?")), WAIT)
        assert again.stop_reason == "end_turn"
        assert not (shop / "marker.txt").exists()


async def test_cancel_during_the_review_of_a_diff_writes_nothing(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    before = (shop / "pricing.py").read_text()
    reviewing, answer = asyncio.Event(), asyncio.Event()

    async def policy(asked: Asked) -> str | None:
        if not asked.diffs:
            return asked.kinds["allow_once"]
        reviewing.set()
        await answer.wait()
        return asked.kinds["allow_once"]  # too late: the turn was cancelled

    editor.policy = policy
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        turn = asyncio.ensure_future(conn.prompt(session_id=session_id,
                                                 prompt=prompt(FIX_PROMPT)))
        await asyncio.wait_for(reviewing.wait(), WAIT)
        await conn.cancel(session_id=session_id)
        result = await asyncio.wait_for(turn, WAIT)
        answer.set()
        assert result.stop_reason == "cancelled"
        # A whole turn more: a late "apply" would have been written by its end.
        editor.policy = _reject
        await asyncio.wait_for(conn.prompt(session_id=session_id, prompt=prompt("done?")), WAIT)
    assert (shop / "pricing.py").read_text() == before and editor.writes == []


async def _reject(asked: Asked) -> str | None:
    return asked.kinds["reject_once"]


async def test_malformed_json_rpc_gets_errors_and_the_agent_keeps_serving(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    incoming: list[dict[str, Any]] = []
    arrived = asyncio.Condition()

    async def observe(event: StreamEvent) -> None:
        if event.direction is StreamDirection.INCOMING:
            async with arrived:
                incoming.append(event.message)
                arrived.notify_all()

    bad_lines = [b"{not json\n", b"[]\n", b'"hello"\n', b'{"jsonrpc": "2.0", "id": 7}\n',
                 b'{"jsonrpc": "2.0", "id": 8, "method": 42}\n',
                 b'{"jsonrpc": "2.0", "id": 9, "method": "session/nothing", "params": {}}\n',
                 b'{"jsonrpc": "2.0", "id": 10, "method": "session/prompt", "params": []}\n',
                 b"\xff\xfe\n"]
    async with acp_agent(editor, fix_model.base_url, shop, observers=[observe]) as (conn, proc):
        await start(conn, shop)
        for line in bad_lines:
            proc.stdin.write(line)
        await proc.stdin.drain()

        def errors() -> list[dict[str, Any]]:
            return [m for m in incoming if "error" in m]

        async with arrived:
            await asyncio.wait_for(arrived.wait_for(lambda: len(errors()) >= 7), WAIT)
        codes = sorted((m["id"] if m["id"] is not None else -1, m["error"]["code"])
                       for m in errors())
        assert codes == [(-1, -32700), (-1, -32700), (-1, -32600), (-1, -32600),
                         (8, -32600), (9, -32601), (10, -32602)]
        # ({"id": 7} alone is a response to nothing: ignored, as JSON-RPC says.)
        messages = " ".join(m["error"]["message"] for m in errors())
        assert "not JSON" in messages and "batches are not supported" in messages
        # Still serving: a new session and a whole turn.
        session_id = (await asyncio.wait_for(
            conn.new_session(cwd=str(shop), mcp_servers=[]), WAIT)).session_id
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
        assert result.stop_reason == "end_turn"


async def test_accept_edits_mode_applies_without_asking(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    editor = Editor()
    async with acp_agent(editor, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        await asyncio.wait_for(conn.set_session_mode(session_id=session_id,
                                                     mode_id="acceptEdits"), WAIT)
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
    assert result.stop_reason == "end_turn"
    assert not any(a.diffs for a in editor.asked)  # commands still ask, edits do not
    assert editor.asked and FIXED_LINE in (shop / "pricing.py").read_text()
    assert editor.writes == [str(shop / "pricing.py")]


async def test_the_end_of_stdin_ends_the_agent_and_its_processes(
        shop: Path, model: ScriptedModelServer) -> None:
    duration = unique_duration()
    model.load({"turns": [{"content": [{"type": "tool_use", "name": "Bash",
                                        "input": {"command": f"sleep {duration}"}}]}]})
    editor = Editor()
    async with acp_agent(editor, model.base_url, shop, "--permission-mode",
                         "bypassPermissions") as (conn, proc):
        session_id = await start(conn, shop)
        turn = asyncio.ensure_future(conn.prompt(session_id=session_id,
                                                 prompt=prompt("sleep a while")))
        assert await wait_for_processes(duration, present=True)
        proc.stdin.write_eof()  # the editor closed the pipe
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
        assert await wait_for_processes(duration, present=False) == []
        turn.cancel()
    assert processes_with(duration) == []


async def test_a_saved_session_loads_in_a_new_agent_with_its_history_replayed(
        shop: Path, fix_model: ScriptedModelServer) -> None:
    first = Editor()
    async with acp_agent(first, fix_model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt(FIX_PROMPT)), WAIT)
    first_calls = {u.tool_call_id: u.title for u in first.updates_of("tool_call_update")
                   if u.title}

    later = Editor()
    async with acp_agent(later, fix_model.base_url, shop) as (conn, _):
        init = await asyncio.wait_for(conn.initialize(
            protocol_version=PROTOCOL_VERSION, client_capabilities=FS_CAPABILITIES), WAIT)
        assert init.agent_capabilities.load_session is True
        listed = await asyncio.wait_for(conn.list_sessions(cwd=str(shop)), WAIT)
        assert [s.session_id for s in listed.sessions] == [session_id]
        loaded = await asyncio.wait_for(conn.load_session(
            cwd=str(shop), session_id=session_id, mcp_servers=[]), WAIT)
        assert loaded.modes.current_mode_id == "default"
        # Replayed before the answer: the prompt, the text, every tool call and its result.
        (user,) = later.updates_of("user_message_chunk")
        assert user.content.text == FIX_PROMPT
        text = "".join(u.content.text for u in later.updates_of("agent_message_chunk"))
        assert "All 4 tests pass now" in text
        replayed = {u.tool_call_id: u.title for u in later.updates_of("tool_call")}
        assert replayed == first_calls  # same ids, same titles
        done = {u.tool_call_id for u in later.updates_of("tool_call_update")
                if u.status == "completed"}
        assert done == set(replayed)
        # The conversation goes on where it was: the model gets the old history.
        requests_before = len(fix_model.requests)
        again = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt("Thanks. Anything else?")), WAIT)
        assert again.stop_reason == "end_turn"
        sent = fix_model.requests[requests_before]["messages"]
        assert FIX_PROMPT in json.dumps(sent[0]) and len(sent) > 5


async def test_todowrite_becomes_a_plan(shop: Path, model: ScriptedModelServer) -> None:
    todos = [{"content": "Find the bug", "status": "completed"},
             {"content": "Fix it", "status": "in_progress"},
             {"content": "Run the tests", "status": "pending"}]
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "TodoWrite", "input": {"todos": todos}}]},
        {"content": "Planned."},
    ]})
    editor = Editor()
    async with acp_agent(editor, model.base_url, shop) as (conn, _):
        session_id = await start(conn, shop)
        result = await asyncio.wait_for(
            conn.prompt(session_id=session_id, prompt=prompt("plan it")), WAIT)
    assert result.stop_reason == "end_turn"
    (plan,) = editor.updates_of("plan")
    assert [(e.content, e.status) for e in plan.entries] == [
        (t["content"], t["status"]) for t in todos]
    (call,) = editor.updates_of("tool_call")
    assert call.kind == "think" and editor.asked == []  # the plan is the agent's own state
