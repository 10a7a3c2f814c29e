"""The pure parts of the ACP front end: bad lines, the event mapping, prompt blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from acp import embedded_text_resource, resource_block, resource_link_block, text_block
from acp.schema import ReadTextFileResponse

from lsp_agent.acp.client_io import ClientDocuments, ClientFs, ClientWriter
from lsp_agent.acp.mapping import (
    UpdateMapper,
    diff_contents,
    mode_state,
    stop_reason,
    tool_title,
)
from lsp_agent.acp.prompt import prompt_text
from lsp_agent.acp.transport import parse_message
from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import MODES
from lsp_agent.workspace.documents import FileReadError, disk_snapshot

BAD_LINES = [  # (line, code, id of the reply)
    (b"{oops", -32700, None),
    (b"\xff\xfe", -32700, None),
    (b"[]", -32600, None),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "initialize"}]', -32600, None),
    (b"42", -32600, None),
    (b'"text"', -32600, None),
    (b"null", -32600, None),
    (b'{"jsonrpc": "2.0"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": true, "method": "x"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": 3, "method": ["x"]}', -32600, 3),
    (b'{"jsonrpc": "2.0", "id": "a", "method": "x", "params": 5}', -32600, "a"),
]


@pytest.mark.parametrize(("line", "code", "reply_id"), BAD_LINES)
def test_bad_lines_get_the_error_that_names_them(line: bytes, code: int, reply_id) -> None:
    message, error = parse_message(line)
    assert message is None and error is not None
    assert error["error"]["code"] == code and error["id"] == reply_id
    assert error["error"]["message"].startswith(("Parse error", "Invalid request"))


@pytest.mark.parametrize("line", [
    b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}',
    b'{"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "s"}}',
    b'{"jsonrpc": "2.0", "id": "r1", "result": null}',
    b'{"jsonrpc": "2.0", "id": 0, "error": {"code": -1, "message": "no"}}',
    b'{"jsonrpc": "2.0", "id": 2, "method": "x", "params": []}',
])
def test_good_lines_pass(line: bytes) -> None:
    message, error = parse_message(line)
    assert error is None and isinstance(message, dict)


@pytest.mark.parametrize(("name", "arguments", "title"), [
    ("Read", {"path": "src/a.py"}, "Read src/a.py"),
    ("Bash", {"command": "pytest -q", "description": "Run the tests"}, "Bash Run the tests"),
    ("Bash", {"command": "pytest\n  -q"}, "Bash pytest -q"),
    ("Bash", {"command": "x" * 500}, "Bash " + "x" * 119 + "\u2026"),
    ("TodoWrite", {"todos": []}, "Update the plan"),
    ("mcp__db__query", {"sql": "select 1"}, "mcp__db__query"),
    ("Read", None, "Read"),
])
def test_tool_titles(name: str, arguments, title: str) -> None:
    assert tool_title(name, arguments) == title


def test_a_tool_call_carries_its_locations_and_keeps_its_diff_with_its_result() -> None:
    mapper = UpdateMapper(Path("/w"), 200_000)
    (start,) = mapper.updates(ev.ToolCallStarted(tool_use_id="t1", name="Edit"))
    assert start.session_update == "tool_call" and start.kind == "edit"
    (given,) = mapper.updates(ev.ToolInputComplete(
        tool_use_id="t1", name="Edit", input={"path": "a.py", "old_string": "x"}))
    assert given.title == "Edit a.py" and given.locations[0].path == "/w/a.py"
    shown = mapper.show_diffs("t1", diff_contents([(Path("/w/a.py"), "x\n", "y\n")]))
    assert shown.content[0].old_text == "x\n" and shown.content[0].new_text == "y\n"
    (done,) = mapper.updates(ev.ToolResult(tool_use_id="t1", name="Edit", content="Applied."))
    assert done.status == "completed"
    assert [c.type for c in done.content] == ["diff", "content"]  # the diff stays visible
    (failed,) = mapper.updates(ev.ToolResult(tool_use_id="t2", name="Bash", content="no",
                                             is_error=True))
    assert failed.status == "failed"


def test_todos_become_a_plan_and_usage_an_update() -> None:
    mapper = UpdateMapper(Path("/w"), 100_000)
    (plan,) = mapper.updates(ev.TodosUpdated(todos=[
        ev.TodoView(content="Find the bug", status="completed"),
        ev.TodoView(content="Fix it", status="in_progress")]))
    assert plan.session_update == "plan"
    assert [(e.content, e.status) for e in plan.entries] == [
        ("Find the bug", "completed"), ("Fix it", "in_progress")]
    (usage,) = mapper.updates(ev.UsageReport(model="m", usage=ev.Usage(
        input_tokens=10, output_tokens=5, cache_read_input_tokens=100)))
    assert (usage.used, usage.size, usage.cost) == (115, 100_000, None)
    (priced,) = mapper.updates(ev.CostReport(turn=ev.SessionCost(usd=0.5),
                                             session=ev.SessionCost(usd=1.25)))
    assert priced.cost.amount == 1.25 and priced.cost.currency == "USD"
    assert mapper.updates(ev.ModelRequest(model="m", round=1)) == []


@pytest.mark.parametrize(("ours", "theirs"), [
    ("end_turn", "end_turn"), ("max_turns", "max_turn_requests"), ("cancelled", "cancelled"),
    ("refusal", "refusal"), ("error", None)])
def test_stop_reasons(ours: str, theirs) -> None:
    ended = ev.TurnEnded(stop_reason=ours, usage=ev.Usage(), rounds=1)  # type: ignore[arg-type]
    assert stop_reason(ended) == theirs


def test_every_permission_mode_is_a_session_mode() -> None:
    state = mode_state("plan")
    assert state.current_mode_id == "plan"
    assert [m.id for m in state.available_modes] == list(MODES)


def test_prompt_blocks_quote_attachments_but_not_secret_files(tmp_path: Path) -> None:
    code = tmp_path / "a.py"
    env = tmp_path / ".env"
    text = prompt_text([
        text_block("Fix this"),
        resource_link_block("b.py", (tmp_path / "b.py").as_uri()),
        resource_block(embedded_text_resource(code.as_uri(), "print(1)")),
        resource_block(embedded_text_resource(env.as_uri(), "API_KEY=sk-secret")),
    ])
    assert text.startswith("Fix this\n[@b.py](file://")
    assert "print(1)" in text
    assert "sk-secret" not in text and "secret file" in text


def test_a_saved_history_replays_what_the_user_saw() -> None:
    from lsp_agent.acp.replay import replay

    entries = [
        {"type": "user", "origin": "user", "prompt": "fix it",
         "message": {"role": "user", "content": [{"type": "text", "text": "ctx + fix it"}]}},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "t1", "name": "Read", "input": {"path": "a.py"}}]}},
        {"type": "tool_result", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
             "content": [{"type": "text", "text": "no such file"}]}]}},
        {"type": "todos", "todos": [{"content": "Fix", "status": "in_progress"},
                                    {"content": "Odd", "status": "weird"}]},
        {"type": "mode", "mode": "acceptEdits"},
        {"type": "mode", "mode": "nonsense"},
        {"type": "user", "origin": "stop_hook", "prompt": "keep going"},
        {"type": "system", "kind": "model_error", "message": "overloaded", "level": "error"},
        {"type": "usage", "model": "m", "usage": {}, "costUsd": 0},
        {"type": "turn_end", "stopReason": "end_turn"},
    ]
    updates = replay(entries, Path("/w"))
    assert [u.session_update for u in updates] == [
        "user_message_chunk", "agent_message_chunk", "tool_call", "tool_call_update", "plan",
        "current_mode_update", "agent_thought_chunk", "agent_message_chunk"]
    user, _, call, result, plan, mode, _, error = updates
    assert user.content.text == "fix it"  # what the user typed, not the context around it
    assert call.title == "Read a.py" and call.locations[0].path == "/w/a.py"
    assert result.tool_call_id == "t1" and result.status == "failed"
    assert result.content[0].content.text == "no such file"
    assert [e.status for e in plan.entries] == ["in_progress", "pending"]
    assert mode.current_mode_id == "acceptEdits"
    assert "overloaded" in error.content.text


def test_an_auto_mode_decision_replays_as_a_thought() -> None:
    from lsp_agent.acp.replay import replay

    [shown] = replay([{"type": "auto_decision", "toolUseId": "t1", "tool": "Bash",
                       "decision": "deny", "reason": "pipes a download into sh",
                       "cached": True, "callKey": "abc"}], Path("/w"))
    assert shown.session_update == "agent_thought_chunk"
    assert "deny Bash (cached)" in shown.content.text
    assert "pipes a download into sh" in shown.content.text


# -- the client's file system ---------------------------------------------------------------


def _read(path: str) -> str:  # small test files: blocking is fine in the fake client
    return Path(path).read_text()


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


class FakeClient:
    """The two fs requests of an ACP connection, recorded; ``fail`` makes them raise."""

    def __init__(self, buffers: dict[str, str] | None = None, fail: set[str] | None = None):
        self.buffers = buffers or {}
        self.fail = fail or set()
        self.asked: list[tuple[str, str]] = []

    async def read_text_file(self, session_id: str, path: str) -> Any:
        self.asked.append(("read", path))
        if path in self.fail:
            raise RuntimeError("the editor has no such buffer")
        text = self.buffers.get(path)
        return ReadTextFileResponse(content=text if text is not None else _read(path))

    async def write_text_file(self, session_id: str, path: str, content: str) -> None:
        self.asked.append(("write", path))
        if path in self.fail:
            raise RuntimeError("read-only buffer")
        _write(path, content)


def client_fs(client: FakeClient, read: bool = True, write: bool = True) -> ClientFs:
    return ClientFs(conn=client, can_read=read, can_write=write, session_for=lambda _p: "s1")


async def test_reads_come_from_the_client_buffer_with_the_disk_encoding(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_bytes("caf\xe9 = 1\n".encode("latin-1"))
    client = FakeClient({str(path): "café = 2  # unsaved\n"})
    snap = await ClientDocuments(client_fs(client)).read_snapshot(path)
    assert snap.text == "café = 2  # unsaved\n" and snap.encoding is not None
    assert snap.encoding == disk_snapshot(path).encoding


@pytest.mark.parametrize("case", ["no capability", "client error", "folder", "missing"])
async def test_reads_fall_back_to_the_disk_reader(tmp_path: Path, case: str) -> None:
    path = tmp_path / "a.py"
    path.write_text("on disk\n")
    client = FakeClient({str(path): "buffer\n"}, fail={str(path)} if case == "client error"
                        else set())
    documents = ClientDocuments(client_fs(client, read=case != "no capability"))
    if case == "folder":
        with pytest.raises(FileReadError):
            await documents.read_snapshot(tmp_path)
        assert client.asked == []  # never asked about what the disk reader refuses
        return
    if case == "missing":
        with pytest.raises(FileNotFoundError):
            await documents.read_snapshot(tmp_path / "gone.py")
        assert client.asked == []
        return
    assert (await documents.read_snapshot(path)).text == "on disk\n"


async def test_writes_go_through_the_client_after_the_path_is_checked(tmp_path: Path) -> None:
    from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, real_path

    target = tmp_path / "a.py"
    target.write_text("old\n")
    client = FakeClient()
    writer = ClientWriter(client_fs(client))
    assert writer.writes_to_disk is False
    scope = {target: WriteScope(roots=(real_path(tmp_path),), expected=real_path(target))}
    report = await writer.apply([EditTarget(target.as_uri(), "old\n", "new\n", None)], scope)
    assert report.applied and client.asked == [("write", str(target))]
    assert target.read_text() == "new\n"
    # A link swapped in since the proposal: refused before the client is asked.
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("keep\n")
    target.unlink()
    target.symlink_to(outside)
    client.asked.clear()
    with pytest.raises(WriteRefused):
        await writer.apply([EditTarget(target.as_uri(), "new\n", "evil\n", None)], scope)
    assert client.asked == [] and outside.read_text() == "keep\n"


async def test_a_write_the_client_refuses(tmp_path: Path) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    for path in (first, second):
        path.write_text("old\n")
    targets = [EditTarget(p.as_uri(), "old\n", "new\n", None) for p in (first, second)]
    refused = await ClientWriter(client_fs(FakeClient(fail={str(first)}))).apply(targets)
    assert not refused.applied and "did not write" in refused.reason
    partly = await ClientWriter(client_fs(FakeClient(fail={str(second)}))).apply(targets)
    assert partly.applied and list(partly.diverged) == [second.as_uri()]


async def test_without_write_capability_the_disk_is_written(tmp_path: Path) -> None:
    target = tmp_path / "a.py"
    target.write_text("old\n")
    client = FakeClient()
    writer = ClientWriter(client_fs(client, write=False))
    assert writer.writes_to_disk is True
    await writer.apply([EditTarget(target.as_uri(), "old\n", "new\n", None)])
    assert target.read_text() == "new\n" and client.asked == []
