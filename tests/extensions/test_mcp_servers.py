"""Real MCP servers (the ``mcp`` package's server side) as subprocesses over stdio and over
HTTP on 127.0.0.1, driven through our hub and tools: the faults of issue 11 included."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_agent.extensions.mcp_config import McpTrust, ServerSpec
from lsp_agent.extensions.mcp_hub import McpHub
from lsp_agent.extensions.mcp_tools import MAX_RAW_RESULT_CHARS, McpArgs, McpTool
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.rules import Rule
from lsp_agent.permissions.settings import Settings
from lsp_agent.tools.base import ToolError
from lsp_agent.types.permissions import PermissionAnswer
from tests.extensions.helpers import SERVER, config, free_port, stdio_spec, tool_context

WAIT = 60


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_AGENT_BACKOFF_BASE", "0.05")
    monkeypatch.setenv("MCP_TIMEOUT", "20000")


async def started(tmp_path: Path, *specs: ServerSpec, trust: McpTrust | None = None) -> McpHub:
    hub = McpHub(tmp_path, config(*specs, trust=trust), tmp_path / "logs")
    hub.start()
    await hub.wait_started(WAIT)
    return hub


def tool(hub: McpHub, name: str) -> McpTool:
    return next(t for t in hub.tools() if t.name == name)


async def test_stdio_server_tools_are_named_and_called(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("srv"))
    try:
        assert hub.status()[0]["state"] == "connected"
        names = {t.name for t in hub.tools()}
        assert {"mcp__srv__echo", "mcp__srv__add", "mcp__srv__hang"} <= names
        echo = tool(hub, "mcp__srv__echo")
        assert echo.api_schema()["input_schema"]["required"] == ["text"]
        out = await echo.call(McpArgs(text="hi"), tool_context(tmp_path))
        assert out.content == "echo: hi" and not out.is_error
        add = tool(hub, "mcp__srv__add")
        assert (await add.call(McpArgs(a=2, b=3), tool_context(tmp_path))).content == "5"
        image = await tool(hub, "mcp__srv__image").call(McpArgs(), tool_context(tmp_path))
        assert image.content.startswith("[image image/png")
    finally:
        await hub.close()
    assert hub.status()[0]["state"] == "stopped"


async def test_read_only_hint_is_concurrency_not_permission(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("srv"))
    try:
        echo, add = tool(hub, "mcp__srv__echo"), tool(hub, "mcp__srv__add")
        assert echo.is_concurrency_safe(McpArgs()) and not add.is_concurrency_safe(McpArgs())
        gate = PermissionGate(tmp_path)
        assert gate.evaluate(echo, McpArgs(text="x"), None).action == "ask"  # default: ask
        for text in ("mcp__srv", "mcp__srv__*", "mcp__srv__echo"):
            gate = PermissionGate(tmp_path, settings=Settings(allow=[Rule.parse(text)]))
            assert gate.evaluate(echo, McpArgs(text="x"), None).action == "allow", text
        gate = PermissionGate(tmp_path, settings=Settings(allow=[Rule.parse("mcp__srv__add")]))
        assert gate.evaluate(echo, McpArgs(), None).action == "ask"
        gate = PermissionGate(tmp_path, mode="bypassPermissions",
                              settings=Settings(deny=[Rule.parse("mcp__srv")]))
        assert gate.evaluate(echo, McpArgs(), None).action == "deny"
        assert gate.rules_for(echo, McpArgs(), None) == ["mcp__srv__echo"]
    finally:
        await hub.close()


async def test_server_environment_is_its_own_not_the_agents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    spec = ServerSpec("srv", "user", "test", "stdio", command=sys.executable, args=(SERVER,),
                      env={"GIVEN": "yes"})
    hub = await started(tmp_path, spec)
    try:
        env = tool(hub, "mcp__srv__env")
        ctx = tool_context(tmp_path)
        assert (await env.call(McpArgs(name="GIVEN"), ctx)).content == "yes"
        assert (await env.call(McpArgs(name="ANTHROPIC_API_KEY"), ctx)).content == "<unset>"
    finally:
        await hub.close()


async def test_crash_mid_call_is_an_error_then_the_server_restarts(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("srv"))
    try:
        with pytest.raises(ToolError, match="stopped during the call"):
            await tool(hub, "mcp__srv__crash").call(McpArgs(), tool_context(tmp_path))
        server = hub.servers["srv"]
        for _ in range(200):  # restarted with backoff: no event says when, poll
            if server.state == "connected" and server.restarts >= 1:
                break
            await asyncio.sleep(0.05)
        assert (server.state, server.restarts) == ("connected", 1)
        out = await tool(hub, "mcp__srv__echo").call(McpArgs(text="again"),
                                                     tool_context(tmp_path))
        assert out.content == "echo: again"
    finally:
        await hub.close()


async def test_server_that_does_not_start_is_failed_with_its_stderr(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("bad", "--fail"),
                        ServerSpec("nothere", "user", "t", "stdio",
                                   command="/nonexistent/mcp-server"))
    try:
        for _ in range(400):
            states = {s["name"]: s for s in hub.status()}
            if all(s["state"] == "failed" for s in states.values()):
                break
            await asyncio.sleep(0.05)
        assert states["bad"]["state"] == "failed"
        assert "configuration missing" in states["bad"]["error"]
        assert states["nothere"]["state"] == "failed"
        assert "/nonexistent/mcp-server" in states["nothere"]["error"]
        assert hub.tools() == []
    finally:
        await hub.close()


async def test_garbage_on_stdout_fails_within_the_startup_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TIMEOUT", "1500")
    hub = await started(tmp_path, stdio_spec("junk", "--garbage"))
    try:
        status = hub.status()[0]  # failed, or already starting again after a backoff
        assert status["state"] in ("failed", "starting") and status["tools"] == 0
        assert "did not answer within 1.5 s" in status["error"]
    finally:
        await hub.close()


async def test_hang_times_out_and_the_cancel_reaches_the_server(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("srv"))
    marker = tmp_path / "cancelled"
    try:
        hang = tool(hub, "mcp__srv__hang")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(hang.call(McpArgs(marker=str(marker)),
                                             tool_context(tmp_path)), 1.0)
        for _ in range(200):  # the server writes the marker when the cancel arrives
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.read_text() == "cancelled"
        out = await tool(hub, "mcp__srv__echo").call(McpArgs(text="still"),
                                                     tool_context(tmp_path))
        assert out.content == "echo: still"  # the connection survived the cancel
    finally:
        await hub.close()


async def test_large_result_is_cut_before_it_spreads(tmp_path: Path) -> None:
    hub = await started(tmp_path, stdio_spec("srv"))
    try:
        out = await tool(hub, "mcp__srv__huge").call(McpArgs(megabytes=3),
                                                     tool_context(tmp_path))
        assert len(out.content) < MAX_RAW_RESULT_CHARS + 200
        assert "cut at" in out.content
    finally:
        await hub.close()


async def test_50_mb_result_is_a_clear_timeout_and_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The mcp package reads one huge line in quadratic time: the call's bound ends it.
    monkeypatch.setenv("MCP_TOOL_TIMEOUT", "2000")
    hub = await started(tmp_path, stdio_spec("srv"))
    try:
        huge = tool(hub, "mcp__srv__huge")
        with pytest.raises(ToolError, match="did not answer huge within 2 s"):
            await huge.call(McpArgs(megabytes=50), tool_context(tmp_path))
        server = hub.servers["srv"]
        for _ in range(400):
            if server.state == "connected" and server.restarts >= 1:
                break
            await asyncio.sleep(0.05)
        assert (server.state, server.restarts) == ("connected", 1)
    finally:
        await hub.close()


async def test_unapproved_project_server_starts_nothing_until_approved(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    spec = ServerSpec("proj", "project", str(tmp_path / ".mcp.json"), "stdio",
                      command="sh", args=("-c", f"touch {marker}; exec {sys.executable} "
                                          f"{SERVER}"))
    hub = McpHub(tmp_path, config(spec), tmp_path / "logs")
    hub.start()
    asked = []

    async def deny(event):
        asked.append(event)
        return PermissionAnswer("deny")

    hub.ask_approvals(deny)
    await asyncio.sleep(0.5)  # give a wrongly started process the time to show itself
    assert hub.status()[0]["state"] == "needs_approval"
    assert not marker.exists()
    assert len(asked) == 1 and f"touch {marker}" in asked[0].input["command"]

    async def allow(event):
        return PermissionAnswer("allow", remember="project")

    hub._asking = None
    hub.ask_approvals(allow)
    try:
        for _ in range(400):
            if hub.status()[0]["state"] == "connected":
                break
            await asyncio.sleep(0.05)
        assert hub.status()[0]["state"] == "connected" and marker.exists()
        local = (tmp_path / ".lsp-agent" / "settings.local.json").read_text()
        assert '"proj"' in local  # remembered: the next session starts it without asking
    finally:
        await hub.close()


async def test_disabled_project_server_is_reported_disabled(tmp_path: Path) -> None:
    spec = stdio_spec("proj", scope="project")
    hub = McpHub(tmp_path, config(spec, trust=McpTrust(enable_all=True, disabled={"proj"})),
                 tmp_path / "logs")
    hub.start()
    assert hub.status()[0]["state"] == "disabled"
    with pytest.raises(ToolError, match="disabled"):
        await hub.servers["proj"].call_tool("echo", {}, 5)
    # Approving from the editor's view does not override the settings' "disabled".
    assert hub.approve("proj", remember=True)["state"] == "disabled"
    assert not (tmp_path / ".lsp-agent").exists()


async def test_streamable_http_server_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER, "--http", str(port)],  # noqa: ASYNC220
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # no signal says when the port is open: poll
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        spec = ServerSpec("web", "user", "t", "http", url=f"http://127.0.0.1:{port}/mcp",
                          headers={"X-Test": "1"})
        hub = await started(tmp_path, spec)
        try:
            assert hub.status()[0]["state"] == "connected", hub.status()
            out = await tool(hub, "mcp__web__echo").call(McpArgs(text="over http"),
                                                         tool_context(tmp_path))
            assert out.content == "echo: over http"
        finally:
            await hub.close()
    finally:
        proc.kill()
        proc.wait()


async def test_tools_are_refreshed_when_the_server_says_they_changed(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    hub = McpHub(tmp_path, config(stdio_spec("srv")), tmp_path / "logs",
                 lambda tools: seen.append([t.name for t in tools]))
    hub.start()
    await hub.wait_started(WAIT)
    try:
        assert "mcp__srv__grown" not in {t.name for t in hub.tools()}
        await tool(hub, "mcp__srv__grow").call(McpArgs(), tool_context(tmp_path))
        for _ in range(200):  # the change arrives as a notification: poll for its effect
            if "mcp__srv__grown" in {t.name for t in hub.tools()}:
                break
            await asyncio.sleep(0.05)
        assert "mcp__srv__grown" in seen[-1]
        out = await tool(hub, "mcp__srv__grown").call(McpArgs(), tool_context(tmp_path))
        assert out.content == "grown tool"
    finally:
        await hub.close()
