"""A fix prepared before the server restarted (docs/autonomy.md, "The inbox after a restart").

Its session is gone, but the inbox kept what it changes (watch_inbox_store.py). When the server
starts, a pending proposal whose files are no longer the text it was prepared against (or lead
elsewhere, or cannot be read) comes back ``stale``: it is never applied. One whose files are
unchanged can still be reviewed with ``agent/review``: the review checks the files again (the
editor's buffer when it is open), plans as a live review would, and sends the edit pinned to
the buffer's current version, so an editor that changed meanwhile refuses it. A file that
changed since it was prepared makes the proposal ``stale`` then too: a kept proposal is never
rebased onto text it was not made for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lsp_agent.edits.proposal import HunkSelection, Proposal
from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, real_path
from lsp_agent.sessions.proposals import ReviewResult
from lsp_agent.sessions.watch_inbox_store import SavedFile
from lsp_agent.types.edits import FileEdit
from lsp_agent.workspace.documents import FileReadError, read_file_bytes, snapshot_async

if TYPE_CHECKING:
    from lsp_agent.sessions.proposals import EditApplier
    from lsp_agent.workspace.documents import DocumentSource


def changed_since(files: Sequence[SavedFile] | None) -> str | None:
    """Why a kept proposal cannot be applied as prepared (None: its files are as they were).
    Reads the disk: run it off the event loop."""
    if files is None:
        return "its texts were not kept across a restart (too large, or holding a secret)"
    for saved in files:
        path = Path(saved.path)
        if str(real_path(path)) != saved.approved:
            return f"{path.name} now leads elsewhere"
        try:
            text: str | None = read_file_bytes(path).decode("utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, FileReadError, UnicodeDecodeError) as exc:
            return f"{path.name} cannot be read ({exc})"
        if text != saved.old_text:
            return f"{path.name} changed since the fix was prepared"
    return None


class Stale(Exception):
    """The proposal's files are not what it was prepared against."""


async def review_restored(proposal_id: str, session_id: str, workspace: Path,
                          files: Sequence[SavedFile], accept: HunkSelection,
                          reject: HunkSelection, documents: DocumentSource,
                          applier: EditApplier) -> ReviewResult:
    """Carry out the user's review of a kept proposal. ValueError: bad hunk ids. A stale one
    answers ``failed`` (nothing written) with why."""
    edits = [FileEdit(Path(f.path), f.old_text, f.new_text, None, f.delete) for f in files]
    proposal = await asyncio.to_thread(Proposal.from_edits, proposal_id, session_id, "", edits,
                                       workspace)
    decision = proposal.decide(accept, reject)
    approved = {Path(f.path): Path(f.approved) for f in files}
    try:
        current: dict[Path, tuple[str | None, int | None]] = {}
        for number, change in enumerate(proposal.files, 1):
            if decision.accepted_in(number):
                current[change.path] = await _as_prepared(change.path, change.old_text,
                                                          approved[change.path], documents)
        plan = proposal.plan_application(decision, current)
        targets = plan.edit_targets()
        if targets:
            root = real_path(workspace)
            scopes = {path: WriteScope(roots=(root,), expected=approved[path])
                      for path in current}
            report = await applier.apply(targets, scopes)
            problem = report.reason if not report.applied else next(
                iter({**report.diverged, **report.unconfirmed}.values()), None)
            if problem:
                raise Stale(f"the editor did not apply it: {problem}")
    except (Stale, WriteRefused) as exc:
        proposal.fail()
        return ReviewResult(proposal_id, "failed", conflict_details=[str(exc)],
                            outcome=f"not applied: {exc}")
    status = proposal.resolve(plan)
    return ReviewResult(proposal_id, status, plan.landed_ids(), plan.rejected_ids(),
                        plan.conflict_ids(), [f.conflict for f in plan.files if f.conflict],
                        outcome=status)


async def _as_prepared(path: Path, prepared: str | None, approved: Path,
                       documents: DocumentSource) -> tuple[str | None, int | None]:
    """The file's text and open version when it is what the proposal was prepared against."""
    if await asyncio.to_thread(real_path, path) != approved:
        raise Stale(f"{path.name} now leads elsewhere")
    try:
        snapshot = await snapshot_async(documents, path)
        text, version = snapshot.text, snapshot.version
    except FileNotFoundError:
        text, version = None, None
    except FileReadError as exc:
        raise Stale(f"{path.name} cannot be read ({exc})") from None
    if text != prepared:
        raise Stale(f"{path.name} changed since the fix was prepared")
    return text, version
