"""``lsp-agent run`` on a started server: connect to the warm server of this workspace and
configuration if one is alive, else start one (detached) that serves this run and stays for the
keep-alive period (client/warm_host.py; docs/protocol.md, "Reusing a started server").

* **Which server**: the key hashes everything that changes what a server does -- the
  lsp-agent version and its source files' mtimes, the Python executable and its import path,
  the workspace, the uid, and the environment that matters (``KEY_ENV_NAMES``,
  ``KEY_ENV_PREFIXES``: credentials, endpoints, lsp-agent's settings, HOME, XDG folders,
  PATH...). A changed environment or an upgrade never meets a stale server: it has another
  key, and the old one idles out.
* **Where**: ``$XDG_RUNTIME_DIR/lsp-agent`` or, without one, ``<state dir>/run``; a folder of
  this user that nobody else can enter, else no reuse (procs/rendezvous.py). A socket, its lock
  and a status file per key; the socket 0600.
* **Starting one**: under the key's lock (flock, held by the warm server for its life: one per
  key), this process binds the socket and hands it to the new server, so it can connect at once
  and import its own modules while the server imports its own. A socket file whose server is
  gone is removed.
* **Falling back**: when the warm server refuses, fails or closes before answering, the run
  says so in one line and starts a fresh server of its own, as without reuse.
* ``LSP_AGENT_RUN_KEEPALIVE`` seconds (default 600; 0: no reuse) and ``run --no-reuse``.
  Standard library only: this runs before the client's heavy imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lsp_agent
from lsp_agent.client.errors import CliError, ExitCode
from lsp_agent.procs.environment import SERVER_SECRETS
from lsp_agent.procs.rendezvous import (
    HEADER,
    RendezvousError,
    private_folder,
    recv_message,
    send_message,
)

log = logging.getLogger(__name__)

KEEPALIVE_ENV = "LSP_AGENT_RUN_KEEPALIVE"
DEFAULT_KEEPALIVE_S = 600.0
HELLO_VERSION = 1
# The environment that changes what a server does, or what the modules it imported at start
# read then: a difference means another server.
KEY_ENV_PREFIXES = ("ANTHROPIC_", "LSP_AGENT_", "CLAUDE_", "MCP_", "XDG_", "PYTHON", "GIT_",
                    "LC_", "HTTP", "NO_PROXY", "ALL_PROXY", "SSL_", "REQUESTS_CA", "CURL_CA")
KEY_ENV_NAMES = ("HOME", "PATH", "USER", "LOGNAME", "SHELL", "LANG", "TMPDIR", "VIRTUAL_ENV",
                 "http_proxy", "https_proxy", "no_proxy", "all_proxy")
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes
CONNECT_TRIES = 100  # x RETRY_S: how long to wait for a server another run is starting
RETRY_S = 0.02
REPLY_TIMEOUT_S = 120.0  # a first run waits for the new server's imports on a busy machine
PACKAGE = Path(lsp_agent.__file__).resolve().parent
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The parsed command line of ``run`` that a fork needs to run it.
RUN_ARGUMENTS = ("prompt", "workspace", "json", "permission_mode", "model", "yes", "allow",
                 "ask", "deny", "plugin_dir", "continue_session", "resume", "scripted",
                 "no_reuse", "log_level", "log_level_given")


class WarmUnavailable(Exception):
    """This run cannot use a warm server (the message says why); it starts its own."""


def keepalive_seconds(env: Mapping[str, str]) -> float:
    raw = env.get(KEEPALIVE_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEPALIVE_S
    try:
        value = float(raw)
    except ValueError:
        raise CliError(f"{KEEPALIVE_ENV}: {raw!r} is not a number of seconds "
                       "(0 turns reuse off)") from None
    if value < 0 or value != value:
        raise CliError(f"{KEEPALIVE_ENV}: {raw!r} must be 0 or more seconds")
    return value


# -- the key and the place ----------------------------------------------------------------------

def server_key(env: Mapping[str, str], workspace: Path) -> str:
    material = {
        "version": lsp_agent.__version__,
        "sources": _sources_stamp(),
        "python": [sys.executable, sys.version, _paths_stamp()],
        "workspace": str(workspace),
        "uid": os.getuid(),
        "env": sorted((k, v) for k, v in env.items()
                      if k in KEY_ENV_NAMES or k.startswith(KEY_ENV_PREFIXES)),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _sources_stamp() -> str:
    """Every source file of the package by path, size and mtime: an edit or an upgrade."""
    digest = hashlib.sha256()
    todo = [PACKAGE]
    while todo:
        with os.scandir(todo.pop()) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    todo.append(Path(entry.path))
                elif entry.name.endswith(".py"):
                    info = entry.stat()
                    digest.update(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _paths_stamp() -> list[tuple[str, int]]:
    """The package folders of the import path and their mtimes: installing or removing a
    package changes its site-packages folder. (Not the script's folder or the working folder,
    which change with every file a run writes; PYTHONPATH is in the key's environment.)"""
    stamps = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            with contextlib.suppress(OSError):
                stamps.append((entry, os.stat(entry).st_mtime_ns))
    return stamps


@dataclass(frozen=True)
class Place:
    key: str
    folder: Path

    @property
    def name(self) -> str:
        return self.key[:24]

    @property
    def socket(self) -> Path:
        return self.folder / f"{self.name}.sock"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"

    @property
    def status(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def read_status(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.status.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def runtime_folders(env: Mapping[str, str]) -> list[Path]:
    """Where the sockets may live, in order of preference."""
    folders = []
    if env.get("XDG_RUNTIME_DIR"):
        folders.append(Path(env["XDG_RUNTIME_DIR"]) / "lsp-agent")
    raw = env.get("LSP_AGENT_STATE_DIR")
    state = Path(raw).expanduser() if raw else Path(env.get("HOME") or Path.home()) / ".cache" \
        / "lsp-agent"
    folders.append(state / "run")
    folders.append(Path(tempfile.gettempdir()) / f"lsp-agent-{os.getuid()}")  # short paths
    return folders


def place_for(env: Mapping[str, str], workspace: Path) -> Place | None:
    """The key's place in the first usable private folder; None when there is none."""
    key = server_key(env, workspace)
    for folder in runtime_folders(env):
        place = Place(key, folder)
        if len(str(place.socket).encode()) <= SOCKET_PATH_MAX and private_folder(folder):
            return place
    return None


# -- connecting ---------------------------------------------------------------------------------

@dataclass
class Pending:
    """Connected to a warm server (started by this run, or found alive); nothing said yet.

    A warm server this run found alive runs the whole run in a fork (``delegate``): its
    client code is loaded there already, so this process only relays its exit code and the
    signals it gets. A warm server this run started serves as the run's server only
    (``serve``): meanwhile this process loads the client, on the other core."""

    sock: socket.socket
    place: Place
    started: subprocess.Popen[bytes] | None  # the warm server this run started, if it did

    def hello(self, mode: str, workspace: Path, env: Mapping[str, str],
              args: dict[str, Any] | None = None) -> None:
        """``mode`` "serve" (the fork is this run's server; it logs to our stderr) or "run"
        (the fork is this run; it gets our stdin, stdout and stderr)."""
        message = {"v": HELLO_VERSION, "mode": mode, "key": self.place.key,
                   "cwd": str(workspace), "args": args,
                   "env": {k: v for k, v in env.items() if k not in SERVER_SECRETS}}
        fds = (sys.stderr.fileno(),) if mode == "serve" else (
            sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno())
        try:
            send_message(self.sock, message, fds=fds)
        except (OSError, ValueError) as exc:
            self.sock.close()
            raise WarmUnavailable(f"could not reach the warm server ({exc})") from None

    async def serve(self) -> WarmServer:
        """The run's server, once the warm server's fork has answered."""
        try:
            reader, writer = await asyncio.open_unix_connection(sock=self.sock)
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                reply = json.loads(await reader.readexactly(length))
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self.sock.close()
            raise self._no_answer(exc) from None
        if not reply.get("ok"):
            writer.close()
            raise WarmUnavailable(f"the warm server refused this run: {reply.get('error')}")
        log.debug("warm server: run's server is pid %s, forked from %s (started by this run)",
                  reply.get("pid"), reply.get("host"))
        return WarmServer(reader, writer, int(reply["pid"]), int(reply["host"]))

    def delegate(self) -> int:
        """Wait for the fork that runs this run, pass it the signals this process gets
        (Ctrl-C cancels the turn there as it would here), and return its exit code."""
        self.sock.settimeout(REPLY_TIMEOUT_S)
        try:
            reply, _ = recv_message(self.sock)
        except (OSError, ValueError, RendezvousError) as exc:
            self.sock.close()
            raise self._no_answer(exc) from None
        if not reply.get("ok"):
            self.sock.close()
            raise WarmUnavailable(f"the warm server refused this run: {reply.get('error')}")
        run_pid = int(reply["pid"])
        log.debug("warm server: this run is pid %d, forked from %s (run %s of it)", run_pid,
                  reply.get("host"), reply.get("served"))

        def forward(signum: int, _frame: Any) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run_pid, signum)

        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, forward)
        self.sock.settimeout(None)
        try:
            ended, _ = recv_message(self.sock)
        except (OSError, ValueError, RendezvousError):
            raise CliError(f"the run in the warm server (pid {run_pid}) ended without an exit "
                           f"code; its warm server's log: {self.place.log}",
                           ExitCode.TURN_FAILED) from None
        finally:
            self.sock.close()
        return int(ended.get("exit", ExitCode.TURN_FAILED))

    def _no_answer(self, exc: BaseException) -> WarmUnavailable:
        reason = "closed the connection" if isinstance(
            exc, (asyncio.IncompleteReadError, RendezvousError)) \
            else f"{type(exc).__name__}: {exc}"
        where = f"; its log: {self.place.log}" if self.started else ""
        return WarmUnavailable(f"the warm server did not answer ({reason}{where})")

    def abandon(self) -> None:
        """This run will not use it (it failed before its turn): the server this run started
        goes too, rather than idle for nothing."""
        self.sock.close()
        if self.started is not None and self.started.poll() is None:
            with contextlib.suppress(OSError):
                self.started.terminate()


def run_arguments(args: Any) -> dict[str, Any]:
    """What a fork needs of ``run``'s parsed command line to run it (JSON: paths as text)."""
    return {name: [str(v) for v in value] if name == "plugin_dir" else
            str(value) if isinstance(value, Path) else value
            for name, value in vars(args).items() if name in RUN_ARGUMENTS}


def open_warm(workspace: Path, env: dict[str, str], keepalive: float) -> Pending | None:
    """Connect to this key's warm server, starting it if none is alive. None: no warm server
    can be used here (said in the debug log); start a fresh one."""
    place = place_for(env, workspace)
    if place is None:
        log.debug("warm server: no private folder for its socket; not reused")
        return None
    for _ in range(CONNECT_TRIES):
        sock, started = _connect(place.socket), None
        if sock is None:
            lock = _try_lock(place.lock)
            if lock is not None:
                try:
                    sock, started = _start(place, workspace, env, keepalive, lock)
                except OSError as exc:
                    log.debug("warm server: cannot start one: %s", exc)
                    return None
                finally:
                    os.close(lock)  # the new server holds it now
        if sock is not None:
            return Pending(sock, place, started)
        time.sleep(RETRY_S)  # another run holds the lock: its server binds the socket soon
    log.debug("warm server: %s stayed locked without a socket; not reused", place.lock)
    return None


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:  # no socket (none started) or refused (its server is gone)
        sock.close()
        return None
    return sock


def _try_lock(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _start(place: Place, workspace: Path, env: dict[str, str], keepalive: float,
           lock: int) -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """Bind the key's socket, start the warm server on it, and connect (the connection waits
    in the backlog while the server imports)."""
    with contextlib.suppress(FileNotFoundError):
        place.socket.unlink()  # left by a server that died: nobody holds the lock
        log.debug("warm server: removed the dead socket %s", place.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(place.socket))
        os.chmod(place.socket, 0o600)
        listener.listen(16)
        log_fd = os.open(place.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            server = subprocess.Popen(
                [sys.executable, "-m", "lsp_agent.client.warm_host",
                 "--listen-fd", str(listener.fileno()), "--lock-fd", str(lock),
                 "--key", place.key, "--keepalive", str(keepalive),
                 "--workspace", str(workspace), "--socket", str(place.socket),
                 "--status", str(place.status)],
                pass_fds=(listener.fileno(), lock), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log_fd, env=env, cwd=str(workspace),
                start_new_session=True)  # outlives this run, away from its terminal
        finally:
            os.close(log_fd)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(place.socket))
    finally:
        listener.close()
    log.debug("warm server: started pid %d for %s", server.pid, workspace)
    return sock, server


# -- the server as the client sees it -----------------------------------------------------------

class _Input:
    """What the client writes to (a process's stdin, for AgentClient and pygls)."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        """The end of the client's input, as a closed pipe: the server exits on it."""
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof():
                self._writer.write_eof()


class _Output:
    """What the client reads (a process's stdout); its end is the server's end."""

    def __init__(self, reader: asyncio.StreamReader, ended: asyncio.Event):
        self._reader = reader
        self._ended = ended

    async def readline(self) -> bytes:
        line = await self._reader.readline()
        if not line:
            self._ended.set()
        return line

    async def readexactly(self, size: int) -> bytes:
        try:
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError:
            self._ended.set()
            raise

    async def read(self, size: int = -1) -> bytes:
        data = await self._reader.read(size)
        if not data:
            self._ended.set()
        return data


class WarmServer:
    """A run's server in a warm server's fork, with what AgentClient uses of a
    ``asyncio.subprocess.Process``. Its log goes straight to this run's stderr (the hello gave
    it), so there is no stderr to read. The exit code of another process's child is not ours
    to see: the end of the connection counts as exit code 0, a kill as -9."""

    stderr = None

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pid: int,
                 host_pid: int):
        self.pid = pid
        self.host_pid = host_pid
        self.returncode: int | None = None
        self._writer = writer
        self._ended = asyncio.Event()
        self.stdin = _Input(writer)
        self.stdout = _Output(reader, self._ended)

    async def wait(self) -> int:
        await self._ended.wait()
        if self.returncode is None:
            self.returncode = 0
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            self.returncode = -9
        self._writer.transport.abort()
        self._ended.set()
