"""Auto memory end to end: a real ``lsp-agent serve`` in ``default`` mode, the real SDK against
the scripted model server. The agent saves a memory without a permission prompt (secrets masked
on the way), the next session's request carries the index after the cached prefix, and a client
views, edits and clears the memory with the agent/memory* requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.store.layout import workspace_slug
from lsp_agent.types import events as ev
from tests.e2e_harness import start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

KEY = "sk-ant-api03-" + "Q" * 40
SAVE = {"type": "tool_use", "name": "Memory", "input": {
    "action": "write", "name": "testing", "type": "project",
    "description": "run the tests with pytest -q",
    "content": f"Use `pytest -q`. Deploy key: {KEY}"}}


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


async def test_the_agent_saves_a_memory_the_next_session_sees_and_the_user_edits(
        model, tmp_path: Path):
    workspace = tmp_path / "ws"
    (workspace / ".lsp-agent").mkdir(parents=True)
    # A cloned repository trying to move the memory folder: ignored, with a warning.
    (workspace / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"autoMemoryDirectory": str(tmp_path / "elsewhere")}))
    folder = tmp_path / ".state" / "memory" / workspace_slug(workspace)
    model.load({"turns": [{"content": [SAVE]}, {"content": "saved"}]})
    editor = await start_editor(model.base_url, tmp_path)
    try:
        first = await editor.new_session(workspace)
        await editor.request("agent/prompt", {"sessionId": first,
                                              "text": "remember how to run the tests"})
        assert editor.permission_requests == []  # memory needs no permission
        [result] = editor.of(first, ev.ToolResult)
        assert not result.is_error and "masked" in result.content
        saved = (folder / "testing.md").read_text()
        assert "pytest -q" in saved and KEY not in saved
        assert not (tmp_path / "elsewhere").exists()

        model.load({"turns": [{"content": "hello"}]})
        second = await editor.new_session(workspace)
        await editor.request("agent/prompt", {"sessionId": second, "text": "hi"})
        system = model.requests[-1]["system"]
        # The static prefix carries the cache breakpoint; the memory comes after it.
        assert "cache_control" in system[0]
        memory_blocks = [b for b in system if "<auto_memory_index>" in b["text"]]
        assert memory_blocks == [system[-1]] and "cache_control" not in system[-1]
        assert "- [testing](testing.md) (project): run the tests with pytest -q" in \
            system[-1]["text"]

        ws = {"workspaceUri": uri(workspace)}
        shown = await editor.request("agent/memory", ws)
        assert shown["folder"] == str(folder)
        assert [t["name"] for t in shown["topics"]] == ["testing"]
        assert "testing.md" in shown["index"]
        assert any("autoMemoryDirectory" in w for w in shown["warnings"])

        written = await editor.request("agent/memoryWrite", {
            **ws, "name": "MEMORY.md", "text": f"My own index. {KEY}\n"})
        assert written == {"written": True, "masked": 1}
        read = await editor.request("agent/memoryRead", {**ws, "name": "MEMORY.md"})
        assert read["text"] == "My own index. [REDACTED]\n"

        for params, message in [
            ({"name": "MEMORY.md", "text": "x\n" * 300}, "at most 200 lines"),
            ({"name": "../../etc/passwd", "text": "x"}, "memory name"),
        ]:
            with pytest.raises(JsonRpcException, match=message):
                await editor.request("agent/memoryWrite", {**ws, **params})
        assert (await editor.request("agent/memoryDelete", {**ws, "name": "testing"})) == {
            "deleted": True}
        assert (await editor.request("agent/memoryClear", ws)) == {"deleted": 1}
        assert list(folder.glob("*.md")) == []
    finally:
        await editor.client.shutdown_session()


async def test_auto_memory_off_offers_no_tool_and_refuses_the_requests(model, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    model.load({"turns": [{"content": "hello"}]})
    editor = await start_editor(model.base_url, tmp_path, autoMemory=False)
    try:
        session = await editor.new_session(workspace)
        await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
        body = model.requests[-1]
        assert "Memory" not in [t["name"] for t in body["tools"]]
        assert not any("<auto_memory_index>" in b["text"] for b in body["system"])
        with pytest.raises(JsonRpcException, match="auto memory is off"):
            await editor.request("agent/memory", {"workspaceUri": uri(workspace)})
    finally:
        await editor.client.shutdown_session()
