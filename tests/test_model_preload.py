"""The SDK client is built off the event loop, ahead of the first prompt (model/clients.py):
the server starts the build when the client sends ``agent/warmUp`` (or after ``initialized``
when asked to), the first prompt uses that client, and a failure of the build reaches the
caller at first use with its own error."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.model import clients as clients_module
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.clients import ClientPool, preload_when
from lsp_agent.model.service import ModelService

WAIT = 60.0


def settings(base_url: str = "http://127.0.0.1:9", key: str = "k") -> ModelSettings:
    return ModelSettings(model="m", api_key=key, base_url=base_url)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[ModelSettings]:
    """make_client as the pool calls it, recorded; the real one builds the client."""
    made: list[ModelSettings] = []
    real = clients_module.make_client

    def recorded(s: ModelSettings) -> Any:
        made.append(s)
        return real(s)

    monkeypatch.setattr(clients_module, "make_client", recorded)
    return made


async def test_awaiting_the_client_leaves_the_loop_free_while_it_is_built(monkeypatch):
    release = threading.Event()
    sentinel = object()

    def slow_build(s: ModelSettings) -> Any:
        release.wait(WAIT)
        return sentinel

    monkeypatch.setattr(clients_module, "make_client", slow_build)
    pool = ClientPool()
    waiting = asyncio.ensure_future(pool.client(settings()))
    ticks = 0
    for _ in range(5):  # the loop runs other work while the build is under way
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and not waiting.done()
    release.set()
    assert await asyncio.wait_for(waiting, WAIT) is sentinel


async def test_a_preloaded_client_is_the_one_every_service_uses(builds):
    pool = ClientPool()
    pool.preload(settings())
    assert pool.preloaded(settings())
    first = await ModelService(settings(), clients=pool).ready_client()
    second = await ModelService(settings(), clients=pool).ready_client()
    assert first is second
    assert len(builds) == 1
    # Another endpoint or key is another client.
    other = await ModelService(settings(key="k2"), clients=pool).ready_client()
    assert other is not first and len(builds) == 2


async def test_a_failed_build_is_raised_at_first_use_and_tried_again(monkeypatch):
    attempts: list[int] = []

    def failing(s: ModelSettings) -> Any:
        attempts.append(1)
        raise RuntimeError("the SDK is broken here")

    monkeypatch.setattr(clients_module, "make_client", failing)
    pool = ClientPool()
    pool.preload(settings())
    async with asyncio.timeout(WAIT):
        while pool.preloaded(settings()):  # noqa: ASYNC110 - until the preload has failed
            await asyncio.sleep(0.01)
    assert len(attempts) == 1
    service = ModelService(settings(), clients=pool)
    with pytest.raises(RuntimeError, match="the SDK is broken here"):
        await service.ready_client()
    assert len(attempts) == 2  # the first use tried again, and raised its own error
    with pytest.raises(RuntimeError, match="the SDK is broken here"):
        await service.ready_client()
    assert len(attempts) == 3


def test_the_synchronous_client_shares_the_pool(builds):
    pool = ClientPool()
    client = ModelService(settings(), clients=pool).client
    assert ModelService(settings(), clients=pool).client is client
    assert len(builds) == 1


@pytest.mark.parametrize(("value", "when"), [
    (None, "warmUp"), ("1", "initialized"), ("0", "off"), ("off", "off"),
    ("early", "start"), ("EARLY", "start"), ("nonsense", "warmUp")])
def test_the_environment_says_when_the_server_preloads(value, when):
    env = {} if value is None else {clients_module.PRELOAD_ENV: value}
    assert preload_when(env) == when


@pytest.mark.parametrize(("value", "moments"), [
    (None, ["warmUp"]), ("1", ["initialized", "warmUp"]), ("0", []),
    ("early", ["start", "initialized", "warmUp"])])
def test_a_setting_preloads_at_its_moment_and_every_later_one(value, moments):
    env = {} if value is None else {clients_module.PRELOAD_ENV: value}
    assert [m for m in clients_module.PRELOAD_MOMENTS
            if clients_module.preloads_at(m, env)] == moments


# -- through a real server ---------------------------------------------------------------------

def server_env(base_url: str, tmp_path: Path, preload: str) -> dict[str, str]:
    return {**os.environ, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key",
            "LSP_AGENT_STATE_DIR": str(tmp_path / "state"), "LSP_AGENT_LOG": "info",
            clients_module.PRELOAD_ENV: preload}


async def allow(params: dict[str, Any]) -> dict[str, Any]:
    return {"decision": "allow"}


async def reject(event: Any) -> dict[str, Any]:
    return {"reject": "all"}


def log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


async def wait_for_line(log: Path, text: str) -> str:
    async with asyncio.timeout(WAIT):
        while text not in (content := log_text(log)):  # noqa: ASYNC110 - a log file, no event
            await asyncio.sleep(0.05)
    return content


async def test_the_server_builds_the_client_after_initialized_and_the_prompt_uses_it(
        model, tmp_path):
    model.load({"turns": [{"content": "hello"}]})
    log = tmp_path / "server.log"
    client = AgentClient(tmp_path, lambda e: None, allow, reject,
                         env=server_env(model.base_url, tmp_path, "1"), server_log=log)
    await client.start()  # initialize, initialized: nothing about sessions yet
    try:
        before = await wait_for_line(log, "model client ready")
        assert "preloading the model client (at initialized)" in before
        assert model.requests == []
        session = await client.new_session()
        result = await client.prompt(session, "hi")
        assert result["stopReason"] == "end_turn"
        assert len(model.requests) == 1
    finally:
        await client.stop()
    assert log.read_text().count("building the model client") == 1  # the preloaded one


async def test_without_preload_the_first_session_starts_the_build(model, tmp_path):
    model.load({"turns": [{"content": "hello"}]})
    log = tmp_path / "server.log"
    client = AgentClient(tmp_path, lambda e: None, allow, reject,
                         env=server_env(model.base_url, tmp_path, "0"), server_log=log)
    await client.start()
    try:
        await client.request("agent/listSessions", {})  # answered after initialized was handled
        assert "building the model client" not in log_text(log)
        session = await client.new_session()
        await wait_for_line(log, "building the model client")
        result = await client.prompt(session, "hi")
        assert result["stopReason"] == "end_turn"
    finally:
        await client.stop()
    content = log.read_text()
    assert "preloading" not in content
    assert content.count("building the model client") == 1


async def test_by_default_the_server_waits_for_warm_up_before_it_builds_the_client(
        model, tmp_path):
    model.load({"turns": [{"content": "hello"}]})
    log = tmp_path / "server.log"
    env = server_env(model.base_url, tmp_path, "")
    del env[clients_module.PRELOAD_ENV]  # the default: an idle editor's server stays small
    client = AgentClient(tmp_path, lambda e: None, allow, reject, env=env, server_log=log)
    result = await client.start()
    try:
        assert "agent/warmUp" in result["capabilities"]["experimental"]["lspAgent"][
            "clientNotifications"]
        await client.request("agent/listSessions", {})  # answered after initialized was handled
        assert "building the model client" not in log_text(log)
        client._client.protocol.notify("agent/warmUp", {})
        content = await wait_for_line(log, "model client ready")
        assert "preloading the model client (at warmUp)" in content
        session = await client.new_session()
        assert (await client.prompt(session, "hi"))["stopReason"] == "end_turn"
    finally:
        await client.stop()
    assert log.read_text().count("building the model client") == 1  # the warmed-up one
