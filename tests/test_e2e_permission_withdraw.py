"""End to end: a permission request the server stops waiting for is withdrawn with
``$/cancelRequest``, so the editor can close its dialog (issue 8, item 9)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.types import events as ev
from tests.e2e_harness import WAIT, Editor, demo_project, start_editor

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-withdraw")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, root):
    # A timeout far beyond the test: only the cancel can end the wait.
    ed = await start_editor(model.base_url, root, permissionTimeoutSeconds=600)
    yield ed
    await ed.client.shutdown_session()


class Dialog:
    """A permission dialog the user leaves open; it notices when the server withdraws it."""

    def __init__(self) -> None:
        self.shown = asyncio.Event()
        self.withdrawn = asyncio.Event()

    async def __call__(self, params: dict) -> dict:
        self.shown.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # pygls cancels the handler on $/cancelRequest
            self.withdrawn.set()
            raise
        return {"decision": "allow"}


async def test_cancelling_the_turn_withdraws_its_permission_request(editor: Editor, model, root):
    workspace = demo_project(root / "cancel")
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "touch created-by-agent"}}]},
        {"content": "next turn"},
    ]})
    dialog = Dialog()
    with editor.answering(dialog):
        session = await editor.new_session(workspace)
        prompt = asyncio.ensure_future(editor.request(
            "agent/prompt", {"sessionId": session, "text": "touch"}))
        await asyncio.wait_for(dialog.shown.wait(), WAIT)
        assert await editor.request("agent/cancel", {"sessionId": session}) == {"cancelled": True}
        await asyncio.wait_for(dialog.withdrawn.wait(), WAIT)
        assert (await prompt)["stopReason"] == "cancelled"
    assert not (workspace / "created-by-agent").exists()
    assert not editor.of(session, ev.PermissionDecided)  # nobody decided: the turn stopped
    # The editor's late "cancelled" answer is ignored; the session serves the next prompt.
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "again"})
    assert result["stopReason"] == "end_turn"
