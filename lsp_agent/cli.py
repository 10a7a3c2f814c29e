"""Command line: ``serve`` (what editors launch), ``acp`` (the same over the Agent Client
Protocol), ``run`` (one headless turn), ``demo``.

A mistake on the command line (or in its input: a missing folder, an empty prompt, no API key)
is one line on stderr that says what to fix, never a traceback; the exit code says what
happened (lsp_agent/client/errors.py, README.md "Exit codes").
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

from lsp_agent import __version__
from lsp_agent.client.errors import CliError, ExitCode
from lsp_agent.types.permissions import MODES

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LOG_LEVEL = "info"
RUN_SERVER_LOG_LEVEL = "warning"  # run's server: problems only, unless a level was asked for

RUN_EPILOG = """\
exit codes:
  0    the turn finished
  1    the turn ended in an error (a model call failed after its retries, an internal error)
  2    bad command line or input (fix the arguments)
  3    the model cannot be used: no API key, endpoint unreachable, key refused, unknown model
  4    the agent stopped short: its round limit, or the model refused
  130  interrupted (Ctrl-C)

offline, no API key needed (from a checkout of the repository):
  cp -r lsp_agent/demo_project /tmp/shop
  lsp-agent run "The tests fail. Find the bug and fix it." --workspace /tmp/shop \\
      --scripted fix_failing_test --yes
"""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line: what is wrong, and where the help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _setup_logging(level: str) -> None:
    # stdout carries the LSP stream: logs go to stderr (the editor's output channel).
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message at INFO; keep it to problems unless asked for debug.
    if level.lower() != "debug":
        for noisy in ("pygls", "uvicorn", "httpx2", "httpcore", "anthropic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


# -- argument types: each turns a bad value into a one-line error naming the fix ------------------

def tcp_address(value: str) -> tuple[str, int]:
    host, colon, port = value.strip().rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:2087, or :2087 for 127.0.0.1)")
    return host, int(port)


def workspace_folder(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such folder: {value}")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a file; give the project's folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot open the folder {value} (permission denied)")
    return path


def plugin_folder(value: str) -> Path:
    """A plugin's folder, absolute: the server runs elsewhere."""
    return workspace_folder(value).resolve()


def prompt_text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError(
            "the prompt is empty: say what the agent should do, e.g. "
            "lsp-agent run \"why does test_total fail?\"")
    return value


def log_level(value: str) -> str:
    if value.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not a log level "
                                         f"(one of {', '.join(LOG_LEVELS)})")
    return value.lower()


# -- commands --------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from lsp_agent.procs.environment import seal_server_secrets
    from lsp_agent.server import generated_code_cache, start_gc

    generated_code_cache.install()  # before lsprotocol defines its classes (its docstring)
    import lsprotocol.types  # noqa: F401 (with the collector on: start_gc.py)

    start_gc.pause()  # until the first message is answered
    from lsp_agent.server.app import create_server

    seal_server_secrets()  # before anything can start a subprocess
    server = create_server()
    server.wiring.preload_model("start")  # run's server: the SDK loads while the client starts
    if args.tcp:
        host, port = args.tcp
        try:
            return server.start_tcp(host, port)
        except OSError as exc:
            if not _cannot_listen(exc):
                raise
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                           "(pick another --tcp address)", ExitCode.SETUP) from None
    return server.start_io()  # 1 after exit without shutdown, as LSP asks


def _cannot_listen(exc: OSError) -> bool:
    """The address is the problem (taken, not ours, unknown host), not a bug."""
    return isinstance(exc, socket.gaierror) or exc.errno in {
        errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM}


def cmd_run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.log_level_given:
        env["LSP_AGENT_LOG"] = args.log_level
    else:
        env.setdefault("LSP_AGENT_LOG", RUN_SERVER_LOG_LEVEL)
    if not args.scripted:
        return _run(args, env, simulated=False)
    from lsp_agent.client.offline import scripted_env, scripted_model

    with scripted_model(args.scripted) as base_url:
        print(f"lsp-agent: scripted model at {base_url} ({args.scripted}): no API key or "
              "network used, costs are simulated", file=sys.stderr, flush=True)
        return _run(args, scripted_env(env, base_url), simulated=True)


def _run(args: argparse.Namespace, env: dict[str, str], simulated: bool) -> int:
    # The server starts first, then the endpoint check (a missing key fails at once) and the
    # client's heavy imports, side by side with the server's (client/spawn.py).
    from lsp_agent.client.spawn import run_headless

    return run_headless(args, env, simulated)


def cmd_acp(args: argparse.Namespace) -> int:
    from lsp_agent.procs.environment import seal_server_secrets

    seal_server_secrets()  # before anything can start a subprocess
    from lsp_agent.acp.serve import run

    return run(args.permission_mode, args.model)


def cmd_sessions(args: argparse.Namespace) -> int:
    from lsp_agent.client.saved import cmd_sessions as run_sessions

    return run_sessions(args)


def cmd_export(args: argparse.Namespace) -> int:
    from lsp_agent.client.saved import cmd_export as run_export

    return run_export(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from lsp_agent.client.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lsp-agent", description="A coding agent in your editor")
    parser.add_argument("--version", action="version", version=f"lsp-agent {__version__}")
    log_help = (f"log level on stderr: {', '.join(LOG_LEVELS)} (default: $LSP_AGENT_LOG, else "
                f"{DEFAULT_LOG_LEVEL}; run's server logs only warnings unless one is given)")
    parser.add_argument("--log-level", type=log_level, default=None, metavar="LEVEL",
                        help=log_help)
    # Also accepted after the command (lsp-agent run ... --log-level debug).
    common = Parser(add_help=False)
    common.add_argument("--log-level", type=log_level, default=argparse.SUPPRESS,
                        metavar="LEVEL", help=log_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common],
                           help="run the language server (stdio by default)")
    serve.add_argument("--stdio", action="store_true", help="(default) serve over stdio")
    serve.add_argument("--tcp", metavar="HOST:PORT", type=tcp_address,
                       help="serve one client over TCP, for debugging (:2087 binds 127.0.0.1)")
    serve.set_defaults(func=cmd_serve)

    run = sub.add_parser("run", parents=[common], epilog=RUN_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         help="one headless turn through the language server",
                         description="One turn of the agent, through the same server code an "
                                     "editor uses.\nstdout carries the turn; questions, notes "
                                     "and logs go to stderr.")
    run.add_argument("prompt", type=prompt_text,
                     help="what the agent should do (quote it: one argument)")
    run.add_argument("--workspace", default=".", type=workspace_folder, metavar="FOLDER",
                     help="the project's folder (default: the current folder)")
    run.add_argument("--json", action="store_true",
                     help="print the events as JSON lines on stdout (nothing else goes there)")
    run.add_argument("--permission-mode", choices=MODES, default=None,
                     help="permission mode; default asks on the terminal")
    run.add_argument("--model", default=None, metavar="MODEL",
                     help="model id, e.g. claude-sonnet-4-5 (default: $LSP_AGENT_MODEL, else "
                          "claude-sonnet-4-5)")
    run.add_argument("--yes", action="store_true",
                     help="answer every question with yes (accept edits, allow commands)")
    for kind in ("allow", "ask", "deny"):
        run.add_argument(f"--{kind}", action="append", default=[], metavar="RULE",
                         help=f"{kind} rule such as 'Bash(npm test:*)' or 'Edit(src/**)'; "
                              "repeatable; ranks above project and user settings")
    run.add_argument("--plugin-dir", action="append", default=[], metavar="FOLDER",
                     type=plugin_folder,
                     help="load the plugin in FOLDER (its commands, skills, MCP servers) for "
                          "this run; repeatable")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--continue", dest="continue_session", action="store_true",
                        help="go on with the workspace's most recent saved session")
    resume.add_argument("--resume", metavar="ID", default=None,
                        help="go on with the saved session ID (see: lsp-agent sessions)")
    run.add_argument("--no-reuse", action="store_true",
                     help="start a server for this run only; by default a run reuses the "
                          "workspace's warm server, or starts one that stays for "
                          "$LSP_AGENT_RUN_KEEPALIVE seconds (default 600; 0: never reuse)")
    run.add_argument("--scripted", metavar="SCENARIO",
                     help="offline: the scripted model replays SCENARIO (a scenario file, or "
                          "the bundled fix_failing_test) instead of a real model; no API key, "
                          "no network; costs are simulated")
    run.set_defaults(func=cmd_run)

    acp = sub.add_parser("acp", parents=[common],
                         help="speak the Agent Client Protocol on stdio (Zed, JetBrains, ...)")
    acp.add_argument("--permission-mode", choices=MODES, default="default",
                     help="permission mode of new sessions (the client can switch it)")
    acp.add_argument("--model", default=None, metavar="MODEL",
                     help="model id (default: $LSP_AGENT_MODEL, else claude-sonnet-4-5)")
    acp.set_defaults(func=cmd_acp)

    sessions = sub.add_parser("sessions", parents=[common],
                              help="list the saved sessions of a workspace, newest first")
    sessions.add_argument("--workspace", default=".", type=workspace_folder, metavar="FOLDER",
                          help="the project's folder (default: the current folder)")
    sessions.add_argument("--json", action="store_true", help="one JSON object per line")
    sessions.add_argument("--limit", type=int, default=50, metavar="N",
                          help="at most N sessions (default 50)")
    sessions.set_defaults(func=cmd_sessions)

    export = sub.add_parser("export", parents=[common],
                            help="write a saved session as Markdown or as its JSONL transcript")
    export.add_argument("session_id", metavar="ID", help="the session (see: lsp-agent sessions)")
    export.add_argument("--workspace", default=".", type=workspace_folder, metavar="FOLDER",
                        help="the project's folder (default: the current folder)")
    export.add_argument("--format", choices=("md", "jsonl"), default="md",
                        help="md (readable, default) or jsonl (the transcript as saved)")
    export.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write to FILE instead of stdout")
    export.set_defaults(func=cmd_export)

    demo = sub.add_parser("demo", parents=[common],
                          help="offline demo against the scripted model server")
    demo.add_argument("--keep", action="store_true", help="keep the demo workspace")
    demo.add_argument("--fast", action="store_true", help="no pauses while streaming")
    demo.set_defaults(func=cmd_demo)
    return parser


def _resolve_log_level(args: argparse.Namespace) -> None:
    args.log_level_given = args.log_level is not None
    if args.log_level is None:
        from_env = os.environ.get("LSP_AGENT_LOG", DEFAULT_LOG_LEVEL)
        try:
            args.log_level = log_level(from_env)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"LSP_AGENT_LOG: {exc}") from None


# Commands that end their process without the interpreter's teardown once all is flushed
# (procs/fast_exit.py): the user (run) or the editor (serve) would wait for it.
FAST_EXIT_COMMANDS = {cmd_run, cmd_serve}


def main(argv: list[str] | None = None) -> int:
    """The command line. Called without ``argv`` it is the program (``python -m lsp_agent``,
    the ``lsp-agent`` script): then ``run`` and ``serve`` end the process themselves."""
    func = None
    try:
        args = build_parser().parse_args(argv)
        func = args.func
        _resolve_log_level(args)
        _setup_logging(args.log_level)
        code = int(args.func(args))
    except CliError as exc:
        print(f"lsp-agent: error: {exc}", file=sys.stderr, flush=True)
        code = int(exc.code)
    except KeyboardInterrupt:
        print("lsp-agent: interrupted", file=sys.stderr, flush=True)
        code = int(ExitCode.INTERRUPTED)
    if argv is None and func in FAST_EXIT_COMMANDS:
        from lsp_agent.procs.fast_exit import exit_now

        exit_now(code)
    return code
