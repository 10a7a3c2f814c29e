"""End to end, the real server over stdio: bytes kept, writes re-checked, nothing blocks.

A FIFO the agent reads and a 50 MB buffer it hovers must leave every other request answered;
a latin-1 file keeps its bytes; a file swapped for a symlink between proposal and review is
not written through.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
import pytest_asyncio
from lsprotocol import types as lsp

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import WAIT, Editor, demo_project, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and symlinks")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-bytes")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, root):
    ed = await start_editor(model.base_url, root)
    yield ed
    await ed.client.shutdown_session()


@pytest.fixture
def workspace(root, request):
    return demo_project(root / request.node.name)


def tool_turn(name: str, tool_input: dict) -> dict:
    return {"content": [{"type": "tool_use", "name": name, "input": tool_input}]}


def last_tool_result(model: ScriptedModelServer) -> str:
    blocks = model.requests[-1]["messages"][-1]["content"]
    return next(b["content"] for b in blocks if b["type"] == "tool_result")


async def hover(editor: Editor, path, line: int, character: int):
    return await asyncio.wait_for(editor.client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(path)),
        position=lsp.Position(line=line, character=character))), WAIT)


async def test_reading_a_fifo_is_a_clear_error_and_the_server_keeps_answering(
    editor: Editor, model, workspace
):
    os.mkfifo(workspace / "pipe.txt")  # nobody writes to it, ever
    model.load({"turns": [
        tool_turn("Read", {"path": "pipe.txt"}),
        {"content": "noted", "expect": {"tool_result_contains": "FIFO"}},
    ]})
    pricing = workspace / "pricing.py"
    editor.open(pricing)
    session = await editor.new_session(workspace)

    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "read pipe.txt"}))
    answered = await hover(editor, pricing, 24, 18)
    result = await prompt

    assert answered is not None and "apply_discount" in answered.contents.value
    assert result["stopReason"] == "end_turn"
    assert "pipe.txt is a FIFO (named pipe), not a regular file" in last_tool_result(model)
    listed = await editor.request("agent/listSessions", {})  # and other requests still work
    assert session in [s["sessionId"] for s in listed["sessions"]]


async def test_a_50_mb_buffer_does_not_hold_up_hovers_in_other_files(editor: Editor, workspace):
    huge = workspace / "generated.py"
    huge.write_text("value = 1\n")
    editor.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri(huge), language_id="python", version=1,
                                           text="value = 1\n" * 5_000_000)))
    pricing = workspace / "pricing.py"
    editor.open(pricing)

    on_huge, elsewhere = await asyncio.gather(hover(editor, huge, 0, 1),
                                              hover(editor, pricing, 24, 18))

    assert on_huge is None  # not given to jedi: too large
    assert elsewhere is not None and "apply_discount" in elsewhere.contents.value
    again = await hover(editor, pricing, 24, 18)
    assert again is not None and "apply_discount" in again.contents.value


async def test_latin1_file_keeps_its_bytes_through_review(editor: Editor, model, workspace):
    menu = workspace / "menu.py"
    menu.write_bytes(b"# caf\xe9 cr\xe8me\nPRICE = 1\n# cr\xe8me br\xfbl\xe9e\r\n")
    model.load({"turns": [
        tool_turn("Edit", {"path": "menu.py", "old_string": "PRICE = 1",
                           "new_string": "PRICE = 2  # \u00e9t\u00e9"}),
        {"content": "done", "expect": {"tool_result_contains": "f1.h1"}},
    ]})
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "raise the price"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]

    review = await editor.request("agent/review",
                                  {"proposalId": created.proposal_id, "accept": "all"})
    await prompt

    assert review["status"] == "accepted"
    assert menu.read_bytes() == b"# caf\xe9 cr\xe8me\nPRICE = 2  # \xe9t\xe9\n" \
        b"# cr\xe8me br\xfbl\xe9e\r\n"


async def test_symlink_swapped_in_before_review_is_not_written_through(
    editor: Editor, model, workspace, tmp_path
):
    pricing = workspace / "pricing.py"
    outside = tmp_path / "victim.py"
    original = pricing.read_bytes()
    outside.write_bytes(original)  # same text: a rebase alone would not notice the swap
    model.load({"turns": [
        tool_turn("Edit", {"path": "pricing.py", "old_string": "    return price - price * "
                           "percent\n", "new_string": "    return price * (1 - percent / 100)\n"}),
        {"content": "understood", "expect": {"tool_result_contains": "NOT applied"}},
    ]})
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "fix the discount"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    sent_before = len(editor.applied)
    pricing.unlink()
    pricing.symlink_to(outside)

    review = await editor.request("agent/review",
                                  {"proposalId": created.proposal_id, "accept": "all"})
    result = await prompt

    assert review["status"] == "failed" and review["applied"] == []
    assert "now leads to" in review["conflictDetails"][0]
    assert outside.read_bytes() == original
    assert len(editor.applied) == sent_before, "nothing was sent to the editor either"
    assert result["stopReason"] == "end_turn"
    assert "NOT applied" in last_tool_result(model)
