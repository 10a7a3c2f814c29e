"""The files a shell command names as written (what a checkpoint saves before it runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.permissions.shell_writes import written_paths

CASES = [
    ("echo hi > out.txt", ["out.txt"]),
    ("echo hi >> log.txt 2>&1", ["log.txt"]),
    ("echo x > /dev/null", []),
    ("sed -i s/a/b/ x.py y.py", ["x.py", "y.py"]),
    ("sed -i -e s/a/b/ x.py", ["x.py"]),
    ("sed -e s/a/b/ x.py", []),  # prints, writes nothing
    ("cp a.py b.py", ["b.py"]),
    ("mv a.py b.py", ["a.py", "b.py"]),
    ("rm -f z.txt; touch new.txt", ["z.txt", "new.txt"]),
    ("black x.py && ruff format y.py", ["x.py", "y.py"]),
    ("ruff check --fix y.py", ["y.py"]),
    ("cat a | tee -a log.txt", ["log.txt"]),
    ("prettier --write app.js", ["app.js"]),
    ("prettier app.js", []),
    ("gofmt -w a.go", ["a.go"]),
    ("gofmt -l a.go", []),
    ("sh -c 'echo 1 > inner.txt'", ["inner.txt"]),
    ("for f in *.py; do black $f; done", []),  # computed: cannot be named
    ("pytest -q", []),
    ("echo hi > sub/../top.txt", ["top.txt"]),
]


@pytest.mark.parametrize(("command", "expected"), CASES)
def test_named_writes(tmp_path: Path, command: str, expected: list[str]):
    assert written_paths(command, tmp_path) == [tmp_path / e for e in expected]


def test_a_folder_argument_names_no_file(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    assert written_paths("black pkg", tmp_path) == []
