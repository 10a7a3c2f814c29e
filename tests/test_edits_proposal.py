"""The review state machine: decisions, application plans, outcome text."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygls.protocol import default_converter

from lsp_agent.edits.proposal import Proposal, ReviewDecision
from lsp_agent.edits.workspace_edit import apply_workspace_edit_to_disk
from lsp_agent.types.edits import FileEdit

ROOT = Path("/work/project")
A = ROOT / "a.py"
B = ROOT / "b.py"
NEW = ROOT / "new.py"

A_OLD = "".join(f"a{i}\n" for i in range(1, 31))
A_NEW = A_OLD.replace("a3\n", "A3\n").replace("a15\n", "A15\n").replace("a28\n", "A28\n")
B_OLD = "".join(f"b{i}\n" for i in range(1, 6))
B_NEW = B_OLD.replace("b3\n", "agent b3\n")


def make(*edits: FileEdit) -> Proposal:
    return Proposal.from_edits("p1", "s1", "tu1", list(edits), ROOT)


def two_files() -> Proposal:
    return make(FileEdit(A, A_OLD, A_NEW, 3), FileEdit(B, B_OLD, B_NEW, None))


# ---------------------------------------------------------------- ids and decide()


def test_hunk_ids_are_qualified_by_file_in_order():
    p = make(FileEdit(A, A_OLD, A_NEW, 3), FileEdit(NEW, None, "x\n", None))
    assert p.hunk_ids() == ["f1.h1", "f1.h2", "f1.h3", "f2.h1"]


def test_from_edits_drops_edits_that_change_nothing():
    p = make(FileEdit(A, A_OLD, A_OLD, 3), FileEdit(B, B_OLD, B_NEW, None))
    assert [f.path for f in p.files] == [B]
    assert p.hunk_ids() == ["f1.h1"]


@pytest.mark.parametrize(
    ("accept", "reject", "accepted", "rejected"),
    [
        ("all", [], {"f1.h1", "f1.h2", "f1.h3", "f2.h1"}, set()),
        ([], "all", set(), {"f1.h1", "f1.h2", "f1.h3", "f2.h1"}),
        (["f1.h2"], [], {"f1.h2"}, {"f1.h1", "f1.h3", "f2.h1"}),  # unlisted counts as rejected
        (["f1.h1", "f2.h1"], ["f1.h3"], {"f1.h1", "f2.h1"}, {"f1.h2", "f1.h3"}),
    ],
)
def test_decide(accept, reject, accepted, rejected):
    decision = two_files().decide(accept, reject)
    assert decision == ReviewDecision(frozenset(accepted), frozenset(rejected))


@pytest.mark.parametrize(
    ("accept", "reject", "message"),
    [
        (["f1.h9"], [], r"unknown hunk ids to accept: f1\.h9; valid ids: f1\.h1, f1\.h2, f1\.h3"),
        ([], ["h1"], r"unknown hunk ids to reject: h1"),
        (["f1.h1"], ["f1.h1", "f2.h1"], r"both accepted and rejected: f1\.h1"),
        ("all", "all", r"both accepted and rejected"),
        ("everything", [], r"list of hunk ids or 'all'"),
    ],
)
def test_decide_validation_errors(accept, reject, message):
    with pytest.raises(ValueError, match=message):
        two_files().decide(accept, reject)


def test_decide_after_resolution_is_refused():
    p = two_files()
    p.cancel()
    with pytest.raises(ValueError, match="already cancelled"):
        p.decide("all", [])


# ---------------------------------------------------------------- plan_application


def test_partial_acceptance_with_rebase_and_one_conflicting_file():
    p = two_files()
    decision = p.decide(["f1.h1", "f1.h3", "f2.h1"], ["f1.h2"])
    a_now = A_OLD.replace("a22\n", "a22 typed by user\n")  # far from every hunk: rebases cleanly
    b_now = B_OLD.replace("b3\n", "user b3\n")  # the very line the agent changed
    plan = p.plan_application(decision, {A: (a_now, 9), B: (b_now, None)})

    fa, fb = plan.files
    assert (fa.status, fa.version, fa.current_text) == ("rebased", 9, a_now)
    assert fa.target_text == a_now.replace("a3\n", "A3\n").replace("a28\n", "A28\n")
    assert (fa.accepted, fa.rejected) == (("f1.h1", "f1.h3"), ("f1.h2",))
    assert fb.status == "conflict" and fb.target_text is None
    assert "user b3" in (fb.conflict or "")
    assert [c.start_line for c in fb.conflicts] == [3]

    assert plan.landed_ids() == ["f1.h1", "f1.h3"]
    assert plan.rejected_ids() == ["f1.h2"]
    assert plan.conflict_ids() == ["f2.h1"]
    [target] = plan.edit_targets()
    assert (target.uri, target.version) == (A.as_uri(), 9)
    assert p.resolution_status(plan) == "partially_accepted"


def test_plan_unchanged_file_uses_target_as_is_and_pins_current_version():
    p = two_files()
    plan = p.plan_application(p.decide(["f1.h2"], []), {A: (A_OLD, 12)})
    fa, fb = plan.files
    assert (fa.status, fa.version) == ("applied", 12)
    assert fa.target_text == A_OLD.replace("a15\n", "A15\n")
    assert fb.status == "rejected"  # no current text needed for a fully rejected file


def test_plan_requires_current_text_of_files_with_accepted_hunks():
    p = two_files()
    with pytest.raises(ValueError, match=r"no current text given for .*b\.py"):
        p.plan_application(p.decide("all", []), {A: (A_OLD, 1)})


def test_plan_when_the_user_already_made_the_same_change():
    p = make(FileEdit(B, B_OLD, B_NEW, 1))
    plan = p.plan_application(p.decide("all", []), {B: (B_NEW, 2)})
    assert plan.files[0].status == "unchanged"
    assert plan.edit_targets() == []
    assert p.resolution_status(plan) == "accepted"


@pytest.mark.parametrize(
    ("edit", "current", "status", "why"),
    [
        (FileEdit(B, B_OLD, B_NEW, 1), (None, None), "conflict", "deleted after it was read"),
        (FileEdit(NEW, None, "x\n", None), ("mine\n", 4), "conflict", "created at this path"),
        (FileEdit(NEW, None, "x\n", None), (None, None), "applied", None),
        (FileEdit(NEW, None, "x\n", None), ("x\n", 1), "unchanged", None),
    ],
)
def test_plan_file_deleted_or_created_meanwhile(edit, current, status, why):
    p = make(edit)
    plan = p.plan_application(p.decide("all", []), {edit.path: current})
    file_plan = plan.files[0]
    assert file_plan.status == status
    if why:
        assert why in (file_plan.conflict or "")
        assert p.resolution_status(plan) == "conflict"


def test_created_meanwhile_conflict_quotes_the_users_file():
    p = make(FileEdit(NEW, None, "x\n", None))
    plan = p.plan_application(p.decide("all", []), {NEW: ("user wrote this\n", 4)})
    assert "user wrote this" in p.outcome_text(plan)


def test_new_file_plan_builds_create_edit():
    p = make(FileEdit(NEW, None, "x = 1\n", None))
    plan = p.plan_application(p.decide("all", []), {NEW: (None, None)})
    data = default_converter().unstructure(plan.workspace_edit())
    assert [c.get("kind") for c in data["documentChanges"]] == ["create", None]


@pytest.mark.parametrize(
    ("accept", "status"),
    [("all", "accepted"), (["f1.h1"], "partially_accepted"), ([], "rejected")],
)
def test_resolve_sets_status_once(accept, status):
    p = two_files()
    plan = p.plan_application(p.decide(accept, []), {A: (A_OLD, 1), B: (B_OLD, None)})
    assert p.resolve(plan) == status
    assert p.status == status
    with pytest.raises(ValueError, match="already"):
        p.resolve(plan)


def test_plan_applied_through_headless_client_writes_merged_text(tmp_path: Path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    p = Proposal.from_edits(
        "p2", "s", "t", [FileEdit(a, A_OLD, A_NEW, None), FileEdit(b, B_OLD, B_NEW, None)], tmp_path
    )
    a_now = "header by user\n" + A_OLD
    a.write_text(a_now)
    b.write_text(B_OLD)
    plan = p.plan_application(
        p.decide(["f1.h2", "f2.h1"], []), {a: (a_now, None), b: (B_OLD, None)}
    )
    touched = apply_workspace_edit_to_disk(default_converter().unstructure(plan.workspace_edit()))
    assert touched == [a, b]
    assert a.read_text() == a_now.replace("a15\n", "A15\n")
    assert b.read_text() == B_NEW


# ---------------------------------------------------------------- outcome text and view


def test_outcome_text_reports_applied_rejected_conflicts_and_feedback():
    p = two_files()
    decision = p.decide(["f1.h1", "f1.h3", "f2.h1"], ["f1.h2"])
    b_now = B_OLD.replace("b3\n", "user b3\n")
    plan = p.plan_application(decision, {A: (A_OLD, 3), B: (b_now, None)})
    text = p.outcome_text(plan, feedback="Keep a15 lowercase, please.")

    assert text.startswith("Review of your edit (2 applied, 1 rejected, 1 conflicted):")
    assert "- a.py: f1.h1, f1.h3 accepted and applied; the file now contains them." in text
    rejected_diff = p.files[0].hunk("h2").diff
    assert "f1.h2 rejected by the user; these changes did NOT land:\n" + rejected_diff in text
    assert "- b.py: CONFLICT" in text and "user b3" in text and "agent b3" in text
    assert text.rstrip("\n").endswith("User feedback (verbatim):\nKeep a15 lowercase, please.")
    # Accepted hunks that landed are not repeated as diffs.
    assert "+A3" not in text


def test_outcome_text_for_a_rejected_new_file_shows_its_content():
    p = make(FileEdit(NEW, None, "print('hi')\n", None))
    plan = p.plan_application(p.decide([], "all"), {})
    text = p.outcome_text(plan)
    assert "the file was NOT created" in text
    assert "+print('hi')" in text
    assert "feedback" not in text


def test_not_applied_text_mentions_reason_and_feedback():
    text = two_files().not_applied_text("the editor refused the edit", "later")
    assert "NOT applied (the editor refused the edit)" in text
    assert text.endswith("User feedback (verbatim):\nlater\n")


def test_to_view_uses_qualified_ids_and_wire_shape():
    p = make(FileEdit(A, A_OLD, A_NEW, 3), FileEdit(NEW, None, "x\n", None))
    views = p.to_view()
    assert [h.id for v in views for h in v.hunks] == p.hunk_ids()
    wire = views[1].wire()
    assert wire["isNew"] is True and wire["path"] == "new.py" and wire["uri"] == NEW.as_uri()
    assert wire["hunks"][0]["header"] == "@@ -0,0 +1,1 @@"
    assert views[0].version == 3
    assert views[0].diff == p.files[0].diff
