"""Command line: ``serve`` (what editors launch), ``run`` (one headless turn), ``demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lsp_agent import __version__
from lsp_agent.types.permissions import MODES


def _setup_logging(level: str) -> None:
    # stdout carries the LSP stream: logs go to stderr (the editor's output channel).
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message at INFO; keep it to problems unless asked for debug.
    if level.lower() != "debug":
        for noisy in ("pygls", "uvicorn", "httpx2", "httpcore", "anthropic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    from lsp_agent.procs.environment import seal_server_secrets
    from lsp_agent.server.app import create_server

    seal_server_secrets()  # before anything can start a subprocess
    server = create_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        return server.start_tcp(host or "127.0.0.1", int(port))
    return server.start_io()  # 1 after exit without shutdown, as LSP asks


def cmd_run(args: argparse.Namespace) -> int:
    from lsp_agent.client.run import run_headless

    return run_headless(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from lsp_agent.client.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsp-agent", description="A coding agent in your editor")
    parser.add_argument("--version", action="version", version=f"lsp-agent {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("LSP_AGENT_LOG", "info"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    serve.add_argument("--stdio", action="store_true", help="(default) serve over stdio")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="serve over TCP, for debugging")
    serve.set_defaults(func=cmd_serve)

    run = sub.add_parser("run", help="one headless turn through the language server")
    run.add_argument("prompt")
    run.add_argument("--workspace", default=".", help="workspace folder (default: .)")
    run.add_argument("--json", action="store_true", help="print events as JSON lines")
    run.add_argument("--permission-mode", choices=MODES, default=None,
                     help="permission mode; default asks on the terminal")
    run.add_argument("--model", default=None)
    run.add_argument("--yes", action="store_true",
                     help="answer every question with yes (accept edits, allow commands)")
    for kind in ("allow", "ask", "deny"):
        run.add_argument(f"--{kind}", action="append", default=[], metavar="RULE",
                         help=f"{kind} rule such as 'Bash(npm test:*)' or 'Edit(src/**)'; "
                              "repeatable; ranks above project and user settings")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="offline demo against the scripted model server")
    demo.add_argument("--keep", action="store_true", help="keep the demo workspace")
    demo.add_argument("--fast", action="store_true", help="no pauses while streaming")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    return args.func(args)
