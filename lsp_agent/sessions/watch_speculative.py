"""Speculative fixes (docs/autonomy.md, "Speculative fixes"): with the watcher on, a new error
diagnostic gets its fix prepared before the user asks, so that "Fix with agent" on it opens the
prepared proposal at once instead of starting a turn.

Lowest priority, within the watcher's budgets: it waits until the user stopped typing in that
document (``watch.quietSeconds``), until no test run or other fix is being prepared in the
workspace, and one is prepared at a time. It is dropped -- its session cancelled, its proposal
withdrawn -- as soon as that document changes: the fix was made for text that is gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsp_agent.sessions.watch_signals import diagnostic_key, same_place

if TYPE_CHECKING:
    from lsp_agent.sessions.session import Session
    from lsp_agent.sessions.watcher import Run, Watcher
    from lsp_agent.types import editor as ed
else:  # the editor models load with the first use (types/lazy.py)
    from lsp_agent.types.lazy import editor as ed

MAX_TITLE = 80
SPECULATIVE_KEEPS = 1  # runs of the hourly budget left for failing tests (lowest priority)
def fix_prompt(diagnostic: ed.Diagnostic) -> str:
    """What "Fix with agent" asks of the model (server/actions.py), and a speculation too."""
    return (f"Fix this problem the editor reports: {diagnostic.message}\n"
            "Find the cause (it may be in another file), propose the fix, and verify it.")


UNATTENDED = ("\nNobody is watching this session: do not ask questions. Your edits are "
              "proposals the user reviews when they ask for this fix.")


@dataclass
class Speculation:
    workspace: Path
    uri: str
    path: Path
    diagnostic: dict[str, Any]  # as the client sent it (its positions in the client's encoding)
    version: int | None  # the document's version it was seen at (None: not open)
    run: Run | None = None  # once started
    tried: tuple[Any, ...] = field(default=())
    waited: bool = False  # the log said it waits for the typing to stop
    adopted: bool = False  # the user took it (reviewed it, or asked for it): theirs now

    @property
    def session(self) -> Session | None:
        return self.run.session if self.run is not None else None


class Speculator:
    def __init__(self, watcher: Watcher):
        self._watcher = watcher
        self._waiting: dict[str, Speculation] = {}  # uri -> the new error to prepare next
        self._started: list[Speculation] = []
        self._tried: set[tuple[Any, ...]] = set()
        self._timer: asyncio.TimerHandle | None = None

    # -- what it hears -----------------------------------------------------------------------

    def on_new_errors(self, workspace: Path, uri: str, path: Path,
                      errors: list[dict[str, Any]]) -> None:
        version = self._version(path)
        for error in errors:
            tried = (uri, version, diagnostic_key(error), str(error.get("range")))
            if tried not in self._tried:
                self._waiting[uri] = Speculation(workspace, uri, path, error, version,
                                                 tried=tried)
                break
        self.pump()

    def on_document_changed(self, uri: str) -> None:
        self._waiting.pop(uri, None)
        for spec in [s for s in self._started if s.uri == uri]:
            session = spec.session
            if spec.adopted or (session is not None and session.proposals.reviewing):
                continue  # the change is the user's review landing, or the fix is theirs
            self._drop(spec, "the document changed")

    def adopt(self, session_id: str) -> None:
        """The user reviewed one of its proposals: no longer speculative, never dropped."""
        for spec in self._started:
            if spec.session is not None and spec.session.id == session_id:
                spec.adopted = True

    # -- starting one --------------------------------------------------------------------------

    def pump(self) -> None:
        """Start the next waiting speculation if nothing has priority over it now."""
        if not self._waiting or any(s.run is not None and s.run.preparing
                                    for s in self._started):
            return
        watcher = self._watcher
        soonest: float | None = None  # when the next one waiting for quiet may start
        for uri, spec in list(self._waiting.items()):
            config = watcher.active(spec.workspace)
            if config is None or not config.speculative:
                del self._waiting[uri]
                continue
            wait = watcher.typing_wait(spec.workspace, config.quiet_seconds, spec.path)
            if wait > 0:
                if not spec.waited:
                    spec.waited = True
                    watcher.log_decision(spec.workspace, event="diagnostic",
                                         file=str(spec.path), action="wait",
                                         why="the user is typing in it")
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            if watcher.preparing(spec.workspace):
                continue  # looked at again when that ends
            del self._waiting[uri]
            if not self._still_current(spec):
                continue
            if not watcher.take_budget(spec.workspace, config, "diagnostic",
                                       keep=SPECULATIVE_KEEPS):
                continue
            self._start(spec, config.mode)
            return  # one at a time
        if soonest is not None:
            self._wake_in(soonest)

    def _still_current(self, spec: Speculation) -> bool:
        return self._version(spec.path) == spec.version and any(
            same_place(spec.diagnostic, d) for d in self._watcher.diagnostics.current(spec.uri))

    def _start(self, spec: Speculation, mode: str) -> None:
        from lsp_agent.sessions.watcher import Run

        watcher = self._watcher
        host = watcher.host
        diagnostic = ed.Diagnostic.model_validate(spec.diagnostic)
        session = host.manager.create(spec.workspace, mode)  # type: ignore[arg-type]
        message = diagnostic.message.strip().splitlines()[0] if diagnostic.message.strip() else ""
        title = f"Fix prepared for {spec.path.name}: {message}"
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "…"
        item = watcher.inbox.new_item("diagnostic", spec.workspace, title, diagnostic.message,
                                session_id=session.id, uri=spec.uri)
        spec.run = Run(spec.workspace, session, item)
        watcher.add_run(spec.run)
        self._started.append(spec)
        self._tried.add(spec.tried)
        watcher.log_decision(spec.workspace, event="diagnostic", file=str(spec.path),
                             action="fix", session=session.id,
                             why="a new error diagnostic, prepared in advance")
        context = ed.EditorContext(uri=spec.uri, range=diagnostic.range, diagnostics=[diagnostic])
        session.begin(fix_prompt(diagnostic) + UNATTENDED, host.context_in(context))

    def _wake_in(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self.pump()

    # -- dropping and using one ----------------------------------------------------------------

    def _drop(self, spec: Speculation, why: str) -> None:
        self._started.remove(spec)
        session = spec.session
        if session is None:
            return
        self._watcher.log_decision(spec.workspace, event="diagnostic", file=str(spec.path),
                          action="drop", session=session.id, why=why)
        if session.busy:  # its pending proposals are withdrawn with the turn
            self._watcher.spawn(session.cancel())

    def prepared_for(self, uri: str, diagnostic: dict[str, Any]) -> Speculation | None:
        """The speculation made for this diagnostic (same document, range and message; the
        document unchanged since), when it is still at work or has proposals waiting."""
        for spec in reversed(self._started):
            session = spec.session
            if spec.uri != uri or session is None or not same_place(spec.diagnostic,
                                                                  diagnostic):
                continue
            if self._version(spec.path) != spec.version:
                continue
            if session.busy or session.proposals.pending_ids:
                return spec
        return None

    def _version(self, path: Path) -> int | None:
        return self._watcher.host.open_version(path)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


__all__ = ["Speculation", "Speculator", "fix_prompt"]
