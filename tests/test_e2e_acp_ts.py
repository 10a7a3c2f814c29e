"""``lsp-agent acp`` driven by an ACP client written with the official TypeScript SDK
(tests/acp_ts_client), an implementation independent of the Python SDK the agent uses.

Needs node and ``npm ci`` in tests/acp_ts_client; skipped (saying so) otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_agent.client.offline import resolve_scenario
from lsp_agent.scripted.server import ScriptedModelServer
from tests.acp_harness import agent_env
from tests.e2e_harness import demo_project

CLIENT = Path(__file__).with_name("acp_ts_client")
BUGGY_LINE = "    return price - price * percent\n"
FIXED_LINE = "    return price - price * percent / 100\n"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (CLIENT / "node_modules" / "@agentclientprotocol" / "sdk").is_dir(),
                       reason="run `npm ci` in tests/acp_ts_client for the TypeScript client"),
]


def test_the_typescript_sdk_client_gets_the_bug_fixed(tmp_path: Path) -> None:
    shop = demo_project(tmp_path / "shop")
    pricing = shop / "pricing.py"
    (tmp_path / "state").mkdir()
    with ScriptedModelServer(resolve_scenario("fix_failing_test")) as model, \
            (tmp_path / "agent-stderr.log").open("wb") as stderr:
        done = subprocess.run(
            ["node", "client.mjs", sys.executable, str(shop),
             "The tests fail. Find the bug and fix it."],
            cwd=CLIENT, env=agent_env(model.base_url, tmp_path / "state"),
            stdout=subprocess.PIPE, stderr=stderr, timeout=150, check=False)
    assert done.returncode == 0, (tmp_path / "agent-stderr.log").read_text()[-3000:]
    seen = json.loads(done.stdout)
    assert seen["init"]["protocolVersion"] == 1
    assert "acceptEdits" in [m["id"] for m in seen["modes"]["availableModes"]]
    assert seen["stopReason"] == "end_turn"
    edits = [p for p in seen["permissions"]
             if any(c["type"] == "diff" for c in p["toolCall"]["content"])]
    assert len(edits) == 1 and len(seen["permissions"]) == 2  # the re-run was not asked
    (diff,) = [c for c in edits[0]["toolCall"]["content"] if c["type"] == "diff"]
    assert diff["path"] == str(pricing) and FIXED_LINE in diff["newText"]
    assert BUGGY_LINE in seen["diskWhenAsked"][str(pricing)]
    assert seen["writes"] == [str(pricing)] and FIXED_LINE in pricing.read_text()
    kinds = {u["sessionUpdate"] for u in seen["updates"]}
    assert {"agent_message_chunk", "tool_call", "tool_call_update", "usage_update",
            "available_commands_update"} <= kinds
