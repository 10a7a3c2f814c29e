"""In-process checks behind the command line's messages: the endpoint check, model errors as
the user reads them, summaries that agree with themselves, questions without a terminal, and
work-done progress that ends last."""

from __future__ import annotations

import asyncio
import io
import socket
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx2 as httpx
import pytest

from lsp_agent.client.errors import CliError, ExitCode
from lsp_agent.client.preflight import check_model_endpoint, endpoint_target
from lsp_agent.client.render import Renderer, describe_permission
from lsp_agent.client.run import REFUSED_FOR_AGENT, TerminalAnswers
from lsp_agent.context.cost import CostLedger
from lsp_agent.model.client import classify, explain
from lsp_agent.server.progress import TurnProgress
from lsp_agent.types import events as ev

# -- the endpoint check before a run ------------------------------------------------------------


def test_a_missing_key_for_anthropic_fails_without_touching_the_network():
    for env in ({}, {"ANTHROPIC_BASE_URL": "https://api.anthropic.com"}):
        with pytest.raises(CliError) as refused:
            check_model_endpoint(env, timeout=0.001)  # no time to connect anywhere
        assert refused.value.code == ExitCode.SETUP
        assert "ANTHROPIC_API_KEY" in str(refused.value)


def test_an_endpoint_that_listens_passes_and_needs_no_key_unless_it_is_anthropic():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        port = listening.getsockname()[1]
        check_model_endpoint({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"})


def test_an_endpoint_that_refuses_is_named_with_its_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens
    url = f"http://127.0.0.1:{port}/proxy"
    with pytest.raises(CliError) as refused:
        check_model_endpoint({"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "k"})
    assert refused.value.code == ExitCode.SETUP
    assert url in str(refused.value) and "connection refused" in str(refused.value)


def test_not_a_url_is_named():
    with pytest.raises(CliError, match="ANTHROPIC_BASE_URL must be an http"):
        endpoint_target({"ANTHROPIC_BASE_URL": "localhost:8080"})


def test_a_proxy_is_checked_in_place_of_the_endpoint_unless_no_proxy_says_otherwise():
    env = {"HTTPS_PROXY": "proxy.corp:3128", "ANTHROPIC_API_KEY": "k"}
    target = endpoint_target(env)
    assert (target.host, target.port, target.proxy) == ("proxy.corp", 3128,
                                                        "http://proxy.corp:3128")
    assert endpoint_target({**env, "NO_PROXY": ".anthropic.com"}).host == "api.anthropic.com"
    assert endpoint_target({**env, "no_proxy": "*"}).proxy is None


# -- model errors say what happened and what to change -------------------------------------------


def _status_error(status: int, body: Any) -> anthropic.APIStatusError:
    request = httpx.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx.Response(status, json=body, request=request)
    return anthropic.APIStatusError(f"Error code: {status} - {body}", response=response,
                                    body=body)


def test_an_unknown_model_is_explained_with_the_endpoints_words_and_the_fix():
    body = {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-x"}}
    failure = classify(_status_error(404, body))
    assert failure.kind == "not_found"
    assert failure.message == "model: claude-x (HTTP 404 not_found_error)"
    text = explain(failure, "claude-x")
    assert "'claude-x'" in text and "--model" in text and "{'type'" not in text


def test_a_refused_key_names_the_variable():
    body = {"type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    text = explain(classify(_status_error(401, body)), "m")
    assert "invalid x-api-key" in text and "ANTHROPIC_API_KEY" in text


def test_a_connection_failure_names_the_endpoint_and_the_cause():
    request = httpx.Request("POST", "http://10.1.2.3:8443/v1/messages")
    try:
        raise anthropic.APIConnectionError(request=request) from OSError("Network is unreachable")
    except anthropic.APIConnectionError as exc:
        failure = classify(exc)
    assert failure.kind == "transient"
    assert failure.message == ("cannot connect to the model endpoint http://10.1.2.3:8443: "
                               "Network is unreachable")


# -- summaries that agree with themselves -------------------------------------------------------


def _rendered(events: list[ev.AgentEvent], simulated: bool = False) -> str:
    out = io.StringIO()
    renderer = Renderer(out=out, color=False, simulated=simulated)
    for event in events:
        renderer(event)
    return out.getvalue()


def test_a_turn_whose_only_call_failed_reads_the_same_in_both_lines():
    text = _rendered([
        ev.TurnStarted(prompt="hi"), ev.ModelRequest(model="m", round=1),
        ev.ErrorEvent(kind="not_found", message="no such model"),
        ev.CostReport(turn=CostLedger().summary(), session=CostLedger().summary()),
        ev.TurnEnded(stop_reason="error", usage=ev.Usage(), rounds=1)])
    assert "(no model answered)" in text and "[error; 1 model call, failed]" in text
    assert "no model calls" not in text


def test_token_counts_include_the_cached_input():
    usage = ev.Usage(input_tokens=12, output_tokens=40, cache_read_input_tokens=3000,
                     cache_creation_input_tokens=300)
    text = _rendered([ev.TurnStarted(prompt="hi"), ev.ModelRequest(model="m", round=1),
                      ev.UsageReport(model="m", usage=usage),
                      ev.TurnEnded(stop_reason="end_turn", usage=usage, rounds=1)])
    assert ("[end_turn; 1 model call; tokens in 3312 (3000 read from cache, 300 written to "
            "cache), out 40]") in text


def test_cache_writes_not_yet_read_are_an_extra_cost_not_a_negative_saving():
    ledger = CostLedger()
    ledger.add("claude-sonnet-4-5", ev.Usage(input_tokens=10, cache_creation_input_tokens=3000))
    summary = ledger.summary()
    assert summary.cache_savings_usd < 0  # the data stays exact
    text = _rendered([ev.CostReport(turn=summary, session=summary)])
    assert "$-" not in text and "saved" not in text
    assert "cache writes cost $0.0022 extra so far" in text


def test_simulated_prices_say_so():
    ledger = CostLedger()
    ledger.add("claude-sonnet-4-5", ev.Usage(input_tokens=1000))
    summary = ledger.summary()
    assert _rendered([ev.CostReport(turn=summary, session=summary)], simulated=True) \
        .startswith("[cost, simulated: ")


def test_permission_lines_show_the_subject_not_a_python_dict():
    assert describe_permission({"tool": "Bash", "input": {"command": "touch made",
                                                          "description": "make it"}}) \
        == "Bash wants to run: touch made"
    assert describe_permission({"tool": "Write", "input": {"path": "/etc/x", "content": "y"}}) \
        == "Write wants to write: /etc/x"
    assert describe_permission({"tool": "Odd", "input": {"n": 1}}) \
        == 'Odd wants to act on: {"n": 1}'


# -- questions without a terminal ----------------------------------------------------------------


class NoTerminal:
    @staticmethod
    def available() -> bool:
        return False


async def test_without_a_terminal_a_question_is_refused_with_the_options_and_stdout_stays_clean():
    stdout, notes = io.StringIO(), io.StringIO()
    answers = TerminalAnswers(Renderer(out=stdout, as_json=True), yes=False, notes=notes,
                              terminal=NoTerminal())  # type: ignore[arg-type]
    answer = await answers.permission({"tool": "Bash", "input": {"command": "rm -r build"},
                                       "reason": "can change the system"})
    assert answer == {"decision": "deny", "message": REFUSED_FOR_AGENT}
    review = await answers.proposal(ev.ProposalCreated(proposal_id="p", tool_use_id="t",
                                                       files=[]))
    assert review["reject"] == "all"
    assert stdout.getvalue() == ""
    said = notes.getvalue()
    assert "? Bash wants to run: rm -r build" in said
    assert "--allow 'Bash(rm -r build)'" in said and "--permission-mode" in said
    assert "--yes" in said and "acceptEdits" in said


# -- work-done progress: the end comes last ------------------------------------------------------


class FakeProgress:
    def __init__(self) -> None:
        self.created: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent: list[str] = []

    async def create_async(self, token: str) -> None:
        await self.created

    def begin(self, token: str, value: Any) -> None:
        self.sent.append("begin")

    def report(self, token: str, value: Any) -> None:
        self.sent.append(f"report: {value.message}")

    def end(self, token: str, value: Any) -> None:
        self.sent.append(f"end: {value.message}")


def fake_server() -> Any:
    return SimpleNamespace(
        client_capabilities=SimpleNamespace(window=SimpleNamespace(work_done_progress=True)),
        work_done_progress=FakeProgress())


@pytest.mark.parametrize("steps", range(12))
async def test_a_report_never_follows_the_end_however_the_editor_answer_interleaves(steps):
    # The turn ends `steps` loop iterations after the editor accepted the progress token: one
    # of them lands between "the token exists" and "the report queued before it was sent".
    ls = fake_server()
    progress = TurnProgress(ls)
    progress.on_event(ev.TurnStarted(session_id="s", seq=1, prompt="fix it"))
    progress.on_event(ev.ToolExecutionStarted(session_id="s", tool_use_id="t", name="Read"))
    await asyncio.sleep(0)
    ls.work_done_progress.created.set_result(None)
    for _ in range(steps):
        await asyncio.sleep(0)
    progress.on_event(ev.TurnEnded(session_id="s", stop_reason="end_turn", usage=ev.Usage(),
                                   rounds=1))
    for _ in range(50):
        if ls.work_done_progress.sent[-1:] == ["end: finished: end_turn"]:
            break
        await asyncio.sleep(0)
    assert ls.work_done_progress.sent == ["begin", "report: running Read",
                                          "end: finished: end_turn"]
    assert progress.session_for("lsp-agent/s/1") is None, "forgotten once ended"
