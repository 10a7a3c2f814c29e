"""The watcher (docs/autonomy.md, "The watcher"): a saved file, a periodic tick that
finds something changed, or git HEAD moving runs the configured test command in the background
(debounced, never while the user types); a new failure, within the budgets, starts a background
session that prepares a fix as a proposal; the user gets an ``agent/inbox`` item and reviews
the proposal with ``agent/review`` as usual. New error diagnostics may get their fix prepared
before anyone asks (watch_speculative.py); formatting and lint fixes the user granted land on
their own (watch_autoapply.py). A model-made fix is never applied on its own.

Triage is deterministic and cheapest first: enabled and not paused, approved (a project's own
watcher), debounced, the user not typing, something changed, the command failed, this failure
not tried before, the daily cost cap and the hourly budget not spent; then, with
``watch.triage``, one small model request decides whether the failure is worth a fix session
(watch_triage.py). Every decision goes to the daily log in the state dir.

The front end that runs it (server/watch_api.py for LSP) hands it what it hears -- saves,
typing, diagnostics, the sessions' events -- and gives it a WatchHost: the session manager,
the documents, the edit applier and a way to tell the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.context.cost import price_for, usd
from lsp_agent.edits.proposal import HunkSelection
from lsp_agent.permissions.hooks import run_bounded
from lsp_agent.sessions.watch import (
    Approvals,
    Budget,
    DailyCost,
    DailyLog,
    WatchConfig,
    failure_key,
    load,
    today,
)
from lsp_agent.sessions.watch_autoapply import AutoApplier
from lsp_agent.sessions.watch_inbox import Inbox
from lsp_agent.sessions.watch_inbox_store import InboxStore, Record, SavedFile
from lsp_agent.sessions.watch_signals import DiagnosticSets, Snapshot
from lsp_agent.sessions.watch_speculative import Speculator
from lsp_agent.sessions.watch_triage import TriageVerdict, triage

if TYPE_CHECKING:
    from lsp_agent.sessions.manager import SessionManager
    from lsp_agent.sessions.proposals import EditApplier, ReviewResult
    from lsp_agent.sessions.session import Session
    from lsp_agent.types import events as ev
    from lsp_agent.types.editor import EditorContext
    from lsp_agent.types.watch import InboxItem, WatchEventKind
    from lsp_agent.workspace.documents import DocumentSource
else:  # the event models load with the first event (types/lazy.py)
    from lsp_agent.types.lazy import events as ev

log = logging.getLogger(__name__)

MAX_OUTPUT_SHOWN = 4_000


class WatchHost(Protocol):
    """What the watcher needs from the front end that runs it."""

    @property
    def manager(self) -> SessionManager: ...

    @property
    def documents(self) -> DocumentSource: ...

    @property
    def applier(self) -> EditApplier: ...

    def state_dir(self) -> Path: ...

    def watch_options(self) -> Any:
        """The ``watch`` initialization option (None: the settings files decide)."""

    def workspace_for(self, path: Path) -> Path: ...

    def open_version(self, path: Path) -> int | None:
        """The version of ``path``'s open document (None: not open)."""

    def context_in(self, context: EditorContext) -> EditorContext:
        """An editor context from the client, its positions made the server's."""

    def send_inbox(self, item: dict[str, Any]) -> None: ...

    def send_watch_event(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Trigger:
    event: str  # "save", "tick" (something changed), "head" (git HEAD moved)
    why: str  # in words, for the log and the inbox title
    file: Path | None = None  # the file saved


@dataclass
class Place:
    """The watcher's state for one workspace."""

    snapshot: Snapshot
    tried: set[str] = field(default_factory=set)
    budget: Budget | None = None
    debounce: asyncio.TimerHandle | None = None
    tick: asyncio.TimerHandle | None = None
    checking: bool = False  # the test command (or an auto-apply) runs now
    again: Trigger | None = None  # a trigger that came while it ran
    last_result: str | None = None  # "passed", the last failure's key; None: no run yet
    budget_reported: str | None = None  # the day the daily cap was reported
    ticks: int = 0  # ticks that looked for changes (shown by agent/watchStatus)
    queued: int = 0  # checks started but not yet running

    @property
    def activity(self) -> str:
        if self.checking:
            return "running"
        return "scheduled" if self.debounce is not None or self.queued else "idle"


@dataclass
class Run:
    """A background session the watcher started, and the inbox item it fills."""

    workspace: Path
    session: Session
    item: InboxItem

    @property
    def preparing(self) -> bool:
        return self.session.busy and not self.item.proposal_ids


class Watcher:
    def __init__(self, host: WatchHost):
        self._host = host
        self.paused = False
        self.inbox = Inbox(host.send_inbox, host.state_dir)
        self._restoring: dict[Path, asyncio.Future[None]] = {}  # the kept inbox being read
        self.inbox_warnings: dict[Path, list[str]] = {}
        self.places: dict[Path, Place] = {}
        self._runs: dict[str, Run] = {}  # watcher session id -> its run
        self._typed: dict[Path, float] = {}  # when the user last changed each document
        self.applying: set[Path] = set()  # files the watcher itself is editing now
        self.diagnostics = DiagnosticSets()
        self.speculative = Speculator(self)
        self.auto_apply = AutoApplier(self)
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def host(self) -> WatchHost:
        return self._host

    def state_dir(self) -> Path:
        return self._host.state_dir()

    def config(self, workspace: Path) -> tuple[WatchConfig | None, list[str]]:
        return load(workspace, self._host.watch_options())

    def active(self, workspace: Path, event: str | None = None,
               file: Path | None = None) -> WatchConfig | None:
        """The workspace's watcher when it may act now: enabled, approved, not paused.
        ``event``: log why not when it is not approved."""
        if self.paused:
            return None
        config, _ = self.config(workspace)
        if config is None or not config.enabled:
            return None
        if not Approvals(self.state_dir()).approved(workspace, config):
            if event is not None:
                self.log_decision(workspace, event=event, file=str(file) if file else None,
                         action="none",
                         why="the project's watcher is not approved (agent/watchApprove)")
            return None
        return config

    def _place(self, workspace: Path) -> Place:
        place = self.places.get(workspace)
        if place is None:
            place = self.places[workspace] = Place(Snapshot())
            place.snapshot.refresh(workspace)  # HEAD as it is now: only a move triggers
        return place

    # -- triggers ----------------------------------------------------------------------------

    def start(self, workspace: Path) -> None:
        """Start ticking for ``workspace`` (at initialization, and when approved); read the
        inbox an earlier server kept for it (once, whether the watcher is on or not: what it
        prepared may still wait for review)."""
        if workspace not in self._restoring:
            self._restoring[workspace] = asyncio.ensure_future(self._restore(workspace))
        config = self.active(workspace)
        if config is not None:
            self._arm_tick(workspace, config)

    def on_save(self, path: Path) -> None:
        workspace = self._host.workspace_for(path)
        config = self.active(workspace, "save", path)
        if config is None:
            return
        place = self._place(workspace)
        place.snapshot.track(path)
        self._arm_tick(workspace, config)
        self._schedule(workspace, config, Trigger("save", f"{path.name} was saved", path))

    def on_change(self, uri: str) -> None:
        """The user changed a document (didChange): nothing starts for it while they type,
        and what was prepared for its old text is dropped."""
        fs = to_fs_path(uri)
        if fs and Path(fs) not in self.applying:
            self._typed[Path(fs)] = time.monotonic()
        self.speculative.on_document_changed(uri)

    def on_diagnostics(self, uri: str, diagnostics: list[dict[str, Any]], full: bool) -> None:
        """A document's diagnostics (its whole set, or those a code action request carried):
        a new error or a set that got worse is a trigger."""
        change = self.diagnostics.update(uri, diagnostics, full)
        fs = to_fs_path(uri)
        if not change.is_trigger or not fs:
            return
        path = Path(fs)
        workspace = self._host.workspace_for(path)
        config = self.active(workspace)
        if config is None:
            return
        place = self._place(workspace)
        place.snapshot.track(path)
        self._arm_tick(workspace, config)
        speculate = config.speculative and bool(change.new_errors)
        self.log_decision(workspace, event="diagnostics", file=str(path),
                 newErrors=len(change.new_errors), worse=change.worse,
                 action="speculate" if speculate else "none",
                 why="a new error diagnostic" if change.new_errors else "more warnings")
        if speculate:
            self.speculative.on_new_errors(workspace, uri, path, change.new_errors)

    def _schedule(self, workspace: Path, config: WatchConfig, trigger: Trigger,
                  delay: float | None = None) -> None:
        place = self._place(workspace)
        if place.debounce is not None:
            place.debounce.cancel()  # a save every second runs the command once, after the last
        place.debounce = asyncio.get_running_loop().call_later(
            config.debounce_seconds if delay is None else delay, self._fire, workspace, trigger)

    def _fire(self, workspace: Path, trigger: Trigger) -> None:
        self._place(workspace).debounce = None
        self._queue_check(workspace, trigger)

    def _queue_check(self, workspace: Path, trigger: Trigger) -> None:
        self._place(workspace).queued += 1
        self.spawn(self._check(workspace, trigger))

    def _arm_tick(self, workspace: Path, config: WatchConfig) -> None:
        place = self._place(workspace)
        if place.tick is None:
            place.tick = asyncio.get_running_loop().call_later(
                config.tick_seconds, self._on_tick, workspace)

    def _on_tick(self, workspace: Path) -> None:
        self._place(workspace).tick = None
        self.spawn(self._tick(workspace))

    async def _tick(self, workspace: Path) -> None:
        """Idle costs a few stats and two small reads: no subprocess, no model call."""
        config = self.active(workspace)
        if config is None:
            return  # not re-armed: the next save or diagnostic arms it again
        self._arm_tick(workspace, config)
        place = self._place(workspace)
        place.ticks += 1
        if place.checking or place.debounce is not None or not config.test_command:
            return  # a run is going on or coming: it covers whatever changed
        changes = await asyncio.to_thread(place.snapshot.changes, workspace)
        if changes:
            head = changes[0].startswith("git HEAD")
            self._queue_check(workspace, Trigger("head" if head else "tick",
                                                 "; ".join(changes[:3])))

    # -- the test run --------------------------------------------------------------------------

    async def _check(self, workspace: Path, trigger: Trigger) -> None:
        place = self._place(workspace)
        place.queued -= 1
        config = self.active(workspace, trigger.event, trigger.file)
        if config is None:
            return
        if place.checking:
            place.again = trigger  # looked at when this run ends
            return
        wait = self.typing_wait(workspace, config.quiet_seconds)
        if wait > 0:
            self.log_decision(workspace, event=trigger.event, action="wait",
                     why=f"the user is typing; looks again in {wait:.1f} s")
            self._schedule(workspace, config, trigger, delay=wait)
            return
        place.checking = True
        try:
            if trigger.file is not None and config.commands:
                await self.auto_apply.run(workspace, config, trigger.file)
            if config.test_command:
                await self._run_tests(workspace, config, trigger)
        except Exception:
            log.exception("the watcher failed on %s", workspace)
        finally:
            place.checking = False
            again, place.again = place.again, None
            if again is not None:
                await self._check_again(workspace, config, again)
            self.speculative.pump()

    async def _check_again(self, workspace: Path, config: WatchConfig, trigger: Trigger) -> None:
        changes = await asyncio.to_thread(self._place(workspace).snapshot.changes, workspace)
        if changes:
            self._schedule(workspace, config, trigger)
        else:
            self.log_decision(workspace, event=trigger.event, action="none",
                     why="covered by the run that was going on")

    async def _run_tests(self, workspace: Path, config: WatchConfig, trigger: Trigger) -> None:
        assert config.test_command
        place = self._place(workspace)
        await asyncio.to_thread(place.snapshot.refresh, workspace)  # what this run sees
        code, out, err = await run_bounded(config.test_command, "", workspace,
                                           config.test_timeout_seconds)
        where = {"event": trigger.event, "file": str(trigger.file) if trigger.file else None}
        if code == 0:
            self.log_decision(workspace, **where, action="none", why="the test command passed")
            if place.last_result != "passed":  # after a failure, or the first run
                self.watch_event("testsPassed", workspace, f"`{config.test_command}` passes")
            place.last_result = "passed"
            return
        output = (out + ("\n" + err if err else "")).strip()
        key = failure_key(config.test_command, output)
        if key != place.last_result:
            self.watch_event("testsFailed", workspace,
                             f"`{config.test_command}` fails ({trigger.why})")
        place.last_result = key
        if key in place.tried:
            self.log_decision(workspace, **where, action="none",
                              why="this failure was tried already")
            return
        if not self.take_budget(workspace, config, "test_failed"):
            return
        place.tried.add(key)
        verdict = None
        if config.triage:
            verdict = await self._triage(workspace, config, code, output)
            if not verdict.fix:
                self._declined(workspace, config, trigger, output, key, verdict)
                return
        self._start_fix(workspace, config, trigger, code, output, key, verdict)

    async def _triage(self, workspace: Path, config: WatchConfig, code: int | None,
                      output: str) -> TriageVerdict:
        """One small model request: is this failure worth a fix session (watch_triage.py)?
        Its cost counts against the daily cap."""
        assert config.test_command
        manager = self._host.manager
        service = manager.factory.model_service(manager.settings)
        model = config.triage_model or manager.settings.classifier_model
        verdict = await triage(service, model, config.test_command, code, output,
                               self.inbox.redactor)
        if verdict.usage is not None:
            self._charge(workspace, verdict.model, verdict.usage)
        self.log_decision(workspace, event="triage", action="fix" if verdict.fix else "none",
                          why=verdict.reason, error=verdict.error, model=verdict.model)
        return verdict

    def _declined(self, workspace: Path, config: WatchConfig, trigger: Trigger, output: str,
                  key: str, verdict: TriageVerdict) -> None:
        """The triage said no: an item (no session) that says why, and a watch event."""
        shown = output[-MAX_OUTPUT_SHOWN:]
        title = f"`{config.test_command}` fails ({trigger.why}); no fix prepared"
        item = self.inbox.new_item("test_failure", workspace, title, shown[-500:],
                                   triage=verdict.view())
        self.inbox.note_failure(item, shown, key)
        self.inbox.post(item)
        self.watch_event("fixDeclined", workspace,
                         f"`{config.test_command}` fails; not worth a fix session: "
                         f"{verdict.reason}")

    # -- budgets -------------------------------------------------------------------------------

    def take_budget(self, workspace: Path, config: WatchConfig, event: str,
                    keep: int = 0) -> bool:
        """One more background session within the daily cost cap and the hourly budget
        (``keep``: runs of the hour left for more urgent work)."""
        spent = DailyCost(self.state_dir(), workspace).spent()
        if spent >= config.daily_cost_usd:
            self._budget_reached(workspace, config, spent)
            self.log_decision(workspace, event=event, action="none",
                     why=f"the daily cost cap of ${config.daily_cost_usd:g} is reached")
            return False
        place = self._place(workspace)
        if place.budget is None or place.budget.per_hour != config.max_runs_per_hour:
            place.budget = Budget(config.max_runs_per_hour)
        if not place.budget.take(keep=keep):
            self.log_decision(workspace, event=event, action="none",
                     why=f"over the budget of {config.max_runs_per_hour} runs per hour"
                     + (f" ({keep} kept for failing tests)" if keep else ""))
            return False
        return True

    def _spend(self, run: Run, model: str | None, usage: ev.Usage) -> None:
        self._charge(run.workspace, model, usage)

    def _charge(self, workspace: Path, model: str | None, usage: ev.Usage) -> None:
        """A model request of the watcher's, counted against the daily cost cap."""
        price = price_for(model or "")
        if price is None:
            return
        cost = DailyCost(self.state_dir(), workspace)
        try:
            total = cost.add(usd(usage, price))
        except OSError as exc:
            log.warning("the watcher's cost cannot be recorded: %s", exc)
            return
        config, _ = self.config(workspace)
        if config is not None and total >= config.daily_cost_usd:
            self._budget_reached(workspace, config, total)

    def _budget_reached(self, workspace: Path, config: WatchConfig, spent: float) -> None:
        place = self._place(workspace)
        if place.budget_reported == today():
            return  # one item a day
        place.budget_reported = today()
        title = (f"The watcher stopped for today: ${spent:.2f} of its "
                 f"${config.daily_cost_usd:g} daily budget spent")
        self.inbox.post(self.inbox.new_item(
            "budget", workspace, title,
            "No more background sessions start today (watch.dailyCostUsd). Sessions already "
            "running finish; their proposals stay in the inbox."))
        self.watch_event("budgetReached", workspace, title)
        self.log_decision(workspace, event="budget", action="stop", why=title,
                          spentUsd=round(spent, 6))

    # -- action: a background session prepares the fix -----------------------------------------

    def _start_fix(self, workspace: Path, config: WatchConfig, trigger: Trigger,
                   code: int | None, output: str, key: str,
                   verdict: TriageVerdict | None = None) -> None:
        session = self._host.manager.create(workspace, config.mode)  # type: ignore[arg-type]
        shown = output[-MAX_OUTPUT_SHOWN:]
        title = (f"`{config.test_command}` fails after {trigger.file.name} was saved"
                 if trigger.file is not None else f"`{config.test_command}` fails ({trigger.why})")
        item = self.inbox.new_item("test_failure", workspace, title, shown[-500:],
                                   session_id=session.id,
                                   triage=verdict.view() if verdict is not None else None)
        self.inbox.note_failure(item, shown, key)
        self.add_run(Run(workspace, session, item))
        self.log_decision(workspace, event="test_failed", action="fix", session=session.id,
                 exitCode=code)
        prompt = (f"The watcher ran the test command `{config.test_command}` ({trigger.why}), "
                  f"and it failed"
                  f"{f' (exit code {code})' if code is not None else ' (timed out)'}. Its "
                  f"output ends with:\n\n```\n{shown}\n```\n\nFind the cause and prepare a fix. "
                  "Your edits are proposals the user reviews later; nobody is watching this "
                  "session, so do not ask questions.")
        session.begin(prompt)

    def add_run(self, run: Run) -> None:
        self._runs[run.session.id] = run

    def preparing(self, workspace: Path) -> bool:
        """A test run or a fix being prepared in ``workspace`` (speculative work waits)."""
        place = self.places.get(workspace)
        return (place is not None and place.checking) or any(
            r.preparing for r in self._runs.values() if r.workspace == workspace)

    def on_event(self, event: ev.AgentEvent) -> None:
        run = self._runs.get(event.session_id or "")
        if run is None:
            return
        if isinstance(event, ev.UsageReport):
            self._spend(run, event.model, event.usage)
        elif isinstance(event, ev.AutoDecision) and event.usage is not None:
            self._spend(run, event.model, event.usage)
        elif isinstance(event, ev.ProposalCreated):
            self._proposed(run, event.proposal_id)
        elif isinstance(event, ev.ProposalResolved) and self.inbox.knows(event.proposal_id):
            self.inbox.resolved(event.proposal_id, event.status)
            if event.status != "cancelled":
                self.speculative.adopt(run.session.id)
            if run.item in self.inbox.items:
                self.inbox.post(run.item)  # the client shows what is still waiting
        elif isinstance(event, ev.TurnEnded):
            if not run.item.proposal_ids:
                self._runs.pop(run.session.id, None)  # nothing to review: no item
            self.speculative.pump()

    def _proposed(self, run: Run, proposal_id: str) -> None:
        run.item.proposal_ids.append(proposal_id)
        self.inbox.set_status(proposal_id, "pending")
        if run.item not in self.inbox.items:
            self.watch_event("fixPrepared", run.workspace, run.item.title)
        self.inbox.post(run.item)
        # Kept for a review after a restart; the book holds it once the tool call waits.
        asyncio.get_running_loop().call_soon(self._keep_contents, run, proposal_id)
        self.speculative.pump()  # this one is prepared: the next may start

    def _keep_contents(self, run: Run, proposal_id: str) -> None:
        proposal = run.session.proposals.pending(proposal_id)
        if proposal is None:
            return  # decided already (or applied in a mode that applies edits)
        files = [SavedFile(str(f.path), str(proposal.approved_paths.get(f.path, f.path)),
                           f.old_text, f.new_text, f.deleted) for f in proposal.files]
        self.inbox.keep_contents(run.item, proposal_id, files)

    # -- the inbox and the companion's events --------------------------------------------------

    def dismiss(self, item_id: str) -> None:
        """Remove an item; its session, if still at work or waiting, is stopped (its pending
        proposals are withdrawn: nobody will review them)."""
        item = self.inbox.remove(item_id)  # UnknownInboxItem when there is none
        run = self._runs.pop(item.session_id or "", None)
        if run is not None and run.session.busy:
            self.spawn(run.session.cancel())

    def watch_event(self, kind: WatchEventKind, workspace: Path, detail: str) -> None:
        from lsp_agent.types.watch import WatchEvent  # a model: loads with the first

        event = WatchEvent(kind=kind, workspace_uri=from_fs_path(str(workspace)) or "",
                           detail=detail, at=time.time())
        self._host.send_watch_event(event.wire())

    # -- helpers -----------------------------------------------------------------------------

    def typing_wait(self, workspace: Path, quiet: float, path: Path | None = None) -> float:
        """How long until no document of ``workspace`` (or just ``path``) was changed by the
        user within ``quiet`` seconds; 0 when that is so now."""
        now = time.monotonic()
        waits = [at + quiet - now for typed, at in self._typed.items()
                 if (typed == path if path is not None else typed.is_relative_to(workspace))]
        return max([0.0, *waits])

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def log_decision(self, workspace: Path, **record: Any) -> None:
        try:
            DailyLog(self.state_dir(), workspace).write(
                **{k: v for k, v in record.items() if v is not None})
        except OSError as exc:
            log.warning("the watcher's log cannot be written: %s", exc)

    # -- the inbox an earlier server kept ---------------------------------------------------

    async def _restore(self, workspace: Path) -> None:
        store = InboxStore(self.state_dir(), workspace)
        try:
            records, warnings = await asyncio.to_thread(store.load)
            stale = await asyncio.to_thread(_stale_proposals, records)
        except Exception as exc:  # the watcher runs on without what was kept
            log.warning("the watcher's inbox could not be read", exc_info=True)
            records, warnings, stale = [], [f"the watcher's inbox could not be read: {exc}"], {}
        self.inbox_warnings[workspace] = warnings
        self.inbox.restore(records, stale)
        if keys := self.inbox.tried_keys(workspace):  # a watcher that is off makes no place
            self._place(workspace).tried |= keys

    async def ready(self) -> None:
        """The kept inboxes are read (an inbox listed earlier would look empty)."""
        if self._restoring:
            await asyncio.gather(*self._restoring.values(), return_exceptions=True)

    def restored(self, proposal_id: str) -> bool:
        return self.inbox.restored_contents(proposal_id) is not None

    async def review_restored(self, proposal_id: str, accept: HunkSelection,
                              reject: HunkSelection) -> ReviewResult:
        """``agent/review`` of a proposal prepared before a restart (watch_restored.py).
        UnknownProposal when there is none pending; ValueError for bad hunk ids."""
        from lsp_agent.sessions.proposals import UnknownProposal  # with the first review
        from lsp_agent.sessions.watch_restored import review_restored

        await self.ready()
        found = self.inbox.restored_contents(proposal_id)
        if found is None:
            raise UnknownProposal(proposal_id)
        item, files = found
        workspace = Path(to_fs_path(item.workspace_uri or "") or self._host.state_dir())
        result = await review_restored(proposal_id, item.session_id or "", workspace, files,
                                       accept, reject, self._host.documents,
                                       self._host.applier)
        self.inbox.resolved(proposal_id, result.status)
        if item in self.inbox.items:
            self.inbox.post(item)
        return result

    def close(self) -> None:
        self.inbox.close()
        for place in self.places.values():
            for timer in (place.debounce, place.tick):
                if timer is not None:
                    timer.cancel()
            place.debounce = place.tick = None
        self.speculative.close()
        for task in self._tasks:
            task.cancel()


def _stale_proposals(records: list[Record]) -> dict[str, str]:
    """The kept pending proposals that cannot be applied as prepared (id -> why); reads the
    files, so it runs off the event loop."""
    stale: dict[str, str] = {}
    for record in records:
        if record.dismissed:
            continue
        for proposal in record.item.proposals:
            if proposal.status == "pending":
                from lsp_agent.sessions.watch_restored import changed_since  # when one is kept

                why = changed_since((record.contents or {}).get(proposal.id))
                if why is not None:
                    stale[proposal.id] = why
    return stale
