"""The watcher's deterministic signals: git HEAD read from git's files (branches, detached,
packed refs, worktrees), files it knows changing, and diagnostics that appear or get worse."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lsp_agent.sessions.watch_signals import (
    DiagnosticSets,
    Snapshot,
    read_head,
    same_place,
)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.py").write_text("x = 1\n")
    git(root, "add", "a.py")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_head_is_the_branchs_commit_and_moves_with_a_commit(repo: Path):
    head = read_head(repo)
    assert head is not None and head.startswith(git(repo, "rev-parse", "HEAD"))
    assert "refs/heads/main" in head
    (repo / "sub").mkdir()
    assert read_head(repo / "sub") == head  # a workspace folder inside the repository
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    moved = read_head(repo)
    assert moved != head and moved is not None
    assert moved.startswith(git(repo, "rev-parse", "HEAD"))


def test_head_follows_packed_refs_a_detached_head_and_a_checkout(repo: Path):
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert read_head(repo) == f"{commit} refs/heads/main"
    git(repo, "checkout", "-q", "--detach")
    assert read_head(repo) == commit
    git(repo, "checkout", "-q", "-b", "other")
    assert read_head(repo) == f"{commit} refs/heads/other"


def test_a_worktrees_head_is_its_own(repo: Path, tmp_path: Path):
    tree = tmp_path / "tree"
    git(repo, "worktree", "add", "-q", "-b", "side", str(tree))
    assert (tree / ".git").is_file()  # "gitdir: ..."
    main_head = read_head(repo)
    assert read_head(tree) == f"{git(tree, 'rev-parse', 'HEAD')} refs/heads/side"
    git(tree, "commit", "-q", "--allow-empty", "-m", "on the side")
    assert read_head(tree) != main_head and read_head(repo) == main_head
    assert read_head(tree) == f"{git(tree, 'rev-parse', 'HEAD')} refs/heads/side"


def test_a_broken_git_file_gives_no_head(tmp_path: Path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".git").write_text("not a gitdir line\n")
    assert read_head(plain) is None
    (plain / ".git").write_text("gitdir: /does/not/exist\n")
    assert read_head(plain) is None


def test_the_snapshot_sees_a_known_file_change_and_nothing_else(repo: Path):
    snapshot = Snapshot()
    snapshot.track(repo / "a.py")
    snapshot.refresh(repo)
    assert snapshot.changes(repo) == []
    (repo / "b.py").write_text("unknown to the watcher\n")
    assert snapshot.changes(repo) == []
    (repo / "a.py").write_text("x = 22\n")
    assert snapshot.changes(repo) == ["a.py changed"]
    snapshot.refresh(repo)
    assert snapshot.changes(repo) == []
    os.utime(repo / "a.py", ns=(1, 1))  # same size, other mtime
    assert snapshot.changes(repo) == ["a.py changed"]
    snapshot.refresh(repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "moved")
    [change] = snapshot.changes(repo)
    assert change.startswith("git HEAD moved to ")


def error(message: str, line: int = 0, severity: int = 1) -> dict:
    return {"range": {"start": {"line": line, "character": 0},
                      "end": {"line": line, "character": 5}},
            "message": message, "severity": severity, "source": "pyright"}


def test_the_first_set_is_the_baseline_then_a_new_error_is_a_trigger_a_moved_one_is_not():
    sets = DiagnosticSets()
    baseline = sets.update("file:///a.py", [error("old error")])
    assert not baseline.is_trigger  # errors the project had before are not news
    first = sets.update("file:///a.py", [error("old error"), error("undefined name x")])
    assert [d["message"] for d in first.new_errors] == ["undefined name x"] and first.worse
    moved = sets.update("file:///a.py", [error("old error"), error("undefined name x", line=3)])
    assert moved.new_errors == [] and not moved.is_trigger
    second = sets.update("file:///a.py", [error("undefined name x", line=3),
                                          error("undefined name y", line=4)])
    assert [d["message"] for d in second.new_errors] == ["undefined name y"]
    fewer = sets.update("file:///a.py", [error("undefined name y", line=4)])
    assert not fewer.is_trigger
    again = sets.update("file:///a.py", [error("undefined name y", line=4),
                                         error("undefined name y", line=9)])
    assert len(again.new_errors) == 1 and again.worse  # one more of the same: worse


def test_more_warnings_is_worse_but_not_a_new_error():
    sets = DiagnosticSets()
    sets.update("file:///a.py", [])
    sets.update("file:///a.py", [error("unused import", severity=2)])
    change = sets.update("file:///a.py", [error("unused import", severity=2),
                                          error("unused name", line=2, severity=2)])
    assert change.new_errors == [] and change.worse and change.is_trigger


def test_a_code_actions_diagnostics_add_to_the_set():
    sets = DiagnosticSets()
    sets.update("file:///a.py", [error("e1")], full=False)
    change = sets.update("file:///a.py", [error("e1")], full=False)
    assert not change.is_trigger
    change = sets.update("file:///a.py", [error("e2", line=2)], full=False)
    assert [d["message"] for d in change.new_errors] == ["e2"]
    assert [d["message"] for d in sets.current("file:///a.py")] == ["e1", "e2"]


def test_same_place_means_range_and_message():
    assert same_place(error("e"), {**error("e"), "source": "other"})
    assert not same_place(error("e"), error("e", line=1))
    assert not same_place(error("e"), error("f"))
