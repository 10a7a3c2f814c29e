"""A warm server for ``lsp-agent run``: one process per workspace and configuration that has
imported the server, the client of ``run``, the sessions and the SDK and built the SDK client
once, and serves each run of that workspace in a process forked from it, so that only the first
run pays for starting Python and its imports (client/warm.py starts it and connects;
docs/protocol.md, "Reusing a started server").

* Each connection gets its own fork, with fresh state (no session, setting or approval of one
  run reaches the next) and the run's environment and folder (procs/rendezvous.py):
  - mode "run" (a run that found this server alive): the fork *is* the run -- the same
    HeadlessRun as ``lsp-agent run`` on the run's stdin, stdout and stderr, with its server in
    a fork of its own over a socket pair -- and sends the exit code back; the run's process
    only waits and passes on its signals;
  - mode "serve" (the run that started this server, which loaded its client meanwhile): the
    fork is that run's server, over the connection, logging to the run's stderr.
  Both are the same server code as ``lsp-agent serve``, on a socket instead of stdio. A crash
  of one run's fork is that run's; the warm process serves the next.
* The warm process itself runs no event loop and no thread (safe to fork); it waits on its
  socket, reaps its children, and exits when it has had no connection for the keep-alive
  period (``LSP_AGENT_RUN_KEEPALIVE``), when its workspace folder is gone, when its socket was
  removed or replaced, or on SIGTERM. It removes its socket and status file as it goes.
* Bounded: one per key (the client holds the key's lock while starting it and this process
  holds it for life), and at most ``MAX_WORKERS`` runs at once (more are refused and the run
  starts a fresh server of its own).

    python -m lsp_agent.client.warm_host --listen-fd N --lock-fd N --key HEX --keepalive S \
        --workspace DIR --socket PATH --status PATH
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from lsp_agent.client.warm import HELLO_VERSION
from lsp_agent.procs.environment import SERVER_SECRETS, seal_server_secrets
from lsp_agent.procs.liveness import pid_alive
from lsp_agent.procs.rendezvous import RendezvousError, peer_uid, recv_message, send_message

log = logging.getLogger("lsp_agent.warm_host")

MAX_WORKERS = 8
HELLO_TIMEOUT_S = 10.0
SERVER_EXIT_WAIT_S = 10.0
MODES = ("serve", "run")
# What a run imports after the server is built, loaded once here instead of in each fork
# (the rest of the server came with create_server; the SDK with the client's build).
WARM_MODULES = (
    "lsp_agent.client.run",
    "lsp_agent.client.preflight",
    "lsp_agent.client.saved",
    "lsp_agent.sessions.manager",
    "lsp_agent.sessions.session",
    "lsp_agent.store",
    "lsp_agent.agent.loop",
    "lsp_agent.tools.pool",
    "lsp_agent.context.manager",
    "lsp_agent.server.protocol",  # the params models (the server loads them on first use)
)


def tick_seconds(keepalive: float) -> float:
    """How often the idle time, the workspace and the socket are checked."""
    return min(1.0, max(0.05, keepalive / 4))


class WarmHost:
    def __init__(self, args: argparse.Namespace):
        self.listener = socket.socket(fileno=args.listen_fd)
        self.lock_fd: int = args.lock_fd
        self.key: str = args.key
        self.keepalive: float = args.keepalive
        self.workspace = Path(args.workspace)
        self.socket_path = Path(args.socket)
        self.status_path = Path(args.status)
        self.workers: set[int] = set()
        self.served = 0
        self.started = time.time()
        self.stopping: str | None = None
        self.server: Any = None
        self.warm = False  # warm_up done: forks find the SDK client built and all imported
        self.first_client: int | None = None  # the pid of the run that started this process
        self._workspace_id = _identity(self.workspace)
        self._socket_id = _identity(self.socket_path)

    # -- once, before the first connection is served ---------------------------------------------

    def prepare(self) -> None:
        """What ``lsp-agent serve`` does before it reads ``initialize``: the run that started
        this process is waiting for its server. The rest comes when that run is over
        (``warm_up``)."""
        from lsp_agent.server.app import create_server

        self.server = create_server()

    def warm_up(self) -> None:
        """Everything else a run needs that does not depend on the run: the SDK client, the
        client of ``run``, the sessions. Done while no run waits; forks share it (copy on
        write)."""
        wiring = self.server.wiring
        try:
            wiring.clients.client_now(wiring.model_settings())
        except Exception as exc:  # said by the run that needs the client, as without reuse
            log.info("model client not built here: %s", exc)
        for name in WARM_MODULES:
            importlib.import_module(name)
        from lsp_agent.server.init_options import options_adapter
        from lsp_agent.types.events import complete_models, event_adapter

        complete_models()
        event_adapter()
        options_adapter()  # not a Wire model: a run's initializationOptions validate with it
        gc.collect()
        gc.freeze()  # what is here now is never collected: forks do not copy it to scan it
        if threading.active_count() > 1:  # a fork would copy a lock another thread holds
            log.warning("threads before a fork: %s", threading.enumerate())
        self.warm = True
        self._write_status()

    # -- the loop ---------------------------------------------------------------------------------

    def serve(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        self._write_status()
        idle_since = time.monotonic()
        tick = tick_seconds(self.keepalive)
        log.info("warm server %d ready for %s (keep-alive %.0f s)", os.getpid(),
                 self.workspace, self.keepalive)
        while self.stopping is None:
            self._reap()
            now = time.monotonic()
            if self.workers:
                idle_since = now
            elif not self.warm and self.served and not _pending(self.listener) \
                    and not pid_alive(self.first_client):
                # Nobody waits now (the run that started this process has exited, not just
                # its server: its last moments are not slowed), and the next run will find
                # it all loaded.
                self.warm_up()
                idle_since = time.monotonic()
                continue
            elif now - idle_since >= self.keepalive:
                self.stopping = "idle"
                break
            if _identity(self.workspace) != self._workspace_id:
                self.stopping = "workspace folder gone"
                break
            if _identity(self.socket_path) != self._socket_id:
                self.stopping = "socket removed or replaced"
                break
            ready, _, _ = select.select([self.listener], [], [], tick)
            if ready:
                self._accept()
        return self._close()

    def _on_term(self, signum: int, frame: Any) -> None:
        self.stopping = "SIGTERM"

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if self.first_client is None:
            self.first_client = _peer_pid(conn)
        if peer_uid(conn) not in (None, os.getuid()):
            log.warning("refused a connection from another user")
            conn.close()
            return
        if len(self.workers) >= MAX_WORKERS:
            with contextlib.suppress(OSError):
                send_message(conn, {"ok": False, "error": f"busy: {MAX_WORKERS} runs at once"})
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            self._in_fork(conn)  # never returns
        conn.close()
        self.workers.add(pid)
        self.served += 1
        self._write_status()

    def _reap(self) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ChildProcessError):
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
                code = os.waitstatus_to_exitcode(status)
                if code < 0:
                    log.warning("run %d ended by signal %d", pid, -code)
            self.workers.discard(pid)

    def _close(self) -> int:
        log.info("warm server %d exits: %s (served %d runs)", os.getpid(), self.stopping,
                 self.served)
        if _identity(self.socket_path) == self._socket_id:  # still ours: a successor's is not
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
        with contextlib.suppress(OSError):
            self.status_path.unlink()
        self.listener.close()
        return 0

    def _write_status(self) -> None:
        """pid, key, runs served: for tests and benchmarks (and whoever wonders)."""
        data = {"pid": os.getpid(), "key": self.key, "workspace": str(self.workspace),
                "started": self.started, "served": self.served, "keepalive": self.keepalive,
                "warm": self.warm}
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        with contextlib.suppress(OSError):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
            os.replace(tmp, self.status_path)

    # -- in the fork: one run ----------------------------------------------------------------------

    def _in_fork(self, conn: socket.socket) -> NoReturn:
        code = 1
        try:
            self.listener.close()
            os.close(self.lock_fd)  # the lock is the warm process's, not this run's
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            hello = self._take_over(conn)
            if hello is not None and hello["mode"] == "serve":
                code = self._serve_on(conn)
            elif hello is not None:
                code = self._run(conn, hello)
        except BaseException:
            log.exception("run %d failed", os.getpid())
        from lsp_agent.procs.fast_exit import exit_now

        exit_now(code)

    def _take_over(self, conn: socket.socket) -> dict[str, Any] | None:
        """Read the hello and become the run's process: its environment, folder and standard
        streams. None (after answering why) for a hello this process must not serve."""
        conn.settimeout(HELLO_TIMEOUT_S)
        try:
            hello, fds = recv_message(conn, max_fds=3)
        except (OSError, ValueError, RendezvousError) as exc:
            log.warning("no hello from the run: %s", exc)
            return None
        conn.settimeout(None)
        problem = self._refusal(hello, fds)
        if problem:
            for fd in fds:
                os.close(fd)
            send_message(conn, {"ok": False, "error": problem})
            return None
        targets = (2,) if hello["mode"] == "serve" else (0, 1, 2)
        for fd, target in zip(fds, targets, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        _reopen_standard_streams()
        os.chdir(hello["cwd"])
        environ = {str(k): str(v) for k, v in hello["env"].items() if k not in SERVER_SECRETS}
        os.environ.clear()
        os.environ.update(environ)  # credentials stay sealed from the warm process's start
        return hello

    def _refusal(self, hello: dict[str, Any], fds: list[int]) -> str | None:
        if hello.get("v") != HELLO_VERSION:
            return f"hello version {hello.get('v')!r}, expected {HELLO_VERSION}"
        if hello.get("key") != self.key:
            return "another configuration (key mismatch)"
        if hello.get("mode") not in MODES:
            return f"unknown mode {hello.get('mode')!r}"
        if not isinstance(hello.get("env"), dict) or not isinstance(hello.get("cwd"), str):
            return "hello without env or cwd"
        if len(fds) != (1 if hello["mode"] == "serve" else 3):
            return "hello without the run's standard streams"
        if hello["mode"] == "run" and not isinstance(hello.get("args"), dict):
            return "hello without the run's arguments"
        return None

    def _serve_on(self, conn: socket.socket) -> int:
        """Mode "serve": this fork is the run's server, on the connection."""
        if not self.warm:  # as `serve` for run: the SDK loads while the client starts
            self.server.wiring.preload_model("start")
        send_message(conn, {"ok": True, "pid": os.getpid(), "host": os.getppid()})
        return int(self.server.start_io(conn.makefile("rb", buffering=0), conn.makefile("wb")))

    def _run(self, conn: socket.socket, hello: dict[str, Any]) -> int:
        """Mode "run": this fork runs the run, its server in a fork of its own."""
        ours, theirs = socket.socketpair()
        server_pid = os.fork()
        if server_pid == 0:
            ours.close()
            conn.close()
            quiet = os.open(os.devnull, os.O_RDWR)  # the run's stdin and stdout are not its
            os.dup2(quiet, 0)
            os.dup2(quiet, 1)
            os.close(quiet)
            from lsp_agent.procs.fast_exit import exit_now

            code = 1
            try:
                code = int(self.server.start_io(theirs.makefile("rb", buffering=0),
                                                theirs.makefile("wb")))
            finally:
                exit_now(code)
        theirs.close()
        send_message(conn, {"ok": True, "pid": os.getpid(), "host": os.getppid(),
                            "served": self.served + 1})
        args = argparse.Namespace(**hello["args"])
        args.workspace = Path(args.workspace)
        args.plugin_dir = [Path(d) for d in args.plugin_dir or []]
        from lsp_agent.client.errors import CliError, ExitCode

        try:
            code = asyncio.run(_headless(args, dict(os.environ), ours, server_pid, conn))
        except CliError as exc:  # as cli.main says it
            print(f"lsp-agent: error: {exc}", file=sys.stderr, flush=True)
            code = int(exc.code)
        except KeyboardInterrupt:
            print("lsp-agent: interrupted", file=sys.stderr, flush=True)
            code = int(ExitCode.INTERRUPTED)
        _reap_within(server_pid, SERVER_EXIT_WAIT_S)  # its CPU counts as this run's
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            send_message(conn, {"exit": code})
        return code


async def _headless(args: argparse.Namespace, env: dict[str, str], sock: socket.socket,
                    server_pid: int, control: socket.socket) -> int:
    """The run, as ``lsp-agent run`` runs it, with its server on ``sock``. When the run's own
    process goes away (its end of ``control`` closes), the turn is cancelled."""
    from lsp_agent.client.preflight import check_model_endpoint
    from lsp_agent.client.run import HeadlessRun
    from lsp_agent.client.warm import WarmServer

    check_model_endpoint(env)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    server = WarmServer(reader, writer, server_pid, os.getpid())
    run = asyncio.ensure_future(HeadlessRun(args, env, args.scripted is not None,
                                            server=server).main())  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    def on_control() -> None:
        with contextlib.suppress(BlockingIOError):
            if not control.recv(1):  # the run's process is gone: nobody waits for the turn
                loop.remove_reader(control.fileno())
                run.cancel()

    control.setblocking(False)
    loop.add_reader(control.fileno(), on_control)
    try:
        return int(await run)
    except asyncio.CancelledError:
        return 130
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(control.fileno())
        control.setblocking(True)


def _reap_within(pid: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _reopen_standard_streams() -> None:
    """sys.stdin/stdout/stderr now read and write the run's descriptors (0, 1, 2 were
    replaced under them; the objects stay, since modules hold them, e.g. as defaults). What a
    fresh process would set from what they are: a terminal's output is line-buffered."""
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if os.isatty(fd) and not stream.line_buffering:
                stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def _peer_pid(conn: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    with contextlib.suppress(OSError):
        pid, _uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option,
                                                              struct.calcsize("3i")))
        return int(pid)
    return None


def _pending(listener: socket.socket) -> bool:
    """A run is waiting to be accepted."""
    return bool(select.select([listener], [], [], 0)[0])


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lsp_agent.client.warm_host")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--keepalive", type=float, required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--status", required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seal_server_secrets()  # before anything can start a subprocess, as `serve` does
    level = os.environ.get("LSP_AGENT_LOG", "warning").upper()
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level, logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for noisy in ("pygls", "httpx", "httpcore", "anthropic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    host = WarmHost(args)
    code = 1
    try:
        host.prepare()
        code = host.serve()
    except BaseException:
        log.exception("the warm server failed")
        host.stopping = host.stopping or "failure"
        host._close()
    from lsp_agent.procs.fast_exit import exit_now

    exit_now(code)


if __name__ == "__main__":
    main()
