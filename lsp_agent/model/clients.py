"""SDK clients, built off the event loop and ahead of need.

Importing the ``anthropic`` SDK and building its client takes about a second of CPU (its
``types`` package alone is some 1,500 pydantic models). Done on the event loop at the first
prompt, that second is the user's wait, and no other message is answered meanwhile. So the
build runs on a thread: started early (``preload``: the server does it when the client sends
``agent/warmUp``, or as ``LSP_AGENT_PRELOAD_MODEL`` says, README.md, "Cold start"; at the
latest a new session does), and
awaited by the first call that needs the client, which leaves the loop free while it waits.

One client per endpoint and key (``ClientKey``), shared by every session of a front end and
their children. A build that failed is tried again by the next caller, so that the failure
reaches the user at first use with its own error, as it would without the preload.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from lsp_agent.model.client import ModelSettings, make_client

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

ClientKey = tuple[str | None, str | None]  # (base URL, API key)
Build = concurrent.futures.Future["anthropic.AsyncAnthropic"]

PRELOAD_ENV = "LSP_AGENT_PRELOAD_MODEL"
# What LSP_AGENT_PRELOAD_MODEL asks for: from which moment on the server starts the build
# (off: only with a session).
PRELOAD_WHEN = {"0": "off", "off": "off", "false": "off", "no": "off",
                "1": "initialized", "on": "initialized", "true": "initialized",
                "yes": "initialized", "initialized": "initialized",
                "": "warmUp", "warmup": "warmUp", "early": "start", "start": "start"}
# The moments, in the order they come: a setting preloads at its moment and at every later one.
PRELOAD_MOMENTS = ("start", "initialized", "warmUp")


def preload_when(environ: dict[str, str] | None = None) -> str:
    """"start" (at process start, before initialize: ``run``'s own server), "initialized"
    (right after it), "warmUp" (the default: when the client sends ``agent/warmUp``, so that
    an idle editor's server does not carry the SDK) or "off" (with the first session only;
    the test suite, where most servers never create one)."""
    value = (environ if environ is not None else os.environ).get(PRELOAD_ENV, "")
    return PRELOAD_WHEN.get(value.strip().lower(), "warmUp")


def preloads_at(moment: str, environ: dict[str, str] | None = None) -> bool:
    """Whether the server starts the build at ``moment`` (one of PRELOAD_MOMENTS). Every
    setting but "off" also preloads at the moments after its own (a no-op once started)."""
    setting = preload_when(environ)
    return setting != "off" and PRELOAD_MOMENTS.index(moment) >= PRELOAD_MOMENTS.index(setting)


def client_key(settings: ModelSettings) -> ClientKey:
    return (settings.base_url, settings.api_key)


class ClientPool:
    def __init__(self) -> None:
        self._builds: dict[ClientKey, Build] = {}
        self._lock = threading.Lock()

    def preload(self, settings: ModelSettings) -> None:
        """Start building the client for ``settings`` on a thread, unless already under way."""
        self._build(settings)

    def preloaded(self, settings: ModelSettings) -> bool:
        """A build for these settings was started (and has not failed)."""
        build = self._builds.get(client_key(settings))
        return build is not None and not (build.done() and build.exception() is not None)

    async def client(self, settings: ModelSettings) -> anthropic.AsyncAnthropic:
        """The client, once built; raises what building it raised."""
        return await asyncio.wrap_future(self._build(settings))

    def client_now(self, settings: ModelSettings) -> anthropic.AsyncAnthropic:
        """The client, built on this thread if no build was started (a synchronous caller)."""
        build = self._build(settings, start=False)
        if not (build.running() or build.done()):
            self._run(build, settings)
        return build.result()

    def _build(self, settings: ModelSettings, start: bool = True) -> Build:
        key = client_key(settings)
        with self._lock:
            build = self._builds.get(key)
            if build is None or (build.done() and build.exception() is not None):
                build = self._builds[key] = concurrent.futures.Future()
                if start:
                    threading.Thread(target=self._run, args=(build, settings),
                                     name="lsp-agent-model-client", daemon=True).start()
        return build

    @staticmethod
    def _run(build: Build, settings: ModelSettings) -> None:
        if not build.set_running_or_notify_cancel():
            return
        started = time.monotonic()
        log.info("building the model client (%s)", threading.current_thread().name)
        try:
            client = make_client(settings)
        except BaseException as exc:
            log.info("building the model client failed: %s", exc)
            build.set_exception(exc)  # raised again where the client is awaited
            return
        log.info("model client ready in %.2f s", time.monotonic() - started)
        build.set_result(client)
