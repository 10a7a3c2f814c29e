"""MCP through the agent (issue 11's performance targets).

1. Call overhead: p50 of an ``echo`` call through our tool (McpTool -> McpServer -> the mcp
   client) minus p50 of the same call with the bare ``mcp`` client, same server, same machine.
2. Fixed request overhead: characters (and ~tokens at 4 characters a token) that 5 servers x 20
   tools add to every request's ``tools`` once their schemas are deferred behind ToolSearch.
3. Start-up: how long creating a session and answering its first (built-in) prompt takes while
   5 stdio servers start in the background, against the servers' own start-up time.

    python bench/bench_mcp.py [-n 300]

Results: bench/results/mcp.json and lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import run_facts  # noqa: E402
from lsp_agent.extensions.mcp_config import McpConfig, ServerSpec  # noqa: E402
from lsp_agent.extensions.mcp_hub import McpHub  # noqa: E402
from lsp_agent.tools.pool import default_pool, session_pool  # noqa: E402

SERVER = str(ROOT / "tests" / "extensions" / "mcp_test_server.py")


def spec(name: str, tools: int = 0) -> ServerSpec:
    args = (SERVER, "--tools", str(tools)) if tools else (SERVER,)
    return ServerSpec(name, "user", "bench", "stdio", command=sys.executable, args=args)


async def call_overhead(n: int, folder: Path) -> dict[str, float]:
    from mcp import Client, StdioServerParameters

    bare: list[float] = []
    async with Client(StdioServerParameters(command=sys.executable, args=[SERVER])) as client:
        for i in range(n + 20):
            start = time.perf_counter()
            await client.call_tool("echo", {"text": "x"})
            if i >= 20:
                bare.append(time.perf_counter() - start)
    hub = McpHub(folder, McpConfig(servers={"b": spec("b")}), folder / "logs")
    hub.start()
    await hub.wait_started(60)
    tool = next(t for t in hub.tools() if t.name == "mcp__b__echo")
    ours: list[float] = []
    try:
        for i in range(n + 20):
            start = time.perf_counter()
            args = tool.input_model.model_validate({"text": "x"})
            await tool.call(args, None)  # type: ignore[arg-type]
            if i >= 20:
                ours.append(time.perf_counter() - start)
    finally:
        await hub.close()
    p50_bare, p50_ours = statistics.median(bare), statistics.median(ours)
    return {"bare_p50_ms": p50_bare * 1000, "ours_p50_ms": p50_ours * 1000,
            "added_p50_ms": (p50_ours - p50_bare) * 1000}


async def request_overhead(folder: Path) -> dict[str, float]:
    from lsp_agent.extensions.session_ext import SessionExtensions

    base = session_pool(default_pool())
    before = len(json.dumps(base.api_schemas()))
    hub = McpHub(folder, McpConfig(servers={f"s{i}": spec(f"s{i}", 20) for i in range(5)}),
                 folder / "logs")
    pool = session_pool(default_pool())
    fake = SessionExtensions.__new__(SessionExtensions)
    fake._tools, fake.mcp = pool, hub  # only what _mcp_tools_changed uses
    hub._on_tools_changed = fake._mcp_tools_changed
    hub.start()
    await hub.wait_started(120)
    try:
        count = len(hub.tools())
        after = len(json.dumps(pool.api_schemas()))
    finally:
        await hub.close()
    return {"mcp_tools": count, "chars_added": after - before,
            "approx_tokens_added": (after - before) / 4}


async def startup(folder: Path) -> dict[str, float]:
    import anthropic

    from lsp_agent.model.client import ModelSettings
    from lsp_agent.model.service import ModelService
    from lsp_agent.sessions.session import Session, SessionConfig
    from lsp_agent.workspace.diagnostics import DiagnosticsStore
    from lsp_agent.workspace.documents import DiskDocuments

    ws = folder / "ws"
    ws.mkdir()
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.local.json").write_text(json.dumps({"mcpServers": {
        f"s{i}": {"command": sys.executable, "args": [SERVER]} for i in range(5)}}))
    settings = ModelSettings(model="m", api_key="k", base_url="http://127.0.0.1:9")
    start = time.perf_counter()
    session = Session(SessionConfig(workspace=ws, settings=settings, state_dir=folder / "st",
                                    user_memory_dirs=[]),
                      model=ModelService(settings, anthropic.AsyncAnthropic(
                          api_key="k", base_url="http://127.0.0.1:9")),
                      tools=default_pool(), documents=DiskDocuments(),
                      diagnostics=DiagnosticsStore(), applier=None,  # type: ignore[arg-type]
                      sink=lambda e: None, asker=None)
    await session.prompt("/help")
    first_answer = time.perf_counter() - start
    await session.extensions.mcp.wait_started(120)
    all_connected = time.perf_counter() - start
    states = {s["state"] for s in session.extensions.mcp.status()}
    await session.extensions.close()
    return {"first_prompt_answered_s": first_answer, "servers_connected_s": all_connected,
            "states": sorted(states)}  # type: ignore[dict-item]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {"call": await call_overhead(args.n, folder),
                   "request": await request_overhead(folder),
                   "startup": await startup(folder), "meta": run_facts()}
    out = ROOT / "bench" / "results" / "mcp.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for part, values in results.items():
        if part == "meta":
            continue
        print(part, json.dumps(values))


if __name__ == "__main__":
    asyncio.run(main())
