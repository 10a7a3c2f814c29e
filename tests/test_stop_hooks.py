"""Stop hooks that continue the turn: a blocking Stop hook makes the session run the agent
again with the hook's reason, at most MAX_STOP_CONTINUATIONS times per prompt. Real hook
subprocesses, a real Session, the scripted model server behind the real SDK."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from lsp_agent.client.render import Renderer
from lsp_agent.permissions.session_safety import MAX_STOP_CONTINUATIONS
from lsp_agent.scripted.usage import canonical_json
from lsp_agent.types import events as ev
from tests.test_context_session import make_session, of

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")

# Records each payload, then blocks unless the turn already continues because of a Stop hook
# (the loop guard real hooks use). {how} picks exit code 2 or the JSON decision.
HOOK = """\
import json, sys
payload = json.load(sys.stdin)
with open("payloads.jsonl", "a") as out:
    out.write(json.dumps(payload) + "\\n")
if {block}:
    if "{how}" == "exit2":
        print("tests still fail: run pytest", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({{"decision": "block", "reason": "tests still fail: run pytest"}}))
"""


def install_hook(workspace: Path, block: str, how: str = "exit2", before: str = "") -> None:
    (workspace / "hook.py").write_text(before + HOOK.format(block=block, how=how))
    settings = workspace / ".lsp-agent" / "settings.local.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [
        {"type": "command", "command": f"{sys.executable} hook.py", "timeout": 30}]}]}}))


def payloads(workspace: Path) -> list[dict]:
    path = workspace / "payloads.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.mark.parametrize("how", ["exit2", "json"])
async def test_a_blocking_stop_hook_continues_the_turn_once(model, workspace, how):
    install_hook(workspace, 'not payload["stop_hook_active"]', how)
    model.load({"turns": [
        {"content": "all done"},
        {"content": "ran pytest: green", "expect": {"user_text_contains": "run pytest"}},
    ]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    ended = await session.prompt("fix the bug")
    assert [r["outcome"] for r in model.records] == ["ok", "ok"], "the model saw the reason"
    continued = model.requests[1]["messages"][-1]["content"][-1]["text"]
    assert "Stop hook" in continued and "tests still fail: run pytest" in continued
    assert [p["stop_hook_active"] for p in payloads(workspace)] == [False, True]
    assert all(p["hook_event_name"] == "Stop" and p["stop_reason"] == "end_turn"
               for p in payloads(workspace))
    starts, ends = of(events, ev.TurnStarted), of(events, ev.TurnEnded)
    assert [s.trigger for s in starts] == [None, "stop_hook"]
    assert [e.stop_reason for e in ends] == ["end_turn", "end_turn"]
    kinds = [e.type for e in events]
    first_end = kinds.index("turn_ended")
    assert kinds[first_end + 1] == "turn_started", "the next turn follows at once"
    assert kinds[-2:] == ["cost", "turn_ended"] and ended is ends[-1]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert session.context.current_request == "fix the bug", "the hook is not the request"
    assert not session.busy
    shown = io.StringIO()
    for event in events:
        Renderer(shown, color=False)(event)
    assert "(a Stop hook continues the turn: tests still fail: run pytest)" in shown.getvalue()


async def test_continuations_are_bounded_per_prompt(model, workspace):
    install_hook(workspace, "True")
    model.load({"turns": [{"content": f"done {i}"} for i in range(MAX_STOP_CONTINUATIONS + 1)]
               + [{"content": "next prompt"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    ended = await session.prompt("fix the bug")
    assert ended.stop_reason == "error"
    assert len(model.requests) == MAX_STOP_CONTINUATIONS + 1
    assert [p["stop_hook_active"] for p in payloads(workspace)] == \
        [False] + [True] * MAX_STOP_CONTINUATIONS
    error = of(events, ev.ErrorEvent)[-1]
    assert error.kind == "stop_hook_limit" and "tests still fail" in error.message
    assert [e.type for e in events][-2:] == ["error", "turn_ended"]
    assert [e.stop_reason for e in of(events, ev.TurnEnded)] == \
        ["end_turn"] * MAX_STOP_CONTINUATIONS + ["error"]
    # The bound is per prompt: the next prompt starts again with stop_hook_active false.
    await session.prompt("again")
    assert payloads(workspace)[MAX_STOP_CONTINUATIONS + 1]["stop_hook_active"] is False


async def test_a_stop_hook_that_does_not_block_changes_nothing(model, workspace):
    install_hook(workspace, "False")
    model.load({"turns": [{"content": "all done"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    ended = await session.prompt("fix the bug")
    assert ended.stop_reason == "end_turn" and len(model.requests) == 1
    assert len(of(events, ev.TurnStarted)) == 1 and of(events, ev.TurnEnded) == [ended]
    assert [p["stop_hook_active"] for p in payloads(workspace)] == [False]
    assert "stop-hook" not in canonical_json(model.requests[0])


async def test_continue_false_overrides_another_hooks_block(model, workspace):
    settings = workspace / ".lsp-agent" / "settings.local.json"
    settings.parent.mkdir()
    stop_now = """echo '{"continue": false, "stopReason": "enough"}'"""
    settings.write_text(json.dumps({"hooks": {"Stop": [
        {"hooks": [{"type": "command", "command": stop_now}]},
        {"hooks": [{"type": "command", "command": "echo keep going >&2; exit 2"}]}]}}))
    model.load({"turns": [{"content": "all done"}, {"content": "never"}]})
    session = make_session(model, workspace, [])
    assert (await session.prompt("go")).stop_reason == "end_turn"
    assert len(model.requests) == 1


async def test_cancel_while_a_stop_hook_runs_stops_it_without_continuing(model, workspace):
    install_hook(workspace, "True", before=(
        "import pathlib, time\npathlib.Path('started').touch()\ntime.sleep(30)\n"))
    model.load({"turns": [{"content": "all done"}, {"content": "never"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, workspace, events)
    turn = session.begin("fix the bug")
    for _ in range(500):  # until the hook runs (bounded: at most ~10 s)
        if (workspace / "started").exists():
            break
        await asyncio.sleep(0.02)
    assert (workspace / "started").exists()
    assert await session.cancel()
    ended = await turn
    assert ended.stop_reason == "end_turn" and len(model.requests) == 1
    assert len(of(events, ev.TurnStarted)) == 1 and not payloads(workspace)
