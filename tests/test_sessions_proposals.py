"""The proposal book in-process: an edit tool call waits for the user's review (or is applied
at once in the auto-apply modes), review plans against the files' current text, asks the
editor to apply, plans again once if the user typed in between, and reports to both sides.

A test editor stands in for the real one: it holds the documents' texts, applies by taking the
target texts, and can refuse a number of times first or let the user type before refusing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.edits.landing import ApplyReport
from lsp_agent.edits.workspace_edit import EditTarget, uri_to_path
from lsp_agent.sessions.proposals import (
    MAX_APPLY_ATTEMPTS,
    ProposalBook,
    ProposalHost,
    ReviewResult,
    UnknownProposal,
)
from lsp_agent.types import events as ev
from lsp_agent.types.edits import FileEdit
from lsp_agent.workspace.documents import DocumentSnapshot, FileReadError

WAIT = 30.0  # only against hangs
OLD = "a = 1\nb = 2\nc = 3\n"
NEW = "a = 10\nb = 2\nc = 3\n"


class Editor:
    """Documents and the applier in one: what the book reads is what a good apply wrote."""

    def __init__(self, texts: dict[Path, str]):
        self.texts = dict(texts)
        self.unreadable: set[Path] = set()
        self.refusals: list[str] = []  # reasons for the next refusals, in order
        self.typing_on_refusal: dict[Path, str] = {}  # the user's typing before a refusal
        self.applied: list[dict[Path, str]] = []

    def snapshot(self, path: Path) -> DocumentSnapshot:
        if path in self.unreadable:
            raise FileReadError(f"{path} is a binary file")
        if path not in self.texts:
            raise FileNotFoundError(path)
        return DocumentSnapshot(path, self.texts[path], 7)

    async def apply(self, targets: Sequence[EditTarget], scopes: Any = None) -> ApplyReport:
        texts = {uri_to_path(t.uri): t.target_text for t in targets}
        self.applied.append(texts)
        if self.refusals:
            self.texts.update(self.typing_on_refusal)
            self.typing_on_refusal = {}
            return ApplyReport.refused(self.refusals.pop(0))
        self.texts.update(texts)
        return ApplyReport(True)


@pytest.fixture
def file(tmp_path: Path) -> Path:
    return tmp_path / "m.py"


@pytest.fixture
def editor(file: Path) -> Editor:
    return Editor({file: OLD})


class Book:
    """A ProposalBook with its host's events and a mode the test can switch."""

    def __init__(self, workspace: Path, editor: Editor, mode: str = "default"):
        self.events: list[ev.AgentEvent] = []
        self.mode = mode
        host = ProposalHost("s1", workspace, editor, self.events.append, lambda: self.mode)
        self.book = ProposalBook(host, editor)

    def of(self, kind: type[ev.AgentEvent]) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def change(path: Path, new: str = NEW, old: str | None = OLD) -> list[FileEdit]:
    return [FileEdit(path=path, old_text=old, new_text=new, version=7 if old else None)]


async def waiting_proposal(book: Book, edits: list[FileEdit]) -> tuple[asyncio.Task[str], str]:
    """Start an edit tool call and wait until its proposal is pending."""
    task = asyncio.create_task(book.book.propose("tu1", edits))
    for _ in range(int(WAIT / 0.01)):
        if book.book.pending_ids:
            return task, book.book.pending_ids[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the proposal never became pending")


async def test_a_proposal_waits_for_review_and_the_review_answers_the_tool_call(
        tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    created = book.of(ev.ProposalCreated)
    assert [c.proposal_id for c in created] == [pid] and created[0].auto_apply is False
    assert created[0].tool_use_id == "tu1" and book.book.owns(pid)
    assert editor.applied == []  # nothing lands before the user decides

    result = await book.book.review(pid, "all", [], None)

    assert result.status == "accepted" and result.applied == ["f1.h1"] and result.rejected == []
    assert editor.applied == [{file: NEW}] and editor.texts[file] == NEW
    outcome = await asyncio.wait_for(task, WAIT)
    assert outcome == result.outcome and "accepted and applied" in outcome
    [resolved] = book.of(ev.ProposalResolved)
    assert (resolved.proposal_id, resolved.status, resolved.accepted) == (pid, "accepted",
                                                                           ["f1.h1"])
    assert book.book.pending_ids == [] and not book.book.owns(pid)


@pytest.mark.parametrize(("mode", "auto"), [("acceptEdits", True), ("bypassPermissions", True),
                                            ("default", False), ("plan", False)])
async def test_only_the_auto_apply_modes_apply_without_review(tmp_path, file, editor, mode,
                                                              auto):
    book = Book(tmp_path, editor, mode)
    if auto:
        outcome = await asyncio.wait_for(book.book.propose("tu1", change(file)), WAIT)
        assert "accepted and applied" in outcome and editor.texts[file] == NEW
        assert [r.status for r in book.of(ev.ProposalResolved)] == ["accepted"]
    else:
        task, pid = await waiting_proposal(book, change(file))
        assert editor.applied == []
        await book.book.review(pid, [], "all", None)
        await asyncio.wait_for(task, WAIT)
    assert [c.auto_apply for c in book.of(ev.ProposalCreated)] == [auto]


async def test_the_mode_is_read_at_each_proposal(tmp_path, file, editor):
    book = Book(tmp_path, editor, "default")
    task, pid = await waiting_proposal(book, change(file))
    book.mode = "acceptEdits"  # the user switches mode while the first one waits
    second = tmp_path / "n.py"
    editor.texts[second] = OLD
    await asyncio.wait_for(book.book.propose("tu2", change(second)), WAIT)
    assert editor.texts[second] == NEW and editor.texts[file] == OLD
    await book.book.review(pid, "all", [], None)
    await asyncio.wait_for(task, WAIT)


async def test_an_edit_that_changes_nothing_is_not_proposed(tmp_path, file, editor):
    book = Book(tmp_path, editor, "acceptEdits")
    outcome = await book.book.propose("tu1", change(file, new=OLD))
    assert outcome.startswith("No change")
    assert book.events == [] and editor.applied == []


async def test_rejecting_everything_writes_nothing_and_says_so(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    result = await book.book.review(pid, [], "all", "not like this")
    assert result.status == "rejected" and result.rejected == ["f1.h1"] and result.applied == []
    assert editor.applied == [] and editor.texts[file] == OLD
    outcome = await asyncio.wait_for(task, WAIT)
    assert "rejected by the user" in outcome and "not like this" in outcome
    [resolved] = book.of(ev.ProposalResolved)
    assert (resolved.status, resolved.rejected, resolved.feedback) == (
        "rejected", ["f1.h1"], "not like this")


async def test_unknown_and_already_decided_proposals_are_refused(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    with pytest.raises(UnknownProposal):
        await book.book.review("p-nope", "all", [], None)
    task, pid = await waiting_proposal(book, change(file))
    first, second = await asyncio.gather(book.book.review(pid, "all", [], None),
                                         book.book.review(pid, "all", [], None),
                                         return_exceptions=True)
    assert isinstance(first, ReviewResult) and first.status == "accepted"
    assert isinstance(second, ValueError) and "already accepted" in str(second)
    assert len(editor.applied) == 1  # applied once, not twice
    await asyncio.wait_for(task, WAIT)


async def test_a_refused_apply_is_planned_again_on_the_users_newer_text(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    typed = OLD + "d = 4\n"  # the user typed below while the first apply was on its way
    editor.refusals = ["version mismatch"]
    editor.typing_on_refusal = {file: typed}

    result = await book.book.review(pid, "all", [], None)

    assert result.status == "accepted"
    assert editor.applied == [{file: NEW}, {file: NEW + "d = 4\n"}]  # rebased the second time
    assert editor.texts[file] == NEW + "d = 4\n"
    await asyncio.wait_for(task, WAIT)


async def test_a_conflict_with_the_users_typing_writes_nothing(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    editor.texts[file] = OLD.replace("a = 1", "a = 5")  # the user changed the same line

    result = await book.book.review(pid, "all", [], None)

    assert result.status == "conflict" and result.conflicts == ["f1.h1"] and result.applied == []
    assert result.conflict_details and "line 1" in result.conflict_details[0]
    assert editor.applied == []  # nothing to write: the editor is not asked
    assert "CONFLICT" in await asyncio.wait_for(task, WAIT)
    [resolved] = book.of(ev.ProposalResolved)
    assert (resolved.status, resolved.conflicts) == ("conflict", ["f1.h1"])


async def test_an_editor_that_keeps_refusing_fails_the_proposal(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    editor.refusals = ["read-only file"] * MAX_APPLY_ATTEMPTS

    result = await book.book.review(pid, "all", [], "please")

    assert len(editor.applied) == MAX_APPLY_ATTEMPTS == 2
    assert result.status == "failed" and result.conflict_details == ["read-only file"]
    assert "NOT applied" in result.outcome and "read-only file" in result.outcome
    assert await asyncio.wait_for(task, WAIT) == result.outcome
    [resolved] = book.of(ev.ProposalResolved)
    assert (resolved.status, resolved.feedback) == ("failed", "please")
    with pytest.raises(UnknownProposal):  # the tool call has its answer: nothing to review
        await book.book.review(pid, "all", [], None)


async def test_cancelling_pending_proposals_resolves_them_as_cancelled(tmp_path, file, editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    book.book.cancel_pending()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    [resolved] = book.of(ev.ProposalResolved)
    assert (resolved.proposal_id, resolved.status) == (pid, "cancelled")
    assert book.book.pending_ids == [] and editor.applied == []


async def test_cancelling_the_tool_call_resolves_its_proposal_as_cancelled(tmp_path, file,
                                                                           editor):
    book = Book(tmp_path, editor)
    task, pid = await waiting_proposal(book, change(file))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.status for r in book.of(ev.ProposalResolved)] == ["cancelled"]
    assert not book.book.owns(pid)


async def test_a_new_file_is_created_and_an_unreadable_one_is_an_error(tmp_path, editor):
    book = Book(tmp_path, editor, "acceptEdits")
    new_file = tmp_path / "new.py"
    outcome = await book.book.propose("tu1", change(new_file, new="x = 1\n", old=None))
    assert "created" in outcome and editor.texts[new_file] == "x = 1\n"

    blob = tmp_path / "blob.py"
    editor.texts[blob] = OLD
    editor.unreadable.add(blob)
    with pytest.raises(ValueError, match="cannot read"):
        await book.book.propose("tu2", change(blob))


def test_the_review_result_on_the_wire():
    result = ReviewResult("p1", "partially_accepted", ["f1.h1"], ["f1.h2"], ["f2.h1"],
                          ["conflict at line 3"], outcome="text for the model")
    assert result.wire() == {
        "proposalId": "p1", "status": "partially_accepted", "applied": ["f1.h1"],
        "rejected": ["f1.h2"], "conflicts": ["f2.h1"], "conflictDetails": ["conflict at line 3"],
    }
