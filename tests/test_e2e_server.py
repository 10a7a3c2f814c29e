"""End to end: the real server over stdio, the real SDK over HTTP, a test editor as the client."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pygls.exceptions import (
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
    JsonRpcRequestCancelled,
)

from lsp_agent.agent.loop import CONTINUE_PROMPT
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.types import events as ev
from tests.e2e_harness import (
    Editor,
    demo_project,
    start_editor,
    unique_duration,
    uri,
    wait_for_processes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, root):
    ed = await start_editor(model.base_url, root)
    yield ed
    await ed.client.shutdown_session()


@pytest.fixture
def workspace(root, request) -> Path:
    return demo_project(root / request.node.name)


def run_unittests(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unittest", "-q", "test_pricing"], cwd=workspace,
                          capture_output=True, text=True, timeout=60, check=False)


def demo_scenario() -> dict:
    path = Path(str(resources.files("lsp_agent") / "scenarios" / "fix_failing_test.json"))
    return json.loads(path.read_text())


def text_turn(text: str, **extra) -> dict:
    return {"content": text, **extra}


def tool_turn(name: str, tool_input: dict, text: str = "", **extra) -> dict:
    content = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "tool_use", "name": name, "input": tool_input}]
    return {"content": content, **extra}


def assert_consistent(messages: list[dict]) -> None:
    """Roles alternate from the user, and every tool_use is answered in the next message."""
    assert messages[0]["role"] == "user"
    for prev, cur in itertools.pairwise(messages):
        assert prev["role"] != cur["role"], "roles must alternate"
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant" or isinstance(msg["content"], str):
            continue
        uses = {b["id"] for b in msg["content"] if b["type"] == "tool_use"}
        if not uses:
            continue
        answers = {b["tool_use_id"] for b in messages[i + 1]["content"]
                   if b["type"] == "tool_result"}
        assert uses == answers, f"unanswered tool uses: {uses - answers}"


# -- the fix-this flow ---------------------------------------------------------------------


async def test_fix_with_agent_from_code_action_to_green_tests(editor: Editor, model, workspace):
    model.load(demo_scenario())
    assert run_unittests(workspace).returncode != 0
    editor.add_folder(workspace)  # a multi-root window: the fix runs in the file's folder
    pricing = workspace / "pricing.py"
    diagnostic = lsp.Diagnostic(
        range=lsp.Range(start=lsp.Position(line=19, character=4),
                        end=lsp.Position(line=19, character=34)),
        message="test_quarter_off fails: AssertionError -1920.0 != 60.0", source="unittest",
        severity=lsp.DiagnosticSeverity.Error)
    actions = await editor.client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(pricing)),
        range=diagnostic.range, context=lsp.CodeActionContext(diagnostics=[diagnostic])))
    fix = next(a for a in actions if a.title.startswith("Fix with agent"))
    assert fix.kind == lsp.CodeActionKind.QuickFix and fix.command is None  # filled on resolve
    resolved = await editor.client.code_action_resolve_async(fix)
    assert resolved.command.command == "lspAgent.fix"

    result = await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=resolved.command.command, arguments=resolved.command.arguments))
    session = result.sessionId if hasattr(result, "sessionId") else result["sessionId"]

    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    assert [h.id for f in created.files for h in f.hunks] == ["f1.h1"]
    assert "+    return price - price * percent / 100" in created.files[0].diff
    assert "percent / 100" not in pricing.read_text(), "nothing is written before approval"

    review = await editor.request("agent/review",
                                  {"proposalId": created.proposal_id, "accept": "all"})
    assert review["applied"] == ["f1.h1"] and review["status"] == "accepted"
    ended = (await editor.wait_for(session, ev.TurnEnded))[0]
    assert ended.stop_reason == "end_turn"
    assert run_unittests(workspace).returncode == 0
    # The edit went out pinned (file not open: version null) and annotated as the agent's.
    change = editor.applied[-1]["documentChanges"][0]
    assert change["textDocument"] == {"uri": uri(pricing), "version": None}
    assert "lsp-agent" in editor.applied[-1]["changeAnnotations"]
    # The context reached the model: the diagnostic and the code around it.
    first = model.requests[0]["messages"][0]["content"]
    assert "test_quarter_off fails" in first[0]["text"] and "apply_discount" in first[0]["text"]
    # Permission for Bash was asked of the editor, with the command.
    assert editor.permission_requests[-1]["input"]["command"].startswith("python -m unittest")


async def test_rejection_with_feedback_reaches_the_model(editor: Editor, model, workspace):
    model.load(demo_scenario())
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "Fix the failing test please"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    review = await editor.request("agent/review", {
        "proposalId": created.proposal_id, "reject": "all", "feedback": "use a helper instead"})
    assert review["status"] == "rejected" and review["rejected"] == ["f1.h1"]
    result = await prompt
    assert result["stopReason"] == "end_turn"
    assert "percent / 100" not in (workspace / "pricing.py").read_text()
    last_results = [b for b in model.requests[-1]["messages"][-1]["content"]
                    if b["type"] == "tool_result"]
    assert "use a helper instead" in last_results[0]["content"]
    assert "rejected" in last_results[0]["content"]


# -- the user's typing is never lost --------------------------------------------------------


def edit_scenario(old: str, new: str) -> dict:
    return {"turns": [
        tool_turn("Edit", {"path": "pricing.py", "old_string": old, "new_string": new}),
        text_turn("done", expect={"tool_result_contains": "f1.h1"}),
    ]}


async def test_stale_proposal_is_rebased_onto_the_users_typing(editor: Editor, model, workspace):
    pricing = workspace / "pricing.py"
    model.load(edit_scenario("    return price - price * percent\n",
                             "    return price - price * percent / 100\n"))
    editor.open(pricing, version=7)
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "fix the discount"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    assert created.files[0].version == 7
    typed = editor.buffer(pricing).replace('"""Prices for the shop\'s checkout."""',
                                           '"""Prices for the checkout, typed by the user."""')
    version = editor.type_text(pricing, typed)
    review = await editor.request("agent/review",
                                  {"proposalId": created.proposal_id, "accept": ["f1.h1"]})
    assert review["applied"] == ["f1.h1"] and review["conflicts"] == []
    await prompt
    pinned = editor.applied[-1]["documentChanges"][0]["textDocument"]
    assert pinned == {"uri": uri(pricing), "version": version}
    for text in (editor.buffer(pricing), pricing.read_text()):
        assert "typed by the user" in text and "percent / 100" in text


async def test_conflicting_typing_is_reported_not_overwritten(editor: Editor, model, workspace):
    pricing = workspace / "pricing.py"
    scenario = edit_scenario("    return price - price * percent\n",
                             "    return price - price * percent / 100\n")
    scenario["turns"][1] = text_turn("I see it", expect={"tool_result_contains": "conflict"})
    model.load(scenario)
    editor.open(pricing, version=1)
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "fix the discount"}))
    created = (await editor.wait_for(session, ev.ProposalCreated))[0]
    users = editor.buffer(pricing).replace("    return price - price * percent\n",
                                           "    return price * (1 - percent / 100)\n")
    editor.type_text(pricing, users)
    applied_before = len(editor.applied)
    review = await editor.request("agent/review", {"proposalId": created.proposal_id,
                                                   "accept": "all"})
    assert review["conflicts"] == ["f1.h1"] and review["applied"] == []
    result = await prompt
    assert result["stopReason"] == "end_turn"
    assert len(editor.applied) == applied_before, "no edit is sent for a conflicting file"
    assert editor.buffer(pricing) == users
    tool_result = model.requests[-1]["messages"][-1]["content"][0]["content"]
    assert "price * (1 - percent / 100)" in tool_result  # the model sees the user's text


# -- recovery ------------------------------------------------------------------------------


async def test_mid_stream_overload_is_retried(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("Recovered answer.", faults=[
        {"stream_error": "overloaded_error", "after_events": 4, "times": 2}])]})
    session = await editor.new_session(workspace)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
    assert result["stopReason"] == "end_turn"
    retries = editor.of(session, ev.Retrying)
    assert [r.attempt for r in retries] == [1, 2]
    assert "Overloaded" in retries[0].reason
    assert len(model.requests) == 3
    assert not editor.of(session, ev.ModelFallback)


async def test_repeated_overloads_fall_back_to_the_fallback_model(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("From the fallback.", faults=[
        {"stream_error": "overloaded_error", "after_events": 2, "times": 3}])]})
    session = await editor.new_session(workspace, model="main-model")
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
    assert result["stopReason"] == "end_turn"
    fallback = editor.of(session, ev.ModelFallback)
    assert len(fallback) == 1 and fallback[0].from_model == "main-model"
    assert [r["model"] for r in model.requests] == ["main-model"] * 3 + [fallback[0].to_model]


async def test_max_tokens_answer_is_continued(editor: Editor, model, workspace):
    model.load({"turns": [
        text_turn("The first half of a long answer", stop_reason="max_tokens"),
        text_turn(" and its second half.", expect={"user_text_contains": "cut off"}),
    ]})
    session = await editor.new_session(workspace)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "explain"})
    assert result["stopReason"] == "end_turn" and result["rounds"] == 2
    text = "".join(e.text for e in editor.of(session, ev.TextDelta))
    assert text == "The first half of a long answer and its second half."
    assert model.requests[1]["messages"][-1]["content"][-1]["text"] == CONTINUE_PROMPT


async def test_max_tokens_gives_up_after_three_continuations(editor: Editor, model, workspace):
    model.load({"turns": [text_turn(f"part {i}", stop_reason="max_tokens") for i in range(5)]})
    session = await editor.new_session(workspace)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "explain"})
    assert result["stopReason"] == "error" and result["rounds"] == 4
    assert editor.of(session, ev.ErrorEvent)[0].kind == "max_tokens"


async def test_prompt_too_long_ends_the_turn_with_a_clear_error(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("never", faults=[{
        "http_status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"}])]})
    session = await editor.new_session(workspace)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "hi"})
    assert result["stopReason"] == "error"
    error = editor.of(session, ev.ErrorEvent)[0]
    assert error.kind == "prompt_too_long" and "context window" in error.message


# -- cancellation --------------------------------------------------------------------------


async def test_cancel_mid_stream_keeps_the_conversation_consistent(editor, model, workspace):
    model.load({"turns": [
        text_turn("word " * 400, delay_ms=20, chunk_chars=5),
        text_turn("Fresh answer.", expect={"user_text_contains": "second"}),
    ]})
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "first"}))
    await editor.wait_for(session, ev.TextDelta, count=3)
    assert (await editor.request("agent/cancel", {"sessionId": session})) == {"cancelled": True}
    assert (await prompt)["stopReason"] == "cancelled"
    streamed = "".join(e.text for e in editor.of(session, ev.TextDelta))
    assert 0 < len(streamed) < len("word " * 400)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "second"})
    assert result["stopReason"] == "end_turn"
    messages = model.requests[-1]["messages"]
    assert_consistent(messages)
    assert messages[1]["role"] == "assistant" and messages[1]["content"][0]["text"] == streamed


async def test_cancel_request_cancels_the_turn(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("slow " * 300, delay_ms=20, chunk_chars=5)]})
    session = await editor.new_session(workspace)
    future = asyncio.ensure_future(editor.client.protocol.send_request_async(
        "agent/prompt", {"sessionId": session, "text": "go"}, msg_id="prompt-to-cancel"))
    await editor.wait_for(session, ev.TextDelta, count=2)
    editor.client.protocol.notify("$/cancelRequest", lsp.CancelParams(id="prompt-to-cancel"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(future, 20)
    ended = (await editor.wait_for(session, ev.TurnEnded))[0]
    assert ended.stop_reason == "cancelled"
    listed = await editor.request("agent/listSessions", {})
    assert next(s for s in listed["sessions"] if s["sessionId"] == session)["busy"] is False


async def test_cancel_mid_shell_kills_the_process_group(editor, model, workspace):
    marker = unique_duration()  # found in the host's process table, even in a PID namespace
    model.load({"turns": [
        tool_turn("Bash", {"command": f"sleep {marker} & wait"}),
        text_turn("ok", expect={"tool_result_contains": "Cancelled"}),
    ]})
    session = await editor.new_session(workspace, mode="bypassPermissions")
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "sleep"}))
    assert await wait_for_processes(f"sleep {marker}", present=True)
    await editor.request("agent/cancel", {"sessionId": session})
    assert (await prompt)["stopReason"] == "cancelled"
    survivors = await wait_for_processes(marker, present=False)
    assert survivors == [], f"processes {survivors} survived the cancel"
    result = editor.of(session, ev.ToolResult)[-1]
    assert result.is_error and "Cancelled" in result.content
    await editor.request("agent/prompt", {"sessionId": session, "text": "again"})
    assert_consistent(model.requests[-1]["messages"])


# -- permissions ---------------------------------------------------------------------------


async def touch_with(editor: Editor, model, workspace: Path, policy, expect: dict) -> str:
    """A turn whose only tool call needs permission, answered by ``policy``."""
    model.load({"turns": [tool_turn("Bash", {"command": "touch created-by-agent"}),
                          text_turn("understood", expect=expect)]})
    with editor.answering(policy):
        session = await editor.new_session(workspace)
        result = await editor.request("agent/prompt", {"sessionId": session, "text": "touch"})
    assert result["stopReason"] == "end_turn"
    assert not (workspace / "created-by-agent").exists()
    return session


async def test_denied_permission_reaches_the_model_as_an_error(editor, model, workspace):
    async def deny(params):
        return {"decision": "deny", "message": "not today"}

    session = await touch_with(editor, model, workspace, deny,
                               {"tool_result_is_error": True, "tool_result_contains": "not today"})
    decided = editor.of(session, ev.PermissionDecided)[0]
    assert decided.decision == "deny" and decided.source == "user"


async def test_unanswered_permission_times_out_as_deny(editor, model, workspace):
    withdrawn = asyncio.Event()

    async def never(params):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # the server's $/cancelRequest closes the dialog
            withdrawn.set()
            raise

    session = await touch_with(editor, model, workspace, never,
                               {"tool_result_contains": "no answer"})
    assert editor.of(session, ev.PermissionDecided)[0].source == "timeout"
    await asyncio.wait_for(withdrawn.wait(), 30)


async def test_plan_mode_refuses_edits(editor: Editor, model, workspace):
    model.load({"turns": [
        tool_turn("Edit", {"path": "pricing.py", "old_string": "percent\n",
                           "new_string": "percent / 100\n"}),
        text_turn("planned", expect={"tool_result_contains": "Plan mode"}),
    ]})
    session = await editor.new_session(workspace, mode="plan")
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "plan"})
    assert result["stopReason"] == "end_turn"
    assert not editor.of(session, ev.ProposalCreated)


async def test_accept_edits_mode_applies_at_once(editor: Editor, model, workspace):
    model.load(edit_scenario("    return price - price * percent\n",
                             "    return price - price * percent / 100\n"))
    session = await editor.new_session(workspace)
    await editor.request("agent/setMode", {"sessionId": session, "mode": "acceptEdits"})
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "fix"})
    assert result["stopReason"] == "end_turn"
    assert editor.of(session, ev.ProposalCreated)[0].auto_apply is True
    assert "percent / 100" in (workspace / "pricing.py").read_text()


# -- robustness of the protocol ------------------------------------------------------------


async def test_bad_requests_get_json_rpc_errors_and_the_server_keeps_serving(editor, workspace):
    with pytest.raises(JsonRpcMethodNotFound):
        await editor.request("agent/noSuchMethod", {})
    for method, params, needle in [
        ("agent/prompt", {"text": "no session"}, "sessionId"),
        ("agent/prompt", {"sessionId": "nope", "text": "hi"}, "unknown session"),
        ("agent/prompt", [1, 2], "object"),
        ("agent/setMode", {"sessionId": "nope", "mode": "yolo"}, "mode"),
        ("agent/review", {"proposalId": "p-nope", "accept": "all"}, "unknown"),
        ("agent/newSession", {"workspaceUri": "file:///no/such/dir"}, "not an existing folder"),
    ]:
        with pytest.raises(JsonRpcInvalidParams) as info:
            await editor.request(method, params)
        assert needle in str(info.value), (method, str(info.value))
    assert await editor.new_session(workspace)


async def test_busy_session_refuses_a_second_prompt(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("slow " * 200, delay_ms=10, chunk_chars=5)]})
    session = await editor.new_session(workspace)
    first = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "one"}))
    await editor.wait_for(session, ev.TextDelta)
    with pytest.raises(Exception, match="already running"):
        await editor.request("agent/prompt", {"sessionId": session, "text": "two"})
    await editor.request("agent/cancel", {"sessionId": session})
    await first


async def test_hover_is_answered_while_a_turn_streams(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("streaming " * 300, delay_ms=20, chunk_chars=5)]})
    pricing = workspace / "pricing.py"
    editor.open(pricing)
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "talk"}))
    await editor.wait_for(session, ev.TextDelta)
    hover = await asyncio.wait_for(editor.client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(pricing)),
        position=lsp.Position(line=24, character=18))), 20)
    assert not editor.of(session, ev.TurnEnded), "hover must not wait for the turn"
    assert hover is not None and "apply_discount" in hover.contents.value
    await editor.request("agent/cancel", {"sessionId": session})
    await prompt


async def test_initialize_advertises_the_protocol(editor: Editor):
    capabilities = editor.init_result.capabilities
    advertised = plain(capabilities.experimental)["lspAgent"]
    assert advertised["protocolVersion"] == "1.1"
    assert "agent/prompt" in advertised["methods"]
    assert "agent/requestPermission" in advertised["clientRequests"]
    assert capabilities.code_action_provider.resolve_provider is True
    assert capabilities.hover_provider and capabilities.definition_provider  # Python features on


async def progress_of(editor: Editor, session: str, final_kind: str = "end") -> list:
    """The work-done progress reports of the session's turn, once its final kind arrived."""
    for _ in range(600):  # up to 30 s: the end report follows the prompt's answer
        for token, reports in editor.client.progress_reports.items():
            if str(token).startswith(f"lsp-agent/{session}/") and reports and \
                    reports[-1].kind == final_kind:
                return reports
        await asyncio.sleep(0.05)
    pytest.fail(f"no finished progress for {session}: {editor.client.progress_reports}")


async def test_turn_progress_shows_title_tools_and_end(editor: Editor, model, workspace):
    model.load({"turns": [tool_turn("Read", {"path": "pricing.py"}), text_turn("read it")]})
    session = await editor.new_session(workspace)
    await editor.request("agent/prompt", {"sessionId": session, "text": "Look at pricing"})
    reports = await progress_of(editor, session)
    begin, *middle, end = reports
    assert begin.kind == "begin" and begin.title == "lsp-agent: Look at pricing"
    assert begin.cancellable is True
    assert any(r.message == "running Read" for r in middle)
    assert end.message == "finished: end_turn"


async def test_cancelling_the_progress_cancels_the_turn(editor: Editor, model, workspace):
    model.load({"turns": [text_turn("long " * 300, delay_ms=20, chunk_chars=5)]})
    session = await editor.new_session(workspace)
    prompt = asyncio.ensure_future(editor.request(
        "agent/prompt", {"sessionId": session, "text": "talk"}))
    await editor.wait_for(session, ev.TextDelta, count=2)
    token = next(t for t in editor.client.progress_reports
                 if str(t).startswith(f"lsp-agent/{session}/"))
    editor.client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    assert (await prompt)["stopReason"] == "cancelled"


async def test_python_language_features_can_be_switched_off(model, root, workspace):
    other = await start_editor(model.base_url, root, pythonLanguageFeatures=False)
    try:
        caps = other.init_result.capabilities
        assert caps.hover_provider is None and caps.definition_provider is None
        assert caps.references_provider is None and caps.document_symbol_provider is None
        assert caps.workspace_symbol_provider is None
        pricing = workspace / "pricing.py"
        other.open(pricing)
        params = lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri(pricing)),
                                 position=lsp.Position(line=24, character=18))
        assert await other.client.text_document_hover_async(params) is None
        assert await other.new_session(workspace), "the agent itself still works"
    finally:
        await other.client.shutdown_session()


async def test_an_editor_that_never_applies_leaves_files_alone(model, root, workspace):
    other = await start_editor(model.base_url, root, applyEditTimeoutSeconds=1)
    other.stall_apply = True
    try:
        model.load({"turns": [
            tool_turn("Edit", {"path": "pricing.py",
                               "old_string": "    return price - price * percent\n",
                               "new_string": "    return price - price * percent / 100\n"}),
            text_turn("noted", expect={"tool_result_contains": "NOT applied"}),
        ]})
        session = await other.new_session(workspace)
        prompt = asyncio.ensure_future(other.request(
            "agent/prompt", {"sessionId": session, "text": "fix"}))
        created = (await other.wait_for(session, ev.ProposalCreated))[0]
        review = await other.request("agent/review",
                                     {"proposalId": created.proposal_id, "accept": "all"})
        assert review["status"] == "failed"
        assert "did not answer" in review["conflictDetails"][0]
        assert (await prompt)["stopReason"] == "end_turn"
        assert len(other.applied) == 2, "planned again once, then gave up"
        assert "percent / 100" not in (workspace / "pricing.py").read_text()
    finally:
        other.stall_apply = False
        await other.client.shutdown_session()
