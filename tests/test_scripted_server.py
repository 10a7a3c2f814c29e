"""The scripted model server, exercised through the real anthropic SDK (never mocked)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from lsp_agent.scripted.server import (
    EXHAUSTED_TEXT,
    MISMATCH_PREFIX,
    Scenario,
    ScenarioError,
    ScriptedModelServer,
)
from lsp_agent.scripted.usage import estimate_request_tokens

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "fixtures" / "scenarios"
MODEL = "claude-test-model"

ClientFactory = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture
def serve() -> Any:
    started: list[ScriptedModelServer] = []

    def start(scenario: Any) -> ScriptedModelServer:
        server = ScriptedModelServer(scenario)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., anthropic.AsyncAnthropic]]:
    clients: list[anthropic.AsyncAnthropic] = []

    def make(server: ScriptedModelServer, **options: Any) -> anthropic.AsyncAnthropic:
        options.setdefault("max_retries", 0)
        client = anthropic.AsyncAnthropic(api_key="test", base_url=server.base_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def tool_result(text: str, *, is_error: bool = False, tool_id: str = "toolu_x") -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": text, "is_error": is_error}
    return {"role": "user", "content": [block]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


async def final_message(
    client: anthropic.AsyncAnthropic, messages: list[dict[str, Any]], **extra: Any
) -> Any:
    async with client.messages.stream(
        model=MODEL, max_tokens=1024, messages=messages, **extra
    ) as stream:
        return await stream.get_final_message()


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


async def test_streams_a_text_turn(serve, client_for) -> None:
    server = serve({"turns": [{"content": "Hello from a scripted turn, in several chunks."}]})
    client = client_for(server)
    seen_text: list[str] = []
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=[user("hi")]) as stream:
        async for event in stream:
            if event.type == "text":
                seen_text.append(event.text)
        message = await stream.get_final_message()
    assert text_of(message) == "Hello from a scripted turn, in several chunks."
    assert len(seen_text) > 1  # the text really arrived as several deltas
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


async def test_wire_format_is_the_messages_api_event_sequence(serve) -> None:
    server = serve({"turns": [{"content": [{"type": "text", "text": "ok"}]}]})
    body = {"model": MODEL, "max_tokens": 10, "stream": True, "messages": [user("hi")]}
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{server.base_url}/v1/messages", json=body, headers={"x-api-key": "k"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    frames = [f for f in response.text.split("\n\n") if f]
    parsed = []
    for frame in frames:
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == event_line.removeprefix("event: ")
        parsed.append(data)
    assert [d["type"] for d in parsed] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = parsed[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["model"] == MODEL
    assert set(start["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    assert parsed[2]["content_block"] == {"type": "text", "text": ""}
    assert parsed[5]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert set(parsed[5]["usage"]) == {"output_tokens"}


async def test_tool_use_input_is_rebuilt_from_json_deltas(serve, client_for) -> None:
    tool_input = {"path": "src/calc.py", "lines": [1, 2, 3], "opts": {"note": "naïve ✓"}}
    turn = {"content": [{"type": "tool_use", "name": "Read", "input": tool_input}]}
    server = serve({"sequencing": "sequential", "turns": [turn, turn]})
    client = client_for(server)
    pieces: list[str] = []
    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[user("read it")]
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                pieces.append(event.delta.partial_json)
        first = await stream.get_final_message()
    second = await final_message(client, [user("read it")])

    assert len(pieces) >= 3
    assert json.loads("".join(pieces)) == tool_input
    block = first.content[0]
    assert block.type == "tool_use" and block.name == "Read" and block.input == tool_input
    assert first.stop_reason == "tool_use"
    assert block.id.startswith("toolu_")
    assert second.content[0].id != block.id


async def test_when_branches_on_the_previous_tool_result(serve, client_for) -> None:
    server = serve(SCENARIOS / "scripted_fix_calc.json")
    client = client_for(server)
    history = [
        user("please fix calc.py"),
        assistant("reading"),
        tool_result("def add(a, b):\n    return a - b"),
        assistant("testing"),
    ]
    passed = await final_message(client, [*history, tool_result("3 passed in 0.01s")])
    failed = await final_message(client, [*history, tool_result("1 failed, 2 passed")])
    broken = await final_message(client, [*history, tool_result("no pytest", is_error=True)])
    other = await final_message(client, [*history, tool_result("segmentation fault")])

    assert text_of(passed) == "All tests pass, nothing to fix."
    assert passed.stop_reason == "end_turn"
    # "1 failed, 2 passed" contains "passed" too: alternatives are tried in order.
    assert text_of(failed) == "All tests pass, nothing to fix."
    assert text_of(broken) == "The test command itself failed to run."
    assert text_of(other) == "The tool output was not what I expected."
    assert [r["alternative"] for r in server.records] == [1, 1, 0, None]


async def test_when_alternative_with_a_tool_use(serve, client_for) -> None:
    server = serve(SCENARIOS / "scripted_fix_calc.json")
    client = client_for(server)
    history = [user("fix"), assistant("a"), tool_result("def add"), assistant("b")]
    message = await final_message(client, [*history, tool_result("1 failed")])
    assert message.stop_reason == "tool_use"
    assert message.content[1].name == "Edit"
    expected = {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}
    assert message.content[1].input == expected


async def test_by_assistant_count_replays_the_turn_for_the_same_request(serve, client_for) -> None:
    server = serve({"turns": [{"content": "first"}, {"content": "second"}]})
    client = client_for(server)
    again = [await final_message(client, [user("hi")]) for _ in range(2)]
    later = await final_message(client, [user("hi"), assistant("first"), user("more")])
    assert [text_of(m) for m in again] == ["first", "first"]
    assert text_of(later) == "second"
    assert [r["turn"] for r in server.records] == [0, 0, 1]


async def test_sequential_advances_on_every_request(serve, client_for) -> None:
    server = serve(
        {"sequencing": "sequential", "turns": [{"content": "first"}, {"content": "second"}]}
    )
    client = client_for(server)
    texts = [text_of(await final_message(client, [user("hi")])) for _ in range(3)]
    assert texts == ["first", "second", EXHAUSTED_TEXT]
    assert [r["outcome"] for r in server.records] == ["ok", "ok", "exhausted"]


async def test_max_tokens_turn_is_continued_by_the_next_turn(serve, client_for) -> None:
    server = serve(
        {"turns": [{"content": "The answer is", "stop_reason": "max_tokens"}, {"content": " 42."}]}
    )
    client = client_for(server)
    partial = await final_message(client, [user("question")])
    assert partial.stop_reason == "max_tokens"
    rest = await final_message(client, [user("question"), assistant(text_of(partial))])
    assert text_of(partial) + text_of(rest) == "The answer is 42."


async def test_http_529_is_retried_by_the_sdk(serve, client_for) -> None:
    fault = {"http_status": 529, "error_type": "overloaded_error", "retry_after": 0.01}
    server = serve({"turns": [{"content": "recovered", "faults": [fault]}]})
    client = client_for(server, max_retries=2)
    message = await final_message(client, [user("hi")])
    assert text_of(message) == "recovered"
    assert [r["outcome"] for r in server.records] == ["http_error", "ok"]
    assert [r["turn"] for r in server.records] == [0, 0]


async def test_http_fault_body_and_headers_match_the_real_api(serve) -> None:
    fault = {"http_status": 529, "retry_after": 3, "times": 2}
    server = serve({"turns": [{"content": "x", "faults": [fault]}]})
    body = {"model": MODEL, "max_tokens": 10, "messages": [user("hi")]}
    async with httpx2.AsyncClient() as http:
        responses = [
            await http.post(f"{server.base_url}/v1/messages", json=body, headers={"x-api-key": "k"})
            for _ in range(3)
        ]
    assert [r.status_code for r in responses] == [529, 529, 200]
    error = responses[0].json()
    assert error["type"] == "error"
    assert error["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert responses[0].headers["retry-after"] == "3"
    assert responses[2].json()["content"] == [{"type": "text", "text": "x"}]


async def test_stream_error_event_raises_and_is_not_retried(serve, client_for) -> None:
    fault = {"stream_error": "overloaded_error", "after_events": 4}
    server = serve(
        {"turns": [{"content": "a long enough answer to need chunks", "faults": [fault]}]}
    )
    client = client_for(server, max_retries=3)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await final_message(client, [user("hi")])
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert len(server.records) == 1
    # The fault applied to one attempt only: the caller's own retry succeeds.
    message = await final_message(client, [user("hi")])
    assert text_of(message) == "a long enough answer to need chunks"


async def test_stream_error_sends_exactly_the_first_events(serve) -> None:
    fault = {"stream_error": "api_error", "message": "boom", "after_events": 3}
    server = serve({"turns": [{"content": "hello", "faults": [fault]}]})
    body = {"model": MODEL, "max_tokens": 10, "stream": True, "messages": [user("hi")]}
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{server.base_url}/v1/messages", json=body, headers={"x-api-key": "k"}
        )
    assert response.status_code == 200
    events = [frame.split("\n")[0] for frame in response.text.split("\n\n") if frame]
    assert events == [
        "event: message_start",
        "event: ping",
        "event: content_block_start",
        "event: error",
    ]
    last_data = response.text.strip().split("\n")[-1].removeprefix("data: ")
    assert json.loads(last_data) == {
        "type": "error",
        "error": {"type": "api_error", "message": "boom"},
    }


async def test_prompt_too_long_is_a_bad_request(serve, client_for) -> None:
    fault = {"http_status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"}
    server = serve({"turns": [{"content": "unused", "faults": [fault]}]})
    client = client_for(server, max_retries=2)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await final_message(client, [user("hi")])
    assert "prompt is too long" in str(caught.value)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert len(server.records) == 1  # a 400 is not retried


async def test_count_tokens_is_a_deterministic_size_estimate(serve, client_for) -> None:
    server = serve({"turns": []})
    client = client_for(server)
    short = [user("hi")]
    long = [user("hi " * 400)]
    first = await client.messages.count_tokens(model=MODEL, messages=short)
    again = await client.messages.count_tokens(model=MODEL, messages=short)
    bigger = await client.messages.count_tokens(model=MODEL, messages=long, system="be brief")
    assert first.input_tokens == again.input_tokens
    assert first.input_tokens == estimate_request_tokens({"messages": short})
    assert bigger.input_tokens > 250  # ~1200 characters of prompt
    assert server.records == []  # count_tokens is not a scripted turn


async def test_cache_reads_the_prefix_written_by_an_earlier_request(serve, client_for) -> None:
    server = serve({"sequencing": "sequential", "turns": [{"content": "a"}, {"content": "b"}]})
    client = client_for(server)
    tools = [
        {"name": "Read", "description": "Read a file " * 20, "input_schema": {"type": "object"}},
        {
            "name": "Edit",
            "description": "Edit a file " * 20,
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
    ]
    system = [
        {"type": "text", "text": "You are careful. " * 30, "cache_control": {"type": "ephemeral"}}
    ]
    first_messages = [user("first question")]
    second_messages = [user("a different, longer second question")]
    first = await final_message(client, first_messages, tools=tools, system=system)
    second = await final_message(client, second_messages, tools=tools, system=system)
    totals = [
        (
            await client.messages.count_tokens(model=MODEL, messages=m, tools=tools, system=system)
        ).input_tokens
        for m in (first_messages, second_messages)
    ]

    def parts(message: Any) -> tuple[int, int, int]:
        u = message.usage
        return u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens

    f_input, f_read, f_write = parts(first)
    s_input, s_read, s_write = parts(second)
    assert f_read == 0 and f_write > 0
    assert s_read == f_write and s_write == 0
    assert f_input + f_read + f_write == totals[0]
    assert s_input + s_read + s_write == totals[1]
    assert s_input > f_input  # only the uncached tail differs


async def test_cache_hit_on_an_earlier_breakpoint_that_moved(serve, client_for) -> None:
    """An agent loop puts its breakpoint on the newest message; the next request still reads
    the prefix cached at the old position."""
    server = serve({"turns": [{"content": "a"}, {"content": "b"}]})
    client = client_for(server)

    def marked(text: str) -> dict[str, Any]:
        block = {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
        return {"role": "user", "content": [block]}

    first = await final_message(client, [marked("step one " * 50)])
    second_messages = [user("step one " * 50), assistant("a"), marked("step two")]
    second = await final_message(client, second_messages)
    assert first.usage.cache_creation_input_tokens > 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens > 0  # the new tail is written
    assert second.usage.input_tokens == 0  # nothing after the last breakpoint


async def test_expect_mismatch_answers_with_a_readable_text(serve, client_for) -> None:
    server = serve(SCENARIOS / "scripted_fix_calc.json")
    client = client_for(server)
    history = [user("fix calc.py"), assistant("reading"), tool_result("No such file: calc.py")]
    message = await final_message(client, history)
    text = text_of(message)
    assert text.startswith(MISMATCH_PREFIX)
    assert "'def add'" in text and "No such file: calc.py" in text
    assert message.stop_reason == "end_turn"
    assert server.records[0]["outcome"] == "mismatch"
    assert "turn 1" in server.records[0]["mismatch"]


async def test_cancelled_stream_does_not_break_the_next_request(serve, client_for, caplog) -> None:
    slow_text = "slow words " * 10
    slow = {"content": slow_text, "chunk_chars": 5, "delay_ms": 10}
    server = serve({"sequencing": "sequential", "turns": [slow, {"content": "next turn"}]})
    client = client_for(server)
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=[user("hi")]) as stream:
        async for event in stream:
            if event.type == "text":
                break  # leaving the block closes the connection mid-stream
    # An interrupted response does not advance a sequential scenario: turn 0 is served again.
    clients = [client_for(server) for _ in range(3)]
    results = await asyncio.gather(*(final_message(c, [user("hi")]) for c in clients))
    assert [text_of(m) for m in results] == [slow_text] * 3
    assert text_of(await final_message(client, [user("hi")])) == "next turn"
    assert [r["turn"] for r in server.records] == [0, 0, 0, 0, 1]
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_many_concurrent_streams(serve, client_for) -> None:
    server = serve({"turns": [{"content": "concurrent answer", "chunk_chars": 3}]})
    client = client_for(server)
    results = await asyncio.gather(*(final_message(client, [user(str(i))]) for i in range(25)))
    assert {text_of(m) for m in results} == {"concurrent answer"}
    assert len(server.records) == 25


async def test_stall_fault_lets_the_sdk_time_out_and_retry(serve, client_for) -> None:
    # The stall far outlasts the timeout; the timeout leaves the retry ample time on a
    # loaded machine.
    fault = {"stall_ms": 20000}
    server = serve({"turns": [{"content": "after the stall", "faults": [fault]}]})
    client = client_for(server, max_retries=1, timeout=2.0)
    message = await final_message(client, [user("hi")])
    assert text_of(message) == "after the stall"
    assert [r["attempt"] for r in server.records] == [0, 1]
    assert server.records[0]["fault"] == {"stall_ms": 20000, "times": 1}


async def test_non_streaming_request_gets_a_json_message(serve, client_for) -> None:
    server = serve(
        {"turns": [{"content": [{"type": "tool_use", "name": "Grep", "input": {"q": "x"}}]}]}
    )
    client = client_for(server)
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=[user("hi")])
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {"q": "x"}
    assert message.stop_reason == "tool_use"
    assert server.records[0]["stream"] is False


async def test_requests_without_credentials_are_rejected(serve) -> None:
    server = serve({"turns": [{"content": "x"}]})
    body = {"model": MODEL, "max_tokens": 10, "messages": [user("hi")]}
    url = f"{server.base_url}/v1/messages"
    async with httpx2.AsyncClient() as http:
        anonymous = await http.post(url, json=body)
        with_key = await http.post(url, json=body, headers={"x-api-key": "anything"})
        with_bearer = await http.post(url, json=body, headers={"authorization": "Bearer t"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert with_key.status_code == 200 and with_bearer.status_code == 200
    assert len(server.records) == 2


async def test_malformed_request_gets_an_invalid_request_error(serve) -> None:
    server = serve({"turns": [{"content": "x"}]})
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{server.base_url}/v1/messages",
            json={"model": MODEL, "messages": []},
            headers={"x-api-key": "k"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


async def test_control_endpoints(serve, client_for) -> None:
    server = serve({"turns": [{"content": "old"}]})
    client = client_for(server)
    await final_message(client, [user("hi")])
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        recorded = (await http.get("/_scripted/requests")).json()["requests"]
        assert [(r["turn"], r["body"]["messages"]) for r in recorded] == [(0, [user("hi")])]

        replaced = await http.post("/_scripted/scenario", json={"turns": [{"content": "new"}]})
        assert replaced.json() == {"ok": True, "name": "scenario", "turns": 1}
        assert (await http.get("/_scripted/requests")).json()["requests"] == []
        assert text_of(await final_message(client, [user("hi")])) == "new"

        bad = await http.post("/_scripted/scenario", json={"turns": [{"contnet": "typo"}]})
        assert bad.status_code == 400 and "turns.0.contnet" in bad.json()["error"]["message"]

        await http.post("/_scripted/reset")
        assert (await http.get("/_scripted/requests")).json()["requests"] == []


def test_malformed_scenarios_are_explained(tmp_path: Path) -> None:
    bad_fault = tmp_path / "bad_fault.json"
    bad_fault.write_text(json.dumps({"turns": [{"content": "x", "faults": [{"times": 2}]}]}))
    with pytest.raises(ScenarioError, match=r"turns\.0\.faults\.0.*http_status, stream_error"):
        Scenario.from_file(bad_fault)

    not_json = tmp_path / "not_json.json"
    not_json.write_text('{"turns": [\n  {"content": "x",}\n]}')
    with pytest.raises(ScenarioError, match=r"not valid JSON.*line 2"):
        Scenario.from_file(not_json)

    with pytest.raises(ScenarioError, match="stop_reason"):
        Scenario.from_data({"turns": [{"content": "x", "stop_reason": "done"}]})


def test_fixture_scenarios_are_valid() -> None:
    files = sorted(SCENARIOS.glob("scripted_*.json"))
    assert files
    for path in files:
        assert Scenario.from_file(path).turns


def test_faults_apply_in_order_to_consecutive_attempts() -> None:
    turn = Scenario.from_data(
        {"turns": [{"faults": [{"http_status": 529, "times": 2}, {"stream_error": "api_error"}]}]}
    ).turns[0]
    kinds = [type(turn.fault_for_attempt(n)).__name__ for n in range(4)]
    assert kinds == ["HttpErrorFault", "HttpErrorFault", "StreamErrorFault", "NoneType"]


async def test_subprocess_mode_prints_listening_and_serves() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsp_agent.scripted.server",
        "--scenario",
        str(SCENARIOS / "scripted_text_only.json"),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        assert line.startswith("LISTENING http://127.0.0.1:")
        base_url = line.split()[1]
        client = anthropic.AsyncAnthropic(api_key="t", base_url=base_url, max_retries=0)
        async with client:
            message = await final_message(client, [user("hi")])
        assert text_of(message) == "Hello from the scripted model."
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_server_threads_stop_cleanly() -> None:
    before = threading.active_count()
    with ScriptedModelServer({"turns": []}) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
    assert threading.active_count() == before
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
