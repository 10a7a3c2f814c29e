"""agent/context and agent/compact over a real language server, and the cost event on the
wire."""

from __future__ import annotations

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import Editor, start_editor
from tests.test_context_session import SUMMARY_MARKER, read

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx")
    (root / "notes.py").write_text("NOTE = 'remember me'\n")
    ed = await start_editor(model.base_url, root)
    ed.root = root
    yield ed
    await ed.client.shutdown_session()


async def test_context_report_then_manual_compaction(editor: Editor, model):
    model.load({"sequencing": "sequential", "turns": [
        {"content": [read("notes.py")]}, {"content": "noted"},
        {"content": "SUMMARY: notes.py holds NOTE.",
         "expect": {"user_text_contains": "only the notes"}},
    ]})
    session = await editor.new_session(editor.root)
    await editor.request("agent/prompt", {"sessionId": session, "text": "read the notes"})
    report = await editor.request("agent/context", {"sessionId": session})
    assert set(report["parts"]) == {"system", "tools", "memory", "messages", "toolResults"}
    assert report["parts"]["toolResults"] > 0 and report["windowTokens"] == 200_000
    assert report["source"] == "count_tokens" and report["cost"]["usd"] > 0

    result = await editor.request("agent/compact", {"sessionId": session,
                                                    "instructions": "only the notes"})
    assert result["compacted"] is True and result["tokensAfter"] > 0
    assert SUMMARY_MARKER in str(model.requests[-1]["messages"][-1])
    boundary = editor.of(session, ev.CompactBoundary)
    assert [b.trigger for b in boundary] == ["manual"]
    costs = editor.of(session, ev.CostReport)
    assert len(costs) == 1 and costs[0].turn.by_model[0].usage.output_tokens > 0


async def test_unknown_session_is_invalid_params(editor: Editor):
    for method in ("agent/context", "agent/compact"):
        with pytest.raises(JsonRpcInvalidParams):
            await editor.request(method, {"sessionId": "nope"})


async def test_advertised(editor: Editor):
    methods = editor.init_result.capabilities.experimental["lspAgent"]["methods"]
    assert "agent/context" in methods and "agent/compact" in methods
