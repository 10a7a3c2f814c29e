"""Hooks, complete: the http and prompt types, the events added (SessionStart sources,
SessionEnd, Notification, PostToolUseFailure, SubagentStart/Stop), the ``if`` and ``once``
filters, the approval of a cloned repository's hooks, and plugins' hooks and agents.

Real hook scripts as subprocesses, http hooks against an http.server on 127.0.0.1, a real
Session with the real SDK against the scripted model server (prompt hooks' judge included)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions import hooks as hk
from lsp_agent.permissions.hook_kinds import expand_headers, parse_verdict
from lsp_agent.permissions.hook_trust import APPROVAL_KEY
from lsp_agent.permissions.settings import local_settings_path
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

MODEL = "claude-sonnet-4-5"
WAIT = 60.0
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")

# Appends its input to argv[1] (JSON lines); prints argv[2] when given.
RECORDER = """\
import json, sys
payload = json.load(sys.stdin)
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(payload) + "\\n")
if len(sys.argv) > 2:
    print(sys.argv[2])
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def recorder(ws: Path, log: str, printed: str = "") -> dict[str, Any]:
    script = ws.parent / "record_hook.py"
    if not script.exists():
        script.write_text(RECORDER)
    command = f"{sys.executable} {script} {ws.parent / log}"
    return {"type": "command", "command": command + (f" '{printed}'" if printed else "")}


def recorded(ws: Path, log: str) -> list[dict[str, Any]]:
    path = ws.parent / log
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def settings(ws: Path, hooks: dict[str, Any], where: str = "local") -> Path:
    path = {"local": local_settings_path(ws),
            "project": ws / ".claude" / "settings.json"}[where]
    return write(path, json.dumps({"hooks": hooks}))


class Asker:
    def __init__(self, decision: str = "allow", remember: Any = False):
        self.decision, self.remember = decision, remember
        self.asked: list[ev.PermissionAsked] = []

    async def __call__(self, asked: ev.PermissionAsked) -> PermissionAnswer:
        self.asked.append(asked)
        return PermissionAnswer(self.decision, remember=self.remember)  # type: ignore[arg-type]


def make_session(server: ScriptedModelServer, ws: Path, events: list[ev.AgentEvent],
                 asker: Any = None, mode: str = "bypassPermissions") -> Session:
    settings_ = ModelSettings(model=MODEL, fallback_model=None, api_key="k",
                              base_url=server.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    config = SessionConfig(workspace=ws, settings=settings_, mode=mode,  # type: ignore[arg-type]
                           state_dir=ws.parent / "state", user_memory_dirs=[])
    return Session(config, model=ModelService(settings_, client), tools=default_pool(),
                   documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                   applier=None, sink=events.append, asker=asker)  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def user_text(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


# -- configuration -----------------------------------------------------------------------------

def test_all_three_types_parse_and_unknown_ones_are_reported() -> None:
    table, warnings = hk.parse_config([("user", {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "true"},
        {"type": "http", "url": "http://127.0.0.1:9/h", "headers": {"A": "$X"},
         "allowedEnvVars": ["X"], "timeout": 5},
        {"type": "prompt", "prompt": "Is $ARGUMENTS safe?", "model": "m", "once": True},
        {"type": "agent", "prompt": "x"},
        {"type": "http", "url": "file:///etc/passwd"},
        {"type": "prompt"}]}]})])
    kinds = [(h.kind, h.command) for h in table["PreToolUse"][0].commands]
    assert kinds == [("command", "true"), ("http", "http://127.0.0.1:9/h"),
                     ("prompt", "Is $ARGUMENTS safe?")]
    http, prompt = table["PreToolUse"][0].commands[1:]
    assert http.allowed_env_vars == ("X",) and http.timeout == 5
    assert prompt.model == "m" and prompt.once
    assert len(warnings) == 3
    assert "'agent' is not supported" in warnings[0]
    assert "http:// or https://" in warnings[1] and "needs a string 'prompt'" in warnings[2]


def test_headers_expand_only_allowed_variables(monkeypatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "t0k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    out = expand_headers({"Authorization": "Bearer ${HOOK_TOKEN}", "X-Key": "$ANTHROPIC_API_KEY",
                          "X-Both": "${HOOK_TOKEN}-${ANTHROPIC_API_KEY}"}, ("HOOK_TOKEN",))
    assert out == {"Authorization": "Bearer t0k", "X-Both": "t0k-"}, "empty ones not sent"


def test_prompt_verdicts_are_read_from_the_first_ok_object() -> None:
    assert parse_verdict('{"ok": true}') == (True, "")
    assert parse_verdict('Sure. {"x": 1} {"ok": false, "reason": "no"} end') == (False, "no")
    assert parse_verdict("I think it is fine") is None


async def test_if_and_once_filters(tmp_path: Path) -> None:
    log = tmp_path / "log"
    command = f"echo x >> {log}"
    table, _ = hk.parse_config([("user", {"PreToolUse": [{"hooks": [
        {"type": "command", "command": command, "if": "Bash(git push:*)"},
        {"type": "command", "command": command, "once": True}]}]})])
    hooks = hk.Hooks(table, tmp_path)
    for line in ("git push origin", "ls", "git push -f"):
        await hooks.run("PreToolUse", {}, "Bash", {"command": line})
    # `if` matched the two pushes; `once` ran on the first call only.
    assert log.read_text().count("x") == 3


# -- http hooks --------------------------------------------------------------------------------

class HookEndpoint:
    """A local HTTP server that records each POST and answers with a configured reply."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status, self.reply, self.hang = 200, b"", threading.Event()
        self.stall = False
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.received.append((dict(self.headers), json.loads(body)))
                if endpoint.stall:
                    endpoint.hang.wait(30)
                self.send_response(endpoint.status)
                self.end_headers()
                self.wfile.write(endpoint.reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = HookEndpoint()
    yield server
    server.close()


def http_hooks(ws: Path, url: str, timeout: float = 10) -> hk.Hooks:
    table, warnings = hk.parse_config([("user", {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "http", "url": url, "timeout": timeout,
         "headers": {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Other": "${OTHER_SECRET}"},
         "allowedEnvVars": ["HOOK_TOKEN"]}]}]})])
    assert not warnings
    return hk.Hooks(table, ws, "s1")


async def test_an_http_hook_gets_the_input_and_its_json_decides(ws, endpoint, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "tok-1")
    monkeypatch.setenv("OTHER_SECRET", "must-not-leave")
    endpoint.reply = json.dumps({"hookSpecificOutput": {
        "permissionDecision": "deny", "permissionDecisionReason": "no pushes today"}}).encode()
    outcome = await http_hooks(ws, endpoint.url).run(
        "PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "git push"}},
        "Bash", {"command": "git push"})
    assert (outcome.decision, outcome.reason) == ("deny", "no pushes today")
    headers, body = endpoint.received[0]
    assert body["hook_event_name"] == "PreToolUse" and body["session_id"] == "s1"
    assert body["tool_input"] == {"command": "git push"}
    assert headers["Authorization"] == "Bearer tok-1"
    assert "X-Other" not in headers and "must-not-leave" not in json.dumps(headers)


async def test_http_failures_are_reported_and_ignored(ws, endpoint):
    endpoint.status, endpoint.reply = 500, b'{"decision": "block"}'
    outcome = await http_hooks(ws, endpoint.url).run("PreToolUse", {}, "Bash", {"command": "x"})
    assert outcome.decision is None and "HTTP 500" in outcome.messages[0]
    closed = await http_hooks(ws, "http://127.0.0.1:9/nothing-listens").run(
        "PreToolUse", {}, "Bash", {"command": "x"})
    assert closed.decision is None and "failed" in closed.messages[0]
    endpoint.status, endpoint.stall = 200, True
    slow = await http_hooks(ws, endpoint.url, timeout=0.5).run(
        "PreToolUse", {}, "Bash", {"command": "x"})
    assert slow.decision is None and "timed out" in slow.messages[0]


async def test_a_huge_http_answer_is_capped(ws, endpoint):
    endpoint.reply = b"x" * (hk.MAX_OUTPUT * 20)
    table, _ = hk.parse_config([("user", {"UserPromptSubmit": [{"hooks": [
        {"type": "http", "url": endpoint.url}]}]})])
    outcome = await hk.Hooks(table, ws).run("UserPromptSubmit", {"prompt": "p"})
    assert len(outcome.context[0]) == hk.MAX_OUTPUT, "plain text is context, capped"


# -- sessions: prompt hooks, events ----------------------------------------------------------

async def test_a_prompt_hook_blocks_a_prompt_through_the_small_model(model, ws):
    settings(ws, {"UserPromptSubmit": [{"hooks": [{
        "type": "prompt", "model": "claude-haiku-4-5",
        "prompt": "Refuse deploy requests on Fridays. Input: $ARGUMENTS"}]}]})
    model.load({"turns": [{"content": '{"ok": false, "reason": "no deploys on Friday"}'}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, ws, events)
    try:
        ended = await asyncio.wait_for(session.prompt("deploy to prod"), WAIT)
    finally:
        await session.close()
    assert ended.stop_reason == "error"
    [judge] = model.requests  # the main model was never asked
    assert judge["model"] == "claude-haiku-4-5" and not judge.get("tools")
    asked = judge["messages"][0]["content"][0]["text"]
    assert asked.startswith("Refuse deploy requests on Fridays. Input: {")
    assert '"prompt": "deploy to prod"' in asked, "$ARGUMENTS is the hook input"
    error = [e for e in events if isinstance(e, ev.ErrorEvent)][-1]
    assert error.kind == "hook_blocked" and "no deploys on Friday" in error.message


async def test_a_prompt_hook_that_says_ok_lets_the_prompt_through(model, ws):
    settings(ws, {"UserPromptSubmit": [{"hooks": [{"type": "prompt", "prompt": "Check it"}]}]})
    model.load({"sequencing": "sequential",
                "turns": [{"content": '{"ok": true}'}, {"content": "done"}]})
    session = make_session(model, ws, [])
    try:
        ended = await asyncio.wait_for(session.prompt("hello"), WAIT)
    finally:
        await session.close()
    assert ended.stop_reason == "end_turn" and len(model.requests) == 2
    assert "Hook input:" in user_text(model.requests[0]), "appended without $ARGUMENTS"


async def test_session_start_sources_and_session_end(model, ws):
    log = "session.log"
    settings(ws, {"SessionStart": [{"hooks": [recorder(ws, log, "Ticket ABC-7 is open")]}],
                  "SessionEnd": [{"hooks": [recorder(ws, log)]}]})
    model.load({"turns": [{"content": "ok"}]})
    session = make_session(model, ws, [])
    try:
        await asyncio.wait_for(session.prompt("one"), WAIT)
        await asyncio.wait_for(session.prompt("two"), WAIT)
        session.clear_conversation()
        await asyncio.wait_for(session.prompt("three"), WAIT)
        session.restore([], [], {}, None)
        await asyncio.wait_for(session.prompt("four"), WAIT)
    finally:
        await session.close()
    events = [(p["hook_event_name"], p.get("source") or p.get("reason")) for p in
              recorded(ws, log)]
    assert events == [("SessionStart", "startup"), ("SessionStart", "clear"),
                      ("SessionStart", "resume"), ("SessionEnd", "other")]
    first, second = model.requests[0], model.requests[1]
    assert "Ticket ABC-7 is open" in user_text(first)
    assert "Ticket ABC-7" not in json.dumps(second["messages"][-1]), "only at the start"


async def test_session_start_runs_again_after_a_compaction(model, ws):
    log = "compact.log"
    settings(ws, {"SessionStart": [{"hooks": [recorder(ws, log)]}]})
    model.load({"sequencing": "sequential", "turns": [
        {"content": "ok"}, {"content": "SUMMARY: the user said hi."}, {"content": "ok"}]})
    session = make_session(model, ws, [])
    try:
        await asyncio.wait_for(session.prompt("hi"), WAIT)
        assert await session.compact() is not None
        await asyncio.wait_for(session.prompt("again"), WAIT)
    finally:
        await session.close()
    assert [p["source"] for p in recorded(ws, log)] == ["startup", "compact"]


async def test_post_tool_use_failure_instead_of_post_tool_use(model, ws):
    log = "tools.log"
    settings(ws, {"PostToolUse": [{"matcher": "Read|Bash", "hooks": [recorder(ws, log)]}],
                  "PostToolUseFailure": [{"matcher": "Read|Bash", "hooks": [
                      recorder(ws, log, json.dumps({"hookSpecificOutput": {
                          "additionalContext": "the build log is in build.txt"}}))]}]})
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Read", "input": {"path": "missing.txt"}}]},
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "echo fine"}}]},
        {"content": "done"}]})
    session = make_session(model, ws, [])
    try:
        await asyncio.wait_for(session.prompt("build"), WAIT)
    finally:
        await session.close()
    failed, passed = recorded(ws, log)
    assert failed["hook_event_name"] == "PostToolUseFailure"
    assert failed["tool_input"]["path"] == "missing.txt" and "missing.txt" in failed["error"]
    assert passed["hook_event_name"] == "PostToolUse"
    assert "fine" in passed["tool_response"]["content"]
    failed_result = model.requests[1]["messages"][-1]["content"][0]
    assert failed_result["is_error"]
    assert "PostToolUseFailure hook: the build log is in build.txt" in json.dumps(failed_result)


async def test_notifications_for_questions_and_idleness(model, ws, monkeypatch):
    monkeypatch.setenv("LSP_AGENT_IDLE_NOTIFY_SECONDS", "0")
    log = "notify.log"
    settings(ws, {"Notification": [{"hooks": [recorder(ws, log)]}]})
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Bash", "input": {"command": "touch made"}}]},
        {"content": "done"}]})
    asker = Asker("allow")
    session = make_session(model, ws, [], asker, mode="default")
    try:
        await asyncio.wait_for(session.prompt("make it"), WAIT)
        for _ in range(600):  # the idle notification follows the turn in the background
            if len(recorded(ws, log)) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await session.close()
    kinds = [(p["notification_type"], p["message"]) for p in recorded(ws, log)]
    assert kinds[0] == ("permission_prompt", "lsp-agent needs your permission to use Bash")
    assert kinds[1] == ("idle_prompt", "lsp-agent is waiting for your input")
    assert asker.asked and (ws / "made").exists()


async def test_subagent_start_adds_context_and_stop_is_told(model, ws):
    log = "agents.log"
    settings(ws, {"SubagentStart": [{"hooks": [recorder(ws, log, "Use the staging DB")]}],
                  "SubagentStop": [{"hooks": [recorder(ws, log)]}]})
    child = {"system_contains": "You are a subagent of lsp-agent"}
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Agent", "input": {
            "description": "check db", "prompt": "Check the database.",
            "subagent_type": "general-purpose"}}],
         "when": [{**child, "content": "child: checked"}]},
        {"content": "All done."}]})
    session = make_session(model, ws, [])
    try:
        ended = await asyncio.wait_for(session.prompt("go"), WAIT)
    finally:
        await session.close()
    assert ended.stop_reason == "end_turn"
    start, stop = recorded(ws, log)
    assert start["hook_event_name"] == "SubagentStart"
    assert start["agent_type"] == "general-purpose" and start["agent_id"].startswith("agent-")
    assert stop["hook_event_name"] == "SubagentStop" and stop["agent_id"] == start["agent_id"]
    assert stop["stop_reason"] == "end_turn"
    child_request = next(b for b in model.requests
                         if "You are a subagent" in json.dumps(b["system"]))
    first = child_request["messages"][0]["content"]
    assert first[0]["text"] == "Check the database." and "Use the staging DB" in first[1]["text"]


# -- a cloned repository's hooks ----------------------------------------------------------------

async def prompt_once(model, ws: Path, asker: Any) -> None:
    model.load({"turns": [{"content": "ok"}]})
    session = make_session(model, ws, [], asker)
    try:
        await asyncio.wait_for(session.prompt("hello"), WAIT)
    finally:
        await session.close()


@pytest.mark.parametrize("kind", ["command", "http"])
async def test_project_hooks_run_only_after_approval(model, ws, endpoint, kind):
    log = "project.log"
    hook = recorder(ws, log) if kind == "command" else {
        "type": "http", "url": endpoint.url, "allowedEnvVars": ["HOOK_TOKEN"]}
    settings(ws, {"UserPromptSubmit": [{"hooks": [hook]}]}, where="project")

    def ran() -> int:
        return len(recorded(ws, log)) if kind == "command" else len(endpoint.received)

    await prompt_once(model, ws, None)  # nobody to ask: nothing runs
    assert ran() == 0
    declined = Asker("deny")
    await prompt_once(model, ws, declined)
    assert ran() == 0 and len(declined.asked) == 1
    question = declined.asked[0]
    assert question.tool == "hooks" and "UserPromptSubmit" in question.reason
    shown = hook["command"] if kind == "command" else f"POST {endpoint.url}"
    assert shown in question.reason
    if kind == "http":
        assert "sends env: HOOK_TOKEN" in question.reason
    approve = Asker("allow", remember="project")
    await prompt_once(model, ws, approve)
    assert ran() == 1
    assert json.loads(local_settings_path(ws).read_text())[APPROVAL_KEY]
    again = Asker("deny")
    await prompt_once(model, ws, again)  # remembered: runs without asking
    assert ran() == 2 and again.asked == []
    # A changed hook is another hook: asked again.
    settings(ws, {"UserPromptSubmit": [{"matcher": "", "hooks": [hook, hook]}]},
             where="project")
    changed = Asker("deny")
    await prompt_once(model, ws, changed)
    assert len(changed.asked) == 1 and ran() == 2


async def test_project_settings_cannot_approve_their_own_hooks(model, ws):
    log = "self.log"
    path = settings(ws, {"UserPromptSubmit": [{"hooks": [recorder(ws, log)]}]},
                    where="project")
    data = json.loads(path.read_text())
    from lsp_agent.permissions.hook_trust import fingerprint
    path.write_text(json.dumps({**data, APPROVAL_KEY: [fingerprint(data["hooks"])]}))
    await prompt_once(model, ws, None)
    assert recorded(ws, log) == []


# -- plugins -----------------------------------------------------------------------------------

def plugin(root: Path) -> Path:
    folder = root / "guard"
    write(folder / ".claude-plugin" / "plugin.json", json.dumps({"name": "guard"}))
    write(folder / "scripts" / "say.sh", "cat > \"$1\"\necho 'from the plugin'\n")
    write(folder / "hooks" / "hooks.json", json.dumps({"description": "x", "hooks": {
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command":
                                         "bash ${CLAUDE_PLUGIN_ROOT}/scripts/say.sh "
                                         "${CLAUDE_PLUGIN_ROOT}/seen.json"}]}]}}))
    write(folder / "agents" / "checker.md",
          "---\nname: checker\ndescription: Checks things\ntools: Read\n---\nYou check.\n")
    write(folder / "agents" / "broken.md", "no frontmatter at all")
    return folder


async def test_a_plugins_hooks_and_agents(model, ws):
    folder = plugin(ws / ".lsp-agent" / "plugins")
    write(local_settings_path(ws), json.dumps({"enabledPlugins": {"guard": True}}))
    model.load({"turns": [{"content": "ok"}]})
    session = make_session(model, ws, [])
    try:
        agent = session.delegation.catalog.get("guard:checker")
        assert agent is not None and agent.tools == ("Read",) and agent.prompt == "You check."
        assert any("broken.md" in w for w in session.delegation.catalog.warnings)
        await asyncio.wait_for(session.prompt("hello"), WAIT)
    finally:
        await session.close()
    seen = json.loads((folder / "seen.json").read_text())
    assert seen["hook_event_name"] == "UserPromptSubmit" and seen["prompt"] == "hello"
    assert "from the plugin" in user_text(model.requests[0])


async def test_a_disabled_plugin_adds_no_hooks_or_agents(model, ws):
    folder = plugin(ws / ".lsp-agent" / "plugins")
    model.load({"turns": [{"content": "ok"}]})
    session = make_session(model, ws, [])
    try:
        assert session.delegation.catalog.get("guard:checker") is None
        await asyncio.wait_for(session.prompt("hello"), WAIT)
    finally:
        await session.close()
    assert not (folder / "seen.json").exists()
