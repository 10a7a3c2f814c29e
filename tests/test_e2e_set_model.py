"""End to end: ``agent/setModel`` switches an open session's model from its next request on.

The real server over stdio and the scripted model server, which records every request it gets
with the ``model`` field the SDK sent.
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import Editor, demo_project, start_editor

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, tmp_path_factory):
    ed = await start_editor(model.base_url, tmp_path_factory.mktemp("set-model"),
                            model="first-model")
    yield ed
    await ed.client.shutdown_session()


async def test_set_model_applies_to_the_next_request_of_the_open_session(editor: Editor, model,
                                                                          tmp_path):
    model.load({"turns": [{"content": "one"}, {"content": "two"}]})
    session = await editor.new_session(demo_project(tmp_path / "ws"))
    await editor.request("agent/prompt", {"sessionId": session, "text": "first"})

    answer = await editor.request("agent/setModel", {"sessionId": session,
                                                     "model": "second-model"})
    assert answer == {"model": "second-model"}
    await editor.request("agent/prompt", {"sessionId": session, "text": "second"})

    assert [r["model"] for r in model.requests] == ["first-model", "second-model"]
    # The conversation went on: the second request carries the first exchange.
    assert len(model.requests[1]["messages"]) == 3
    # The events say which model answered each request.
    assert [e.model for e in editor.of(session, ev.ModelRequest)] == ["first-model",
                                                                       "second-model"]
    assert [e.model for e in editor.of(session, ev.UsageReport)][-1] == "second-model"
    listed = await editor.request("agent/listSessions", {})
    assert {s["sessionId"]: s["model"] for s in listed["sessions"]}[session] == "second-model"


async def test_set_model_rejects_unknown_sessions_and_blank_names(editor: Editor, tmp_path):
    session = await editor.new_session(demo_project(tmp_path / "ws"))
    for params, needle in [({"sessionId": "nope", "model": "m"}, "unknown session"),
                           ({"sessionId": session, "model": "  "}, "model"),
                           ({"sessionId": session}, "model")]:
        with pytest.raises(JsonRpcInvalidParams) as info:
            await editor.request("agent/setModel", params)
        assert needle in str(info.value)
    assert "agent/setModel" in editor.init_result.capabilities.experimental["lspAgent"]["methods"]
