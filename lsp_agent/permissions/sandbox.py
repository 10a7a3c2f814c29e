"""Shell commands under bubblewrap: the workspace writable, the rest read-only, no network,
and no host processes: a PID namespace of their own with a fresh ``/proc``, so a command
can neither see nor signal the server (or read its environment) nor anything else on the
host, and everything in it dies with the server (``--die-with-parent``).

Settings (``"sandbox"`` in a settings file or the ``sandbox`` initialization option)::

    {"enabled": "auto" | true | false, "network": false, "writablePaths": ["~/.cache/pip"],
     "hideEnv": ["DATABASE_URL"], "passEnv": ["GH_TOKEN"]}

``hideEnv``/``passEnv`` adjust which environment variables commands and hooks inherit, with
or without the sandbox (lsp_agent/procs/environment.py).

``"auto"`` (the default) uses bubblewrap when it works here and otherwise runs commands
unsandboxed, saying so once; ``true`` refuses to run shell commands without a working sandbox.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.procs.environment import EnvPolicy
from lsp_agent.procs.lifetime import child_options

PROBE_TIMEOUT = 10.0


@dataclass
class SandboxPolicy:
    enabled: bool | str = "auto"
    network: bool = False
    writable: list[Path] = field(default_factory=list)
    env: EnvPolicy = field(default_factory=EnvPolicy)

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> SandboxPolicy:
        enabled = raw.get("enabled", "auto")
        if enabled not in {True, False, "auto"}:
            enabled = "auto"
        writable = [Path(os.path.expanduser(p)) for p in raw.get("writablePaths", [])
                    if isinstance(p, str)]
        return cls(enabled, raw.get("network") is True, writable, EnvPolicy.from_settings(raw))


@dataclass(frozen=True)
class Availability:
    works: bool
    detail: str  # why not, when it does not work


@functools.cache
def availability() -> Availability:
    """Whether bubblewrap can start a sandbox here (cached: the answer does not change)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Availability(False, "bubblewrap (bwrap) is not installed")
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--proc", "/proc",
             "--unshare-net", "--die-with-parent", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=PROBE_TIMEOUT, check=False,
                              **child_options())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability(False, f"bwrap could not run: {exc}")
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()[:300]
        return Availability(False, f"bwrap cannot create a sandbox here ({why}); user "
                                   "namespaces are probably disabled")
    return Availability(True, "")


class SandboxUnavailable(Exception):
    pass


@dataclass
class Sandbox:
    policy: SandboxPolicy
    workspace: Path

    def status(self) -> str:
        """One line for logs and the session: what protects shell commands."""
        if self.policy.enabled is False:
            return "sandbox off (settings): shell commands run unsandboxed"
        avail = availability()
        if avail.works:
            net = "network allowed" if self.policy.network else "no network"
            return (f"sandbox on (bubblewrap): workspace writable, rest read-only, {net}, "
                    "host processes hidden")
        return f"sandbox unavailable: {avail.detail}; shell commands run unsandboxed"

    def active(self) -> bool:
        return self.policy.enabled is not False and availability().works

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` to run inside the sandbox (unchanged when the sandbox is off)."""
        if self.policy.enabled is False:
            return argv
        avail = availability()
        if not avail.works:
            if self.policy.enabled is True:
                raise SandboxUnavailable(
                    f"The sandbox is required by the settings but {avail.detail}.")
            return argv
        return [*self.bwrap_args(), "--", *argv]

    def bwrap_args(self) -> list[str]:
        # /tmp is private and writable; the workspace (even under /tmp) is bound after it.
        # A PID namespace of its own, with a /proc that shows only it: no host process is
        # visible or signalable, and when bwrap dies with the server (--die-with-parent) the
        # kernel kills everything left in the namespace, background jobs and daemons included.
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid",
                "--unshare-ipc", "--proc", "/proc", "--tmpfs", "/tmp", "--die-with-parent"]
        # The private /tmp hides the host's: keep the Python environment the agent runs from
        # visible (read-only) when it lives there, or its own interpreter vanishes.
        for path in _interpreter_dirs_under("/tmp"):
            args += ["--ro-bind", path, path]
        for place in [self.workspace, *self.policy.writable]:
            real = os.path.realpath(place)
            if os.path.exists(real):
                args += ["--bind", real, real]
        if not self.policy.network:
            args.append("--unshare-net")
        args += ["--chdir", os.path.realpath(self.workspace)]
        return args


def _interpreter_dirs_under(root: str) -> list[str]:
    """The running interpreter's prefixes that lie below ``root``, outermost first."""
    candidates = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    inside = sorted(p for p in candidates if p.startswith(root.rstrip("/") + "/"))
    return [p for p in inside if not any(p != q and p.startswith(q + "/") for q in inside)]
