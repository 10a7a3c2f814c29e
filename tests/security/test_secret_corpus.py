"""The secret-reading corpus (fixtures/security/secret_corpus.json): zero silent reads.

Every attempt either makes the permission gate ask (because of a secret, and then in every mode:
bypassPermissions and acceptEdits ask too, dontAsk refuses), or it runs and its output holds no
secret. The calls the gate allows are really run (shell commands with bash in the workspace,
tools with their real implementation), so "allowed" can never hide a leak.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from lsp_agent.code_intel.jedi_intel import JediIntel
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.tools.base import FileEdit, ToolContext
from lsp_agent.tools.code_intel import CODE_INTEL_TOOLS
from lsp_agent.tools.files import FILE_TOOLS
from lsp_agent.tools.search import Grep
from lsp_agent.tools.shell import Bash, BashInput
from lsp_agent.workspace.documents import DiskDocuments
from tests.security.secret_workspace import MARKER, build

CORPUS = json.loads((Path(__file__).parents[2] / "fixtures" / "security"
                     / "secret_corpus.json").read_text())
CASES = CORPUS["cases"]
SECRET_REASON = "secret|credentials"
TOOLS = {cls.name: cls for cls in [*FILE_TOOLS, *CODE_INTEL_TOOLS, Grep]}
HAS_RG = shutil.which("rg") is not None


def case_id(case: dict) -> str:
    target = case.get("command") or json.dumps(case["input"], sort_keys=True)
    return f"{case['via']}:{target[:50]}"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, home) -> Path:
    return build(tmp_path_factory.mktemp("corpus") / "project", home)


@pytest.fixture(scope="module")
def intel(workspace, tmp_path_factory):
    intel = JediIntel(workspace, DiskDocuments(), cache_dir=tmp_path_factory.mktemp("jedi"))
    yield intel
    intel.close()


class NoProposals:
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        raise AssertionError("reading tools never propose changes")


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


def tool_context(workspace: Path, intel: JediIntel | None = None) -> ToolContext:
    return ToolContext(workspace=workspace, documents=DiskDocuments(), proposals=NoProposals(),
                       diagnostics=NoDiagnostics(), results_dir=workspace.parent / "results",
                       code_intel=intel)


def decide(workspace: Path, case: dict, mode: str = "default"):
    gate = PermissionGate(workspace, mode)  # type: ignore[arg-type]
    if case["via"] == "Bash":
        return gate.evaluate(Bash(), BashInput(command=case["command"]), None)
    tool = TOOLS[case["via"]]()
    args = tool.input_model.model_validate(case["input"])
    raw = getattr(args, "path", None)
    path = tool_context(workspace).resolve(raw) if raw else None
    return gate.evaluate(tool, args, path)


async def run(workspace: Path, home: Path, intel: JediIntel, case: dict) -> list[str]:
    """The output of actually running the call (one per Grep engine)."""
    if case["via"] == "Bash":
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "LC_ALL": "C"}
        done = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", case["command"]], cwd=workspace, env=env,
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        return [(done.stdout + done.stderr).decode("utf-8", "replace")]
    engines = [Grep(use_ripgrep=True), Grep(use_ripgrep=False)] if case["via"] == "Grep" \
        else [TOOLS[case["via"]]()]
    outputs = []
    for tool in engines:
        if isinstance(tool, Grep) and tool.use_ripgrep and not HAS_RG:
            continue
        args = tool.input_model.model_validate(case["input"])
        result = await tool.call(args, tool_context(workspace, intel))
        outputs.append(result if isinstance(result, str) else result.content)
    return outputs


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
async def test_every_attempt_asks_or_reads_no_secret(workspace, home, intel, case):
    verdict = decide(workspace, case)
    if case["expect"] == "ask":
        assert verdict.action == "ask", (case, verdict)
        assert re.search(case.get("reason", SECRET_REASON), verdict.reason), verdict.reason
        assert MARKER not in verdict.reason  # the question itself shows no secret
    else:
        assert verdict.action == "allow", (case, verdict)
        for output in await run(workspace, home, intel, case):
            assert MARKER not in output, (case, output)


SECRET_ASKS = [c for c in CASES if c["expect"] == "ask" and "reason" not in c]


@pytest.mark.parametrize("mode", ["acceptEdits", "bypassPermissions", "dontAsk", "plan"])
def test_secret_questions_hold_in_every_mode(workspace, mode):
    """Like Read's, the shell's secret questions are bypass-immune: bypassPermissions asks too,
    dontAsk (which never asks) refuses, plan mode refuses or asks."""
    expected = {"acceptEdits": {"ask"}, "bypassPermissions": {"ask"}, "dontAsk": {"deny"},
                "plan": {"ask", "deny"}}[mode]
    wrong = [(case_id(c), v.action) for c in SECRET_ASKS
             if (v := decide(workspace, c, mode)).action not in expected]
    assert wrong == []


@pytest.mark.parametrize("mode", ["default", "acceptEdits"])
async def test_zero_silent_reads(workspace, home, intel, mode):
    """The number docs/security.md reports: calls that ran without asking and showed a secret."""
    leaks = []
    for case in CASES:
        if decide(workspace, case, mode).action != "allow":
            continue
        leaks += [case_id(case) for output in await run(workspace, home, intel, case)
                  if MARKER in output]
    assert leaks == []


def test_the_corpus_is_large_and_covers_every_reader():
    asks = [c for c in CASES if c["expect"] == "ask"]
    assert len(asks) >= 40
    via = Counter(c["via"] for c in CASES)
    assert {"Bash", "Read", "Grep", "Glob", "Definition", "References", "Hover"} <= set(via)
    commands = " ".join(c.get("command", "") for c in asks)
    for reader in ("grep -r", "rg ", "ag ", "git grep", "git show", "git log -p", "git diff",
                   "find ", "xargs", "tar ", "cp ", "git cat-file"):
        assert reader in commands, reader


def test_the_safe_neighbours_really_ran_clean(workspace):
    """Sanity: the workspace holds the secrets the corpus is about."""
    assert MARKER in (workspace / ".env").read_text()
    assert (workspace / "docs" / "env-link").resolve() == (workspace / ".env").resolve()
    listed = subprocess.run(["git", "ls-files"], cwd=workspace, capture_output=True, text=True,
                            timeout=30).stdout.split()
    assert "config/credentials.json" in listed and "deploy.key" not in listed
