"""One session's transcript: what the model saw, what the user decided, what it cost.

The conversation is recorded through the Conversation's observer (synchronously, in the order
the agent built it), so a resume rebuilds exactly the history of the last request. Events add
what the conversation does not hold: usage and cost, proposals and their decisions, todos,
turn ends, errors. Checkpoints (pre-images of files about to be written) go to the same file.

Writing never blocks the loop (store/writer.py queues lines for a thread). The writer is opened
in the background when a session is created; entries recorded before it is open wait in order.
When the state dir cannot be written, the session goes on and says once that it is not saved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lsp_agent.context.conversation import Block, Message, UserOrigin
from lsp_agent.context.cost import price_for, usd
from lsp_agent.store import BlobStore, CaptureRules, Checkpointer, Store, TranscriptWriter, entries
from lsp_agent.store.checkpoints import capture
from lsp_agent.types import events as ev

log = logging.getLogger(__name__)

Notify = Callable[[str], None]  # tells the user something about persistence, once


class SessionRecorder:
    def __init__(self, store: Store, workspace: Path, session_id: str, notify: Notify):
        self.store = store
        self.workspace = workspace
        self.session_id = session_id
        self._notify = notify
        self._writer: TranscriptWriter | None = None
        self._opening: asyncio.Task[TranscriptWriter | None] | None = None
        self._backlog: list[dict[str, Any]] = []
        self.checkpoints: Checkpointer | None = None
        self._prompt: tuple[str, str, dict[str, Any] | None] | None = None  # next prompt entry
        self._closed = False
        self._background: set[asyncio.Future[Any]] = set()
        self.model = ""  # the model of the next assistant entry (the session keeps it current)
        self._turn_usd = 0.0

    # -- opening -----------------------------------------------------------------------------

    def open_new(self) -> None:
        """Create the transcript in the background (the session is usable at once)."""
        self._opening = asyncio.ensure_future(self._open())

    def attach(self, writer: TranscriptWriter) -> None:
        """Go on with a transcript opened by a resume."""
        self._writer = writer
        self.checkpoints = Checkpointer(CaptureRules(self.workspace), self.store.blobs,
                                        writer.append)

    def report(self, message: str) -> None:
        """The store's error callback: said to the user through the session, once."""
        self._notify(message)

    def set_notify(self, notify: Notify) -> None:
        self._notify = notify

    async def _open(self) -> TranscriptWriter | None:
        try:
            writer = await self.store.create(self.workspace, session_id=self.session_id,
                                             on_error=self.report)
            rules = await asyncio.to_thread(CaptureRules, self.workspace)
        except Exception as exc:  # an unusable state dir: the session goes on unsaved
            log.warning("session %s is not saved: %s", self.session_id, exc)
            self._notify(f"Session history is not saved: {exc}. The session goes on without it.")
            self._backlog.clear()
            return None
        self._writer = writer
        self.checkpoints = Checkpointer(rules, self.store.blobs, writer.append)
        for entry in self._backlog:
            writer.append(entry)
        self._backlog.clear()
        return writer

    async def ready(self) -> bool:
        """Wait for the transcript to be open; False when the session is not being saved."""
        if self._opening is not None and not self._opening.done():
            await asyncio.shield(self._opening)
        return self._writer is not None and self._writer.persisting

    @property
    def writer(self) -> TranscriptWriter | None:
        return self._writer

    def append(self, entry: dict[str, Any]) -> str | None:
        if self._closed:
            return None
        if self._writer is not None:
            return self._writer.append(entry)
        if self._opening is not None and not self._opening.done():
            self._backlog.append(entry)
        return None

    # -- prompts and the conversation (ConversationObserver) -----------------------------------

    def expect_prompt(self, text: str, origin: str, editor_context: dict[str, Any] | None) -> None:
        """The next prompt blocks the agent adds are this (a user prompt or a Stop hook's)."""
        self._prompt = (text, origin, editor_context)

    def remember_prompt(self, text: str) -> None:
        """Add the prompt to the workspace's prompt history (Up-arrow in the panel)."""
        if not text.strip() or self._writer is None or not self._writer.persisting:
            return
        task = asyncio.ensure_future(self.store.add_prompt(self.workspace, text,
                                                           self.session_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def user_blocks(self, blocks: list[Block], origin: UserOrigin) -> None:
        if origin == "prompt" and self._prompt is not None:
            text, who, context = self._prompt
            self._prompt = None
            uid = self.append(entries.user_prompt(
                text, list(blocks), editor_context=context,
                origin="stop_hook" if who == "stop_hook" else "user"))
            if who != "stop_hook" and self.checkpoints is not None and uid is not None:
                self.checkpoints.begin_turn(uid)
            return
        # Blocks the agent adds itself are part of the history but never start a turn.
        self.append(entries.user_prompt("", list(blocks), origin="agent"))

    def assistant_blocks(self, blocks: list[Block]) -> None:
        self.append(entries.assistant(list(blocks), self.model))

    def tool_results(self, blocks: list[Block]) -> None:
        self.append(entries.tool_results(list(blocks), [
            {"toolUseId": b.get("tool_use_id"), "isError": bool(b.get("is_error"))}
            for b in blocks]))

    def cleared(self) -> None:
        """The user started afresh (/clear): an empty history from here on."""
        self.append(entries.compact_boundary(strategy="clear", trigger="manual",
                                             tokens_before=0, tokens_after=0, messages=[]))

    def replaced(self, messages: list[Message], boundary: Any) -> None:
        copied = [{"role": m["role"], "content": list(m.get("content") or [])} for m in messages]
        self.append(entries.compact_boundary(
            strategy=boundary.strategy, trigger=boundary.trigger,
            tokens_before=boundary.tokens_before, tokens_after=boundary.tokens_after,
            messages=copied))

    # -- events ------------------------------------------------------------------------------

    def on_event(self, event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ModelRequest) and event.agent_id is None:  # not a subagent's
            self.model = event.model  # the model the next assistant entry comes from
        elif isinstance(event, ev.ModelFallback):
            self.model_changed(event.to_model)  # a resume goes on with the fallback model
        if isinstance(event, ev.AutoDecision) and event.usage is not None:
            self._classifier_usage(event)
        record = _EVENT_ENTRIES.get(type(event))
        if record is None:
            return
        entry = record(event)
        if entry["type"] == "usage":
            self._turn_usd += entry["costUsd"]
        elif entry["type"] == "turn_end":
            entry["costUsd"] = round(self._turn_usd, 6)  # what this turn's requests cost
            self._turn_usd = 0.0
        self.append(entry)

    def _classifier_usage(self, event: ev.AutoDecision) -> None:
        """Auto mode's side request as a ``usage`` entry of the classifier model, so a resumed
        session's cost includes it (no ``usage`` event is sent for it: see loop._auto_mode)."""
        assert event.usage is not None
        entry = _usage_entry(ev.UsageReport(model=event.model or "classifier", usage=event.usage))
        self._turn_usd += entry["costUsd"]
        self.append(entry)

    def mode_changed(self, mode: str) -> None:
        self.append(entries.mode_change(mode))

    def model_changed(self, model: str) -> None:
        self.model = model
        self.append(entries.model_change(model))

    # -- checkpoints -------------------------------------------------------------------------

    async def before_write(self, paths: Iterable[Path | str]) -> None:
        """Save the pre-images of files about to be written (once per file and turn)."""
        if not await self.ready() or self.checkpoints is None or self.checkpoints.scope is None:
            return
        try:
            await self.checkpoints.before_write(list(paths))
        except Exception:  # a checkpoint must never stop the write the user approved
            log.warning("checkpoint of %s failed", list(paths), exc_info=True)

    async def after_write(self, paths: Iterable[Path | str],
                          texts: Mapping[Path, str] | None = None) -> None:
        """Record what the agent left these files as: ``texts`` when it knows what it meant
        (an edit; the editor may save later), else the disk as it is now (a command)."""
        if not await self.ready() or self.checkpoints is None or self.checkpoints.scope is None:
            return
        scope, rules, blobs = self.checkpoints.scope, self.checkpoints.rules, self.store.blobs
        try:
            made = await asyncio.to_thread(_after_images, rules, blobs, scope, list(paths),
                                           dict(texts or {}))
        except Exception:
            log.warning("recording what %s became failed", list(paths), exc_info=True)
            return
        for entry in made:
            self.append(entry)

    async def close(self) -> None:
        if self._closed:
            return
        await self.ready()
        self._closed = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()


def _after_images(rules: CaptureRules, blobs: BlobStore, scope: str, paths: list[Path | str],
                  texts: dict[Path, str]) -> list[dict[str, Any]]:
    made = []
    for path in paths:
        text = texts.get(Path(path))
        if text is not None:
            real, name, parts = rules.locate(path)
            if rules.skip_reason(real, parts) is not None:
                continue
            data = text.encode("utf-8", "surrogateescape")
            digest, _ = blobs.put(data)
            made.append(entries.file_after(scope, name, blob=digest, size=len(data), text=True))
            continue
        shot = capture(rules, blobs, scope, path)  # the disk now, as a backup would see it
        if shot.get("skipped"):
            continue
        made.append(entries.file_after(scope, shot["path"], blob=shot.get("blob"),
                                       size=shot.get("size", 0), text=False))
    return made


# -- event -> entry ----------------------------------------------------------------------------

def _usage_entry(event: ev.UsageReport) -> dict[str, Any]:
    price = price_for(event.model)
    return entries.usage(event.model, event.usage.wire(),
                         round(usd(event.usage, price), 6) if price else 0.0)


def _turn_end(event: ev.TurnEnded) -> dict[str, Any]:
    return entries.turn_end(event.stop_reason, event.rounds, event.usage.wire(), 0.0)


def _proposal(event: ev.ProposalCreated) -> dict[str, Any]:
    return entries.proposal(event.proposal_id, event.tool_use_id, [
        {"path": f.path, "isNew": f.is_new, "diff": f.diff,
         **({"isDeleted": True} if f.is_deleted else {})} for f in event.files])


def _decision(event: ev.ProposalResolved) -> dict[str, Any]:
    return entries.proposal_decision(event.proposal_id, event.status, accepted=event.accepted,
                                     rejected=event.rejected, conflicts=event.conflicts,
                                     feedback=event.feedback)


def _auto_decision(event: ev.AutoDecision) -> dict[str, Any]:
    return entries.auto_decision(event.tool_use_id, event.tool, event.decision, event.reason,
                                 cached=event.cached, error=event.error,
                                 call_key=event.call_key)


def _todos(event: ev.TodosUpdated) -> dict[str, Any]:
    return entries.todos([t.wire() for t in event.todos])


def _error(event: ev.ErrorEvent) -> dict[str, Any]:
    return entries.system(event.kind, event.message, "warning" if event.recoverable else "error")


def _task_list(event: ev.TaskListUpdated) -> dict[str, Any]:
    return entries.task_list([t.wire() for t in event.tasks])


_EVENT_ENTRIES: dict[type, Callable[[Any], dict[str, Any]]] = {
    ev.TaskListUpdated: _task_list,
    ev.UsageReport: _usage_entry,
    ev.TurnEnded: _turn_end,
    ev.ProposalCreated: _proposal,
    ev.ProposalResolved: _decision,
    ev.TodosUpdated: _todos,
    ev.AutoDecision: _auto_decision,
    ev.ErrorEvent: _error,
}
