"""The benchmarks' client-side clock (model/round_clock.py): off, it marks nothing and leaves
the SDK's client alone; on, one request through the model service's stream marks each moment
of its way, in order, over real HTTP with the real SDK client."""

from __future__ import annotations

import asyncio

import pytest

from lsp_agent.model import round_clock
from lsp_agent.model.raw_stream import open_stream
from tests.test_raw_stream import (
    FIELDS,
    TIMEOUT,
    CannedServer,
    block,
    client_for,
    ending,
    message_start,
    text_delta,
)


@pytest.fixture(autouse=True)
def clock_off():
    round_clock.enable(None)
    yield
    round_clock.enable(None)


ANSWER = message_start() + block(0, {"type": "text", "text": ""}, text_delta("hi")) \
    + ending("end_turn", {"output_tokens": 3})


async def one_request(base_url: str) -> None:
    client = client_for(base_url)
    try:
        async with asyncio.timeout(TIMEOUT):
            stream = await open_stream(client, FIELDS)
            try:
                async for _ in stream:
                    pass
                await stream.get_final_message()
            finally:
                await stream.close()
    finally:
        await client.close()


async def test_off_it_marks_nothing_and_leaves_the_client_alone(tmp_path):
    assert not round_clock.enabled()
    client = client_for("http://127.0.0.1:9")
    round_clock.instrument(client)
    assert client._client.event_hooks["request"] == []
    await client.close()
    async with CannedServer(ANSWER) as server:
        await one_request(server.base_url)
    assert list(tmp_path.iterdir()) == []


async def test_on_a_request_marks_each_moment_of_its_way_in_order(tmp_path):
    marks = tmp_path / "marks"
    round_clock.enable(marks)
    async with CannedServer(ANSWER) as server:
        await one_request(server.base_url)
        await one_request(server.base_url)
    read = round_clock.read(marks)
    names = [name for name, _, _ in read]
    assert names == list(round_clock.MARKS) * 2
    moments = [(s, cpu) for name, s, cpu in read if name != round_clock.EVENTS_HANDLED]
    assert moments == sorted(moments)  # wall and CPU clocks both only go forward
    handled = [s for name, s, _ in read if name == round_clock.EVENTS_HANDLED]
    assert all(0 <= s < TIMEOUT for s in handled)  # a duration, not a moment


def test_a_torn_last_line_is_skipped(tmp_path):
    marks = tmp_path / "marks"
    marks.write_text("request_handed 1.5 0.25\nresponse_re")
    assert round_clock.read(marks) == [("request_handed", 1.5, 0.25)]
