"""Rewind: files back to a checkpoint, the conversation back to a turn, or both.

Files: for each file the agent changed from that turn on (through proposals, or a shell command
that named it), the content it had just before the turn comes back. The user's own edits are
never lost: when the file changed since the agent last wrote it, the rewind is merged into the
user's text (3-way: base = what the agent left, ours = the checkpoint, theirs = now), and a
conflict leaves the file alone and says so. Files open in the editor change through the edit
applier (workspace/applyEdit: one undo step, the buffer stays right); a restore is itself
checkpointed, so a later rewind can undo it.

Conversation: the transcript gets a new branch before that turn (the rewound part stays in the
file), and the session's history, todos and cost view follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lsp_agent.edits.merge import rebase
from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.permissions.safe_write import (
    WriteRefused,
    WriteScope,
    real_path,
    resolve_for_write,
    write_bytes_checked,
)
from lsp_agent.store import BlobError, FileTarget, TranscriptReader, plan_rewind, read_target
from lsp_agent.workspace.documents import DocumentSnapshot, FileReadError, snapshot_async
from lsp_agent.workspace.encoding import UndecodableBytes, decode_bytes

if TYPE_CHECKING:
    from lsp_agent.sessions.session import Session

log = logging.getLogger(__name__)

Restore = Literal["code", "conversation", "both"]


class RewindRefused(RuntimeError):
    """The rewind cannot be done now (busy session, not saved, no such turn)."""


@dataclass
class RewindReport:
    turn: int
    restored: list[str] = field(default_factory=list)
    not_restored: list[dict[str, str]] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    conversation: bool = False

    def wire(self) -> dict[str, Any]:
        return {"turn": self.turn, "restored": self.restored, "notRestored": self.not_restored,
                "conflicts": self.conflicts, "conversation": self.conversation}


async def rewind(session: Session, turn: int, restore: Restore) -> RewindReport:
    recorder = session.recorder
    if session.busy:
        raise RewindRefused(f"session {session.id} is running a turn; stop it first")
    if recorder is None or not await recorder.ready() or recorder.writer is None:
        raise RewindRefused("this session is not saved, so it has no checkpoints")
    reader = await _fresh_reader(session)
    turns = await asyncio.to_thread(reader.turns)
    if not 1 <= turn <= len(turns):
        raise RewindRefused(f"no turn {turn}: this session has {len(turns)} turns")
    report = RewindReport(turn)
    if restore in ("code", "both"):
        await _restore_files(session, reader, turn, report)
    if restore in ("conversation", "both"):
        await _rewind_conversation(session, turn)
        report.conversation = True
    return report


async def checkpoints(session: Session) -> list[dict[str, Any]]:
    """Each turn's checkpoint: its prompt and the files the turn changed (or could not keep)."""
    if session.recorder is None or not await session.recorder.ready():
        return []
    reader = await _fresh_reader(session)
    return await asyncio.to_thread(_list_checkpoints, reader)


def _list_checkpoints(reader: TranscriptReader) -> list[dict[str, Any]]:
    turns = reader.turns()
    by_scope: dict[str, list[dict[str, Any]]] = {t.uuid: [] for t in turns}
    for entry in reader.entries:
        if entry.get("type") == "file_backup" and entry.get("scope") in by_scope:
            row = {"path": entry.get("path", ""), "existed": bool(entry.get("existed"))}
            if entry.get("skipped"):
                row["notRestorable"] = entry["skipped"]
            by_scope[entry["scope"]].append(row)
    return [{"turn": t.number, "prompt": t.prompt, "timestamp": t.timestamp,
             "files": by_scope[t.uuid]} for t in turns]


async def _fresh_reader(session: Session) -> TranscriptReader:
    recorder = session.recorder
    assert recorder is not None and recorder.writer is not None
    await recorder.writer.flush()
    return await recorder.store.load(session.workspace, session.id)


# -- files -------------------------------------------------------------------------------------


async def _restore_files(session: Session, reader: TranscriptReader, turn: int,
                         report: RewindReport) -> None:
    recorder = session.recorder
    assert recorder is not None and recorder.checkpoints is not None
    blobs = recorder.store.blobs
    plan = await asyncio.to_thread(plan_rewind, reader, turn, session.workspace, blobs.exists)
    afters = await asyncio.to_thread(reader.latest_afters, plan.turn_uuid)
    report.not_restored.extend({"path": u.path, "reason": u.reason} for u in plan.unrestorable)
    if not plan.restore:
        return
    recorder.checkpoints.begin_restore(turn)  # what the rewind overwrites can come back too
    await recorder.before_write([t.absolute for t in plan.restore])
    written: dict[Path, str] = {}
    for target in plan.restore:
        try:
            outcome = await _restore_one(session, target, afters.get(target.path), written)
        except (BlobError, OSError, WriteRefused, FileReadError) as exc:
            report.not_restored.append({"path": target.path, "reason": str(exc)})
            continue
        if outcome is None:
            report.restored.append(target.path)
        else:
            report.conflicts.append({"path": target.path, "reason": outcome})
    await recorder.after_write([t.absolute for t in plan.restore
                                if t.path in report.restored], written)


async def _restore_one(session: Session, target: FileTarget, after: dict[str, Any] | None,
                       written: dict[Path, str]) -> str | None:
    """Put one file back; None when done, else why it was left alone (a conflict)."""
    recorder = session.recorder
    assert recorder is not None
    blobs = recorder.store.blobs
    want = await read_target(blobs, target)
    now = await _current(session, target.absolute)
    base = await _after_text(blobs, after)
    if want is None:  # the file did not exist at the checkpoint
        if now is None:
            return None
        if base is not None and now.text != base:
            return "you changed it after the agent created it; it was not deleted"
        await asyncio.to_thread(_delete, target.absolute, session.workspace)
        return None
    try:
        want_text = decode_bytes(want)[0]
    except UndecodableBytes:
        want_text = None
    if now is None or want_text is None or (now.version is None and base is None):
        # Gone (a command deleted it), binary, or never seen by the editor: the bytes as
        # they were, written where the checks say they may go.
        if now is not None and want_text is None and base is not None and now.text != base:
            return "you changed it after the agent did; a binary file cannot be merged"
        await asyncio.to_thread(_write_bytes, target.absolute, want, session.workspace,
                                target.file_mode)
        if want_text is not None:
            written[target.absolute] = want_text
        return None
    if now.text == want_text:
        return None
    merged = want_text if base is None or now.text == base else None
    if merged is None:
        assert base is not None
        result = rebase(base, want_text, now.text)
        if not result.clean or result.text is None:
            return ("you changed it after the agent did, in the same lines the rewind "
                    "changes:\n" + result.describe())
        merged = result.text
    applier = session.applier
    scope = WriteScope(roots=(real_path(session.workspace),))
    applied = await applier.apply(
        [EditTarget(target.absolute.as_uri(), now.text, merged, now.version)],
        {target.absolute: scope})
    if not applied.applied:
        return f"the editor did not take the change: {applied.reason}"
    written[target.absolute] = merged
    return None


async def _current(session: Session, path: Path) -> DocumentSnapshot | None:
    with contextlib.suppress(FileNotFoundError):
        return await snapshot_async(session.documents, path)
    return None


async def _after_text(blobs: Any, after: dict[str, Any] | None) -> str | None:
    """What the agent last left the file as, as text (None: unknown or not text)."""
    if not after or not after.get("blob"):
        return None
    try:
        data = await asyncio.to_thread(blobs.get, after["blob"])
    except BlobError:
        return None
    if after.get("text"):
        return data.decode("utf-8", "surrogateescape")
    try:
        return decode_bytes(data)[0]
    except UndecodableBytes:
        return None


def _write_bytes(path: Path, data: bytes, workspace: Path, mode: int | None) -> None:
    root = real_path(workspace)
    _make_parents_inside(path, root)
    write_bytes_checked(path, data, WriteScope(roots=(root,)))
    if mode is not None:
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


def _make_parents_inside(path: Path, root: Path) -> None:
    """Create the missing folders of ``path`` (a command may have removed them), but only when
    the nearest existing one really is inside the workspace: a folder replaced by a link to
    elsewhere must not get new folders through it."""
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not real_path(existing).is_relative_to(root):
        raise WriteRefused(f"{path} would be created through {existing}, which leads outside "
                           "the workspace")
    path.parent.mkdir(parents=True, exist_ok=True)


def _delete(path: Path, workspace: Path) -> None:
    final = resolve_for_write(path, WriteScope(roots=(real_path(workspace),)))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(final)


# -- the conversation --------------------------------------------------------------------------


async def _rewind_conversation(session: Session, turn: int) -> None:
    recorder = session.recorder
    assert recorder is not None and recorder.writer is not None
    recorder.writer.rewind(turn)
    reader = await _fresh_reader(session)
    messages, todos = await asyncio.to_thread(lambda: (reader.messages(), reader.todos()))
    session.restore_conversation(messages, todos)
