"""``lsp-agent run``: one headless turn through the language server, with answers from the
terminal (or from ``--permission-mode`` / ``--yes``).

stdout carries the turn (text, or JSON lines with ``--json``); questions, notes and the server's
log go to stderr, so that ``run --json | jq`` always parses. Without a terminal nobody can
answer a question: it is refused, and the note names the options that answer it in advance.
Ctrl-C cancels the turn (a second one quits at once); the exit code says how the run ended
(errors.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pygls.exceptions import JsonRpcException

from lsp_agent.client.errors import (
    EXIT_FOR_STOP_REASON,
    SETUP_ERROR_KINDS,
    CliError,
    ExitCode,
)
from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.client.render import Renderer, describe_permission
from lsp_agent.server import protocol as p
from lsp_agent.types import events as ev

NO_TERMINAL_HINT = ("answer in advance with --yes, --allow RULE or --permission-mode "
                    "(acceptEdits for edits, bypassPermissions for everything)")
# To the agent (the server may add a full stop): why, and what the user can do about it.
REFUSED_FOR_AGENT = ("not allowed: this run has no terminal, so nobody could be asked; the user "
                     "can run it again with --yes, --allow or --permission-mode")


class TerminalLines:
    """Lines typed on the terminal, read by one daemon thread (a blocked read never holds up
    the exit, and a question that was withdrawn does not leave a reader behind that would
    swallow the next answer)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] | None = None

    @staticmethod
    def available() -> bool:
        return sys.stdin is not None and sys.stdin.isatty()

    async def ask(self, question: str, out: TextIO) -> str | None:
        """The answer, lower-cased; None when the terminal closed (end of input)."""
        queue = self._start()
        while not queue.empty():  # typed before the question was asked: not an answer to it
            queue.get_nowait()
        out.write(question)
        out.flush()
        line = await queue.get()
        if line is None:
            queue.put_nowait(None)  # closed for good: later questions get None too
            return None
        return line.strip().lower()

    def _start(self) -> asyncio.Queue[str | None]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            loop, queue = asyncio.get_running_loop(), self._queue
            threading.Thread(target=self._pump, args=(loop, queue), name="lsp-agent-tty",
                             daemon=True).start()
        return self._queue

    @staticmethod
    def _pump(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader would
        # hold its lock, and the interpreter aborts at exit when it cannot take it.
        pending = b""
        while True:
            try:
                chunk = os.read(0, 4096)
            except OSError:
                chunk = b""
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop() if chunk else b""  # at the end, a last unfinished line counts
            items: list[str | None] = [line.decode(errors="replace") for line in lines
                                       if chunk or line]
            if not chunk:
                items.append(None)  # the end of input: no answer will come
            for item in items:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the loop is closed: the run is over
                    return
            if not chunk:
                return


class TerminalAnswers:
    """The user of a headless run: asks on the terminal, or answers yes to everything
    (``--yes``), or, without a terminal, refuses and says how to answer in advance."""

    def __init__(self, renderer: Renderer, yes: bool, notes: TextIO | None = None,
                 terminal: TerminalLines | None = None):
        self.renderer = renderer
        self.yes = yes
        self.notes = notes or sys.stderr
        self.terminal = terminal or TerminalLines()

    def say(self, text: str) -> None:
        self.renderer.end_line()  # a streamed sentence on stdout ends before a question
        self.notes.write(text + "\n")
        self.notes.flush()

    async def _ask(self, question: str) -> str | None:
        if not self.terminal.available():
            return None
        return await self.terminal.ask(question, self.notes)

    async def permission(self, params: dict[str, Any]) -> dict[str, Any]:
        self.say(f"? {describe_permission(params)}")
        if params.get("reason"):
            self.say(f"  reason: {params['reason']}")
        if self.yes:
            self.say("  allowed (--yes)")
            return {"decision": "allow"}
        answer = await self._ask("  allow? [y]es / [a]lways this session / [N]o: ")
        if answer is None:
            self.say(f"  not allowed: there is no terminal to ask on; {_rule_hint(params)}")
            return {"decision": "deny", "message": REFUSED_FOR_AGENT}
        if answer in ("y", "yes"):
            return {"decision": "allow"}
        if answer in ("a", "always"):
            return {"decision": "allow", "remember": True}
        return {"decision": "deny", "message": "the user declined at the terminal"}

    async def proposal(self, event: ev.ProposalCreated) -> dict[str, Any]:
        if self.yes:
            self.say("  applying the change (--yes)")
            return {"accept": "all"}
        answer = await self._ask("  apply this change? [y]es / [N]o: ")
        if answer is None:
            self.say("  not applied: there is no terminal to review it on; answer in advance "
                     "with --yes or --permission-mode acceptEdits")
            return {"reject": "all", "feedback": REFUSED_FOR_AGENT}
        if answer in ("y", "yes"):
            return {"accept": "all"}
        feedback = await self._ask("  feedback for the agent (optional): ")
        return {"reject": "all", "feedback": feedback or None}


def _rule_hint(params: dict[str, Any]) -> str:
    command = (params.get("input") or {}).get("command") if params.get("tool") == "Bash" else None
    if isinstance(command, str) and "\n" not in command and "'" not in command \
            and len(command) <= 60:
        return (f"answer in advance with --yes, --allow 'Bash({command})' or --permission-mode "
                "(acceptEdits for edits, bypassPermissions for everything)")
    return NO_TERMINAL_HINT


class HeadlessRun:
    """One prompt through a fresh ``lsp-agent serve``, Ctrl-C aware."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], simulated: bool = False,
                 server: asyncio.subprocess.Process | None = None):
        self.args = args
        self.env = env
        self.server = server  # started already (spawn.py), else the client starts it
        self.renderer = Renderer(as_json=args.json, simulated=simulated)
        self.answers = TerminalAnswers(self.renderer, args.yes)
        self.error_kinds: list[str] = []
        self.last_error = ""
        self.session: str | None = None
        self.interrupts = 0
        self._cancel: asyncio.Task[Any] | None = None

    def on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ErrorEvent) and not event.recoverable:
            self.error_kinds.append(event.kind)
            self.last_error = event.message
        self.renderer(event)

    async def main(self) -> ExitCode:
        rules = {kind: getattr(self.args, kind) for kind in ("allow", "ask", "deny")
                 if getattr(self.args, kind)}
        options: dict[str, Any] = {"permissions": rules} if rules else {}
        # No editor asks for hover or outlines: the server starts no symbol index process
        # (the agent's tools answer from jedi).
        options["pythonLanguageFeatures"] = False
        if getattr(self.args, "plugin_dir", None):
            options["pluginDirs"] = [str(d) for d in self.args.plugin_dir]  # resolved by the CLI
        client = AgentClient(Path(self.args.workspace), self.on_event, self.answers.permission,
                             self.answers.proposal, env=self.env,
                             initialization_options=options,
                             server_stderr=sys.stderr.buffer, server=self.server)
        with self._interrupts(client):
            try:
                result = await self._turn(client)
                await client.stop()
            except CliError:  # e.g. no session to continue: said as it is
                await client.kill()
                raise
            except asyncio.CancelledError:  # a second Ctrl-C, or one before the turn began
                _uncancel()
                await client.kill()
                return self._interrupted()
            except Exception as exc:
                await client.kill()
                raise self._server_failure(client, exc) from None
        stop_reason = str(result.get("stopReason"))
        if stop_reason == "cancelled" and self.interrupts:
            return self._interrupted()
        return self._exit_code(stop_reason)

    async def _turn(self, client: AgentClient) -> dict[str, Any]:
        await saved_session(self.args, self.env)  # a wrong id fails before the server starts
        await client.start()
        self.session = await self._session(client)
        result = await client.prompt(self.session, self.args.prompt)
        if result.get("stopReason") in ("end_turn", "max_turns"):  # a failure says one line
            self.answers.say(f"lsp-agent: session {self.session} (go on with: lsp-agent run "
                             f"--resume {self.session} ...)")
        return result

    async def _session(self, client: AgentClient) -> str:
        """A new session, or the saved one --continue / --resume names."""
        wanted = await saved_session(self.args, self.env)
        if wanted is None:
            return await client.new_session(mode=self.args.permission_mode,
                                            model=self.args.model)
        params: dict[str, Any] = {"sessionId": wanted}
        if self.args.permission_mode:
            params["mode"] = self.args.permission_mode
        try:
            resumed = await client.request("agent/resumeSession", params)
        except JsonRpcException as exc:
            raise CliError(f"cannot resume session {wanted}: {exc.message}") from None
        if self.args.permission_mode and resumed["mode"] != self.args.permission_mode:
            await client.request("agent/setMode", {"sessionId": wanted,
                                                   "mode": self.args.permission_mode})
        if self.args.model:
            await client.request("agent/setModel", {"sessionId": wanted,
                                                    "model": self.args.model})
        for warning in resumed.get("warnings", []):
            self.answers.say(f"lsp-agent: {warning}")
        return str(resumed["sessionId"])

    def _exit_code(self, stop_reason: str) -> ExitCode:
        code = EXIT_FOR_STOP_REASON.get(stop_reason, ExitCode.TURN_FAILED)
        if code is ExitCode.TURN_FAILED and self.error_kinds \
                and self.error_kinds[-1] in SETUP_ERROR_KINDS:
            code = ExitCode.SETUP
        if code is not ExitCode.OK and self.args.json and self.last_error:
            self.answers.say(f"lsp-agent: error: {self.last_error}")  # stdout has JSON only
        return code

    def _interrupted(self) -> ExitCode:
        self.answers.say("lsp-agent: interrupted")
        return ExitCode.INTERRUPTED

    def _server_failure(self, client: AgentClient, exc: Exception) -> CliError:
        code = client.server_exit_code
        if code is not None:
            return CliError(f"the language server stopped unexpectedly (exit code {code}); "
                            "its log is above", ExitCode.TURN_FAILED)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return CliError(f"the language server refused the turn: {message}",
                        ExitCode.TURN_FAILED)

    @contextlib.contextmanager
    def _interrupts(self, client: AgentClient) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()

        def on_sigint() -> None:
            self.interrupts += 1
            if self.interrupts == 1 and self.session is not None:
                self.answers.say("lsp-agent: cancelling the turn (Ctrl-C again to quit now)")
                self._cancel = asyncio.ensure_future(self._cancel_turn(client))
            elif main is not None:
                main.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError):  # no signals here: Ctrl-C ends the run
            yield
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    async def _cancel_turn(self, client: AgentClient) -> None:
        with contextlib.suppress(Exception):
            await client.request(p.CANCEL, {"sessionId": self.session})


async def saved_session(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """The session --continue or --resume names, checked on disk (None: start a new one)."""
    from lsp_agent.client.saved import state_dir
    from lsp_agent.store import InvalidSessionId, Store

    store = Store(state_dir(env))
    workspace = Path(args.workspace)
    if getattr(args, "continue_session", False):
        latest = await store.latest(workspace)
        if latest is None:
            raise CliError(f"no saved session in {workspace} to continue; run without "
                           "--continue to start one")
        return latest
    wanted = getattr(args, "resume", None)
    if wanted is None:
        return None
    try:
        exists = store.layout.transcript(workspace, wanted).exists()
    except InvalidSessionId as exc:
        raise CliError(f"cannot resume session {wanted}: {exc}") from None
    if not exists:
        raise CliError(f"cannot resume session {wanted}: no such session in {workspace} "
                       "(list them with: lsp-agent sessions)")
    return str(wanted)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def run_headless(args: argparse.Namespace, env: dict[str, str], simulated: bool = False) -> int:
    return int(asyncio.run(HeadlessRun(args, env, simulated).main()))
