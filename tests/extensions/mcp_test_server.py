"""A real MCP server for the tests, written with the ``mcp`` package's server side.

    python mcp_test_server.py [--http PORT] [--tools N] [--name NAME]

Tools: ``echo`` (read-only), ``add``, ``crash`` (the process exits mid-call), ``hang`` (sleeps
until cancelled; writes a marker file when the cancel reaches it), ``huge`` (a result of N MB),
``image``, ``env`` (an environment variable's value); ``--tools N`` adds ``t0``..``tN-1``.
With ``--garbage`` it prints non-protocol text on stdout instead of serving; with
``--legacy-notify``, ``grow`` announces the change as protocol versions before 2026-07-28 did.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
from pathlib import Path

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp_types import ImageContent, ToolAnnotations


def build(name: str, extra_tools: int, legacy_notify: bool = False) -> MCPServer:
    server = MCPServer(name)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:
        """Echo the text back."""
        return f"echo: {text}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def crash() -> str:
        """Exit the server process in the middle of the call."""
        os._exit(3)

    @server.tool()
    async def hang(marker: str = "") -> str:
        """Sleep for an hour (until cancelled)."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if marker:
                Path(marker).write_text("cancelled")  # noqa: ASYNC240
            raise
        return "woke up"

    @server.tool()
    def huge(megabytes: int = 1) -> str:
        """A very large text result."""
        return "x" * (megabytes * 1_000_000)

    @server.tool()
    def image() -> ImageContent:
        """A small PNG."""
        return ImageContent(type="image", data=base64.b64encode(b"\x89PNG fake").decode(),
                            mime_type="image/png")

    @server.tool()
    def env(name: str) -> str:
        """The value of an environment variable of the server."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Add a tool named 'grown' and tell the client the list changed."""
        def grown() -> str:
            return "grown tool"
        server.add_tool(grown, name="grown", description="A tool added at run time.")
        if legacy_notify:  # how servers told clients on protocol versions before 2026-07-28
            await ctx.session.send_tool_list_changed()
        else:
            await ctx.notify_tools_changed()  # subscribers (protocol 2026-07-28)
        return "grew"

    @server.prompt()
    def summarize(topic: str, style: str = "short") -> str:
        """Ask for a summary of a topic."""
        return f"Summarize {topic} in a {style} way."

    @server.resource("test://greeting", mime_type="text/plain")
    def greeting() -> str:
        """A greeting text."""
        return "RESOURCE-TEXT: hello from the server"

    @server.resource("test://notes/readme", name="notes", mime_type="text/markdown")
    def notes() -> str:
        """The project's release notes."""
        return "NOTES-BODY: never listed, only read"

    for i in range(extra_tools):
        def make(i: int):
            def tool(x: int = 0) -> str:
                return f"t{i}:{x}"
            tool.__name__ = f"t{i}"
            tool.__doc__ = f"Generated tool number {i} for the many-tools test."
            return tool
        server.add_tool(make(i), name=f"t{i}")
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--tools", type=int, default=0)
    parser.add_argument("--name", default="test")
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--legacy-notify", action="store_true")
    args = parser.parse_args()
    if args.fail:
        print("cannot start: configuration missing", file=sys.stderr)
        sys.exit(1)
    if args.garbage:
        sys.stdout.write("this is not JSON-RPC\n{broken\n")
        sys.stdout.flush()
        sys.stdin.read()
        return
    server = build(args.name, args.tools, args.legacy_notify)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
