"""End to end: a cloned repository's hooks through a real ``lsp-agent serve`` over stdio, the
scripted model over real HTTP. The project's UserPromptSubmit hook runs only after the editor
approved it (a permission request naming it), its output reaches the model, and the
remembered approval holds for the next session without asking again."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.scripted.server import ScriptedModelServer
from tests.e2e_harness import start_editor

pytestmark = [pytest.mark.e2e]

HOOK = """\
import json, sys
payload = json.load(sys.stdin)
with open(sys.argv[1], "a") as out:
    out.write(payload["prompt"] + "\\n")
print("Ticket LSP-77 is the current task.")
"""


async def test_project_hooks_need_the_editors_approval_once(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".claude").mkdir(parents=True)
    (tmp_path / "hook.py").write_text(HOOK)
    seen = tmp_path / "prompts.txt"
    command = f"{sys.executable} {tmp_path / 'hook.py'} {seen}"
    (ws / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [
        {"hooks": [{"type": "command", "command": command}]}]}}))
    with ScriptedModelServer({"turns": [{"content": "ok"}]}) as model:
        editor = await start_editor(model.base_url, tmp_path)
        asked: list[dict[str, Any]] = []

        async def approve(params: dict[str, Any]) -> dict[str, Any]:
            asked.append(params)
            return {"decision": "allow", "remember": "project"}

        editor.permission = approve
        try:
            session = await editor.new_session(ws)
            assert not seen.exists(), "nothing runs before the first prompt's approval"
            result = await editor.request("agent/prompt", {"sessionId": session,
                                                           "text": "first"})
            assert result["stopReason"] == "end_turn"
            [question] = asked
            assert question["toolUseId"] == "hooks-approval" and question["tool"] == "hooks"
            assert command in json.dumps(question)
            assert seen.read_text() == "first\n"
            assert "Ticket LSP-77" in json.dumps(model.requests[0]["messages"])

            second = await editor.new_session(ws)
            await editor.request("agent/prompt", {"sessionId": second, "text": "second"})
            assert len(asked) == 1, "remembered for the project"
            assert seen.read_text() == "first\nsecond\n"
        finally:
            await editor.client.shutdown_session()
