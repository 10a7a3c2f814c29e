"""Carrying out an accepted proposal when the editor's answer cannot be taken at its word:
unconfirmed files are planned again, diverged ones become conflicts, landed ones stay landed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.edits.landing import ApplyReport
from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.sessions.proposals import ProposalBook, ProposalHost
from lsp_agent.types import events as ev
from lsp_agent.types.edits import FileEdit
from lsp_agent.workspace.documents import DiskDocuments

pytestmark = pytest.mark.asyncio


@dataclass
class FakeSession:
    workspace: Path
    id: str = "s1"
    mode: str = "acceptEdits"  # proposals apply at once: propose() returns the outcome
    documents: DiskDocuments = field(default_factory=DiskDocuments)
    events: list[Any] = field(default_factory=list)

    def emit(self, event: Any) -> None:
        self.events.append(event)


class ScriptedApplier:
    """Answers each apply() with the next report; reports name files by their basename."""

    def __init__(self, *reports: dict[str, Any]):
        self.reports = list(reports)
        self.sent: list[list[EditTarget]] = []

    async def apply(self, targets: Sequence[EditTarget], scopes: Any = None) -> ApplyReport:
        self.sent.append(list(targets))
        script = self.reports.pop(0)
        by_name = {t.uri.rsplit("/", 1)[-1]: t.uri for t in targets}
        report = ApplyReport(script.get("applied", True), script.get("reason", ""))
        for kind in ("unconfirmed", "diverged"):
            for name, reason in script.get(kind, {}).items():
                getattr(report, kind)[by_name[name]] = reason
        return report


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("a = 1\n")
    b.write_text("b = 1\n")
    return a, b


async def carry_out(tmp_path: Path, applier: ScriptedApplier,
                    files: tuple[Path, Path]) -> tuple[str, ev.ProposalResolved]:
    session = FakeSession(tmp_path)
    book = ProposalBook(ProposalHost(session.id, session.workspace, session.documents,
                                     session.emit, lambda: session.mode),  # type: ignore[arg-type,return-value]
                        applier)
    a, b = files
    outcome = await book.propose("tu1", [FileEdit(a, "a = 1\n", "a = 2\n", None),
                                         FileEdit(b, "b = 1\n", "b = 2\n", None)])
    [resolved] = [e for e in session.events if isinstance(e, ev.ProposalResolved)]
    return outcome, resolved


async def test_all_landed_at_once(tmp_path, files):
    applier = ScriptedApplier({})
    outcome, resolved = await carry_out(tmp_path, applier, files)
    assert resolved.status == "accepted" and len(applier.sent) == 1
    assert "CONFLICT" not in outcome


async def test_an_unconfirmed_file_is_sent_again_and_the_landed_one_is_not(tmp_path, files):
    applier = ScriptedApplier({"unconfirmed": {"b.py": "no trace"}}, {})
    outcome, resolved = await carry_out(tmp_path, applier, files)
    assert resolved.status == "accepted"
    assert [[t.uri.rsplit("/", 1)[-1] for t in sent] for sent in applier.sent] == [
        ["a.py", "b.py"], ["b.py"]]
    assert outcome.count("accepted and applied") == 2  # a.py is reported as applied, not "had it"


async def test_a_diverged_file_is_a_conflict_and_is_not_sent_again(tmp_path, files):
    applier = ScriptedApplier({"diverged": {"a.py": "the buffer holds other text"}})
    outcome, resolved = await carry_out(tmp_path, applier, files)
    assert resolved.status == "partially_accepted"
    assert resolved.conflicts == ["f1.h1"] and resolved.accepted == ["f2.h1"]
    assert len(applier.sent) == 1
    assert "CONFLICT" in outcome and "the buffer holds other text" in outcome


async def test_unconfirmed_twice_becomes_a_conflict_with_the_reason(tmp_path, files):
    applier = ScriptedApplier({"unconfirmed": {"a.py": "no trace of it"}},
                              {"unconfirmed": {"a.py": "no trace of it"}})
    outcome, resolved = await carry_out(tmp_path, applier, files)
    assert resolved.status == "partially_accepted"
    assert resolved.conflicts == ["f1.h1"] and resolved.accepted == ["f2.h1"]
    assert "no trace of it" in outcome


async def test_refused_every_time_fails_without_claiming_anything(tmp_path, files):
    applier = ScriptedApplier({"applied": False, "reason": "stale"},
                              {"applied": False, "reason": "stale again"})
    outcome, resolved = await carry_out(tmp_path, applier, files)
    assert resolved.status == "failed" and len(applier.sent) == 2
    assert "NOT applied" in outcome and "stale again" in outcome
