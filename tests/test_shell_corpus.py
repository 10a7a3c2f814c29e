"""The shell command corpus (fixtures/security/shell_corpus.json): every command's decision in
``default`` mode with no rules. The corpus is the safety contract: read-only work runs, anything
that changes the system asks, catastrophes are refused, obfuscations never run unasked."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.tools.shell import Bash, BashInput

CORPUS = json.loads((Path(__file__).parent.parent / "fixtures" / "security"
                     / "shell_corpus.json").read_text())
CASES = CORPUS["cases"]


@pytest.fixture(scope="module")
def gate(tmp_path_factory) -> PermissionGate:
    workspace = tmp_path_factory.mktemp("corpus") / "project"
    for name in CORPUS["workspace_files"]:
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text("x\n")
    return PermissionGate(workspace, CORPUS["mode"])


def decide(gate: PermissionGate, command: str) -> str:
    return gate.evaluate(Bash(), BashInput(command=command), None).action


@pytest.mark.parametrize("case", CASES, ids=[f"{c['class']}:{c['command'][:40]}" for c in CASES])
def test_corpus_decision(gate, case):
    assert decide(gate, case["command"]) == case["expect"], case


def test_corpus_is_large_and_covers_every_class():
    counts = Counter(c["class"] for c in CASES)
    assert len(CASES) >= 150
    assert set(counts) == {"read_only", "must_ask", "must_deny", "obfuscation"}


def test_no_unsafe_auto_allow(gate):
    """The number docs/security.md reports: commands expected to ask or deny that ran."""
    unsafe = [c["command"] for c in CASES
              if c["expect"] != "allow" and decide(gate, c["command"]) == "allow"]
    assert unsafe == []
