"""The guard: run one command so that it, and everything it starts, dies with the server.

Started by the server (``lifetime.guarded``) as::

    python -I -S guard.py LIFE_FD -- PROGRAM ARG...

for every shell command and hook that bubblewrap's PID namespace does not already contain.
It uses the standard library only, so it starts in a few milliseconds. It forks in two:

* the **waiter** (the server's direct child, leader of the command's process group, what the
  server sees as the command) waits for the command's exit status and exits the same way: the
  server sees the command end exactly when the command ends, and stops it as before by
  signalling the process group;
* the **keeper** (the waiter's child, in a process group of its own so that the server's
  signals to the command's group do not reach it) is a *child subreaper*
  (``PR_SET_CHILD_SUBREAPER``): the command is its child, and every process the command orphans
  -- background jobs, double forks, ``setsid`` daemons -- is re-parented to the keeper instead
  of init. So the keeper's descendants are everything the command started, whatever session
  or process group they moved to. It stops them all (SIGTERM, then SIGKILL after a grace
  period) when

  - ``LIFE_FD`` reaches end of file: the server holds the only write end of that pipe, so this
    happens when the server exits or is killed, SIGKILL included;
  - the waiter ends without releasing the keeper (it releases it only when it got the
    command's exit status and is about to exit the same way): the server stopped the
    command (timeout, cancel) by signalling its process group, which the waiter leads;
  - the keeper itself gets SIGTERM, SIGINT or SIGHUP.

  Otherwise it stays as long as background processes the command left behind run, then exits.

Linux only (``lifetime.guarded`` does not use it elsewhere).
"""

from __future__ import annotations

import _signal as signal  # signal.py's enums cost ~1/3 of the guard's start; ints suffice
import ctypes
import os
import select
import sys
import time
import warnings  # noqa: F401 - os.execvp imports it: not between fork and exec

PR_SET_CHILD_SUBREAPER = 36
RELEASE = b"r"
STOP_GRACE = 2.0  # between SIGTERM and SIGKILL when the command is stopped
SERVER_GONE_GRACE = 1.0  # the same when the server is gone
FALLBACK_POLL = 1.0  # signals wake the keeper at once; this only bounds a missed wake-up
KILL_POLL = 0.05
GIVE_UP = 10.0  # after SIGKILL: processes that outlast it cannot be killed by us (setuid)
# Python ignores these at start-up; an ignored signal stays ignored across exec.
_RESTORED_SIGNALS = ("SIGPIPE", "SIGXFSZ")


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: guard.py LIFE_FD -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    life_fd, command = int(argv[1]), argv[3:]
    os.fstat(life_fd)  # fails here, before anything runs, if the server passed no pipe
    os.set_inheritable(life_fd, False)  # for the keeper only, not for the command
    status_r, status_w = os.pipe()  # keeper -> waiter: the command's wait status
    release_r, release_w = os.pipe()  # waiter -> keeper: "exiting normally"
    if os.fork() == 0:
        os.close(status_r)
        os.close(release_w)
        keeper = Keeper(life_fd, status_w, release_r, command)
        try:
            code = keeper.run()
        except BaseException as exc:  # the keeper must end here, never return to main()
            print(f"lsp-agent guard: {exc!r}", file=sys.stderr)
            try:
                keeper.stop_all(0)  # what it cannot guard must not run
            except BaseException:  # nothing more can be done
                pass
            code = 70
        os._exit(code)
    os.close(status_w)
    os.close(release_r)
    os.close(life_fd)
    return wait_for_command(status_r, release_w)


def wait_for_command(status_r: int, release_w: int) -> int:
    """The waiter: exit the way the command exited, as soon as the keeper reports it."""
    report = b""
    while chunk := os.read(status_r, 64):
        report += chunk
    if not report.strip():
        print("lsp-agent guard: the command's keeper ended before the command", file=sys.stderr)
        return 1
    try:  # the command ended by itself: what it left running may go on running
        os.write(release_w, RELEASE)
    except OSError:
        pass  # the keeper is gone
    code = os.waitstatus_to_exitcode(int(report))
    if code >= 0:
        return code
    try:  # killed by a signal: die of the same one, so the server reports it by name
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    except (OSError, ValueError):
        pass
    return 128 - code


class Keeper:
    def __init__(self, life_fd: int, status_w: int, release_r: int, command: list[str]):
        self.life_fd, self.status_w, self.release_r = life_fd, status_w, release_r
        self.command = command
        self.command_pid = 0
        self.reported = False
        self.released = False
        self.stop_requested = False

    def run(self) -> int:
        command_group = os.getpgid(0)  # the waiter's: the server signals it to stop the command
        os.setpgid(0, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._request_stop)
        self.command_pid = os.fork()
        if self.command_pid == 0:
            _exec_command(self.command, command_group)
        _drop_stdio()  # only the command may hold the output pipe open
        return self._watch(wake_r)

    def _request_stop(self, *_: object) -> None:
        self.stop_requested = True

    def _watch(self, wake_r: int) -> int:
        while True:
            if not self._reap() and self.reported:
                return 0  # the command and everything it left behind have ended
            if self.stop_requested:
                return self.stop_all(STOP_GRACE)
            watched = [self.life_fd, wake_r] + ([] if self.released else [self.release_r])
            readable, _, _ = select.select(watched, [], [], FALLBACK_POLL)
            if wake_r in readable:
                os.read(wake_r, 512)
            if self.life_fd in readable and not os.read(self.life_fd, 1):
                return self.stop_all(SERVER_GONE_GRACE)
            if self.release_r in readable and not self.released:
                self.released = os.read(self.release_r, 1) == RELEASE
                if not self.released:  # the waiter ended without the word: stopped
                    return self.stop_all(STOP_GRACE)

    def _reap(self) -> bool:
        """Collect exited children; whether any child is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.command_pid and not self.reported:
                self.reported = True
                try:
                    os.write(self.status_w, f"{status}\n".encode())
                    os.close(self.status_w)
                except OSError:
                    pass  # the waiter is gone already

    def stop_all(self, grace: float) -> int:
        """SIGTERM every descendant, SIGKILL those left after ``grace`` seconds (and those
        re-parented meanwhile), until none is left."""
        deadline = time.monotonic() + grace
        _signal_all(descendants(os.getpid()), signal.SIGTERM)
        while self._reap() and time.monotonic() < deadline + GIVE_UP:
            if time.monotonic() >= deadline:
                _signal_all(descendants(os.getpid()), signal.SIGKILL)
            time.sleep(KILL_POLL)
        return 0


def _exec_command(command: list[str], group: int) -> None:
    try:
        signal.set_wakeup_fd(-1)
        for name in ("SIGCHLD", "SIGTERM", "SIGINT", "SIGHUP", *_RESTORED_SIGNALS):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.setpgid(0, group)
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"lsp-agent guard: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
    finally:
        os._exit(127)


def _drop_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def descendants(root: int) -> list[int]:
    """Every process below ``root``, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
            if sig == signal.SIGTERM:
                os.kill(pid, signal.SIGCONT)  # a stopped process could not act on SIGTERM
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stderr.flush()
    os._exit(code)  # no interpreter shutdown: the server sees the command end sooner
