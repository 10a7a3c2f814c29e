"""A quick look at the model endpoint before ``run`` starts a turn.

Without it, a missing key or a machine without network shows up only after the model
service's retries (about a minute), and as a connection error that names no host. Here a
missing key for Anthropic's endpoint fails at once, without touching the network, and an
endpoint that does not accept a TCP connection within a few seconds is named with its URL.
The check proves the endpoint listens, no more: a wrong key or model still fails the first
request, with its own message.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from lsp_agent.client.errors import CliError, ExitCode

DEFAULT_BASE_URL = "https://api.anthropic.com"  # the SDK's default
CONNECT_TIMEOUT_S = 3.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Hosts that need a key; any other endpoint (a proxy, the scripted server) may do without one.
_KEYED_HOST_SUFFIXES = ("anthropic.com",)

NO_KEY = ("no API key: set ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL for another endpoint; "
          "to try it offline: --scripted fix_failing_test)")


@dataclass(frozen=True)
class Target:
    url: str  # the model endpoint, as the user gave it
    host: str  # where the TCP connection goes: the endpoint, or the proxy in front of it
    port: int
    proxy: str | None = None


def check_model_endpoint(env: Mapping[str, str], timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise CliError (exit code SETUP) when the model endpoint cannot be used at all."""
    target = endpoint_target(env)
    host = urlsplit(target.url).hostname or ""
    if not env.get("ANTHROPIC_API_KEY") and host.endswith(_KEYED_HOST_SUFFIXES):
        raise CliError(NO_KEY, ExitCode.SETUP)
    problem = connect_problem(target.host, target.port, timeout)
    if problem:
        via = f" through the proxy {target.proxy}" if target.proxy else ""
        fix = "the proxy setting" if target.proxy else "ANTHROPIC_BASE_URL"
        raise CliError(f"cannot reach the model endpoint {target.url}{via}: {problem}; "
                       f"check the network connection or {fix}", ExitCode.SETUP)


def endpoint_target(env: Mapping[str, str]) -> Target:
    """Where the SDK will connect for ``ANTHROPIC_BASE_URL`` (proxies from the same
    environment variables httpx honours). Raises CliError for a URL that is not one."""
    url = env.get("ANTHROPIC_BASE_URL", DEFAULT_BASE_URL).strip()
    parts = _split(url, "ANTHROPIC_BASE_URL")
    proxy = _proxy_for(parts.scheme, parts.hostname or "", env)
    if proxy:
        proxy_parts = _split(proxy, "the proxy variable")
        return Target(url, proxy_parts.hostname or "", _port(proxy_parts), proxy)
    return Target(url, parts.hostname or "", _port(parts))


def _split(url: str, name: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        raise CliError(f"{name} is not a usable URL ({url!r}: {exc})", ExitCode.SETUP) from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise CliError(f"{name} must be an http:// or https:// URL such as "
                       f"{DEFAULT_BASE_URL}, not {url!r}", ExitCode.SETUP)
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme]


def _proxy_for(scheme: str, host: str, env: Mapping[str, str]) -> str | None:
    def var(name: str) -> str:
        return env.get(name.lower()) or env.get(name.upper()) or ""

    proxy = var(f"{scheme}_proxy") or var("all_proxy")
    if not proxy:
        return None
    if _bypassed(host, var("no_proxy")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl and httpx read it: "*", or host names and domain suffixes."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        name = entry.rpartition(":")[0] if entry.count(":") == 1 else entry
        name = name.lstrip(".")
        if entry == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def connect_problem(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to host:port opens within ``timeout``, else why not.

    The attempt runs on a daemon thread: name resolution has no timeout of its own, and a
    resolver that hangs must not hold up the answer (or the exit)."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name="lsp-agent-preflight", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no connection to {host}:{port} within {timeout:g} s"
    error = outcome[0]
    if error is None:
        return None
    return _describe(error, host, port, timeout)


def _describe(error: BaseException, host: str, port: int, timeout: float) -> str:
    if isinstance(error, socket.gaierror):
        return f"the host name {host} does not resolve ({error.strerror})"
    if isinstance(error, ConnectionRefusedError):
        return f"nothing listens on {host}:{port} (connection refused)"
    if isinstance(error, TimeoutError):
        return f"no connection to {host}:{port} within {timeout:g} s"
    reason = getattr(error, "strerror", None) or str(error)
    return f"no connection to {host}:{port} ({reason})"
