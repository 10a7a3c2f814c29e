"""The hand-over between ``lsp-agent run`` and a warm server (client/warm.py,
client/warm_host.py) on a Unix socket: framed JSON messages. The run's first message (the
*hello*) carries its environment, its folder and its standard streams (file descriptors,
SCM_RIGHTS), so that the fork that takes it over behaves, and writes, as a process the run had
started itself; the answer says which process took it.

Only the user who owns the server may use it: its folder is 0700 and checked before use
(``private_folder``), its socket 0600, and the server also checks the peer's uid
(``peer_uid``). No TCP. Standard library only: the client imports this before anything heavy.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # an environment is a few KB; more is not a hello


class RendezvousError(Exception):
    """The other side broke the hand-over (closed early, sent garbage)."""


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return HEADER.pack(len(body)) + body


def send_message(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    data = frame(message)
    sent = socket.send_fds(sock, [data], list(fds)) if fds else 0  # the fds ride on byte one
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """One message (blocking; the socket's timeout applies) and the fds that came with it.
    Reads exactly the message: what follows it on the socket is left for LSP."""
    fds: list[int] = []
    header = _recv_exactly(sock, HEADER.size, fds, max_fds)
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        _close_all(fds)
        raise RendezvousError(f"message of {length} bytes is too large")
    try:
        message = json.loads(_recv_exactly(sock, length, fds, 0))
    except (ValueError, RendezvousError):
        _close_all(fds)
        raise
    if not isinstance(message, dict):
        _close_all(fds)
        raise RendezvousError("message is not a JSON object")
    return message, fds


def _recv_exactly(sock: socket.socket, size: int, fds: list[int], max_fds: int) -> bytes:
    data = b""
    while len(data) < size:
        if max_fds and not fds:
            chunk, got, _flags, _addr = socket.recv_fds(sock, size - len(data), max_fds)
            fds.extend(got)
        else:
            chunk = sock.recv(size - len(data))
        if not chunk:
            _close_all(fds)
            raise RendezvousError("the other side closed the connection during the hand-over")
        data += chunk
    return data


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (Linux: SO_PEERCRED)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option,
                                                          struct.calcsize("3i")))
    return int(uid)


def private_folder(path: Path) -> bool:
    """Make ``path`` (mode 0700) if missing; True only if it is a real folder of this user that
    nobody else can enter. A folder someone else could read or plant files in is never used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and stat.S_IMODE(info.st_mode) & 0o077 == 0)
