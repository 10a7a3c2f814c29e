"""``lsp-agent demo``: the whole flow offline.

A copy of a small project with a failing test, the scripted model server replaying a bundled
scenario over real HTTP, and the language server driven as an editor would drive it: the
failing test, the streamed turn, the diff, the approval, the passing test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.client.render import Renderer, describe_permission
from lsp_agent.types import events as ev

DEMO_PROMPT = "The test suite of this project fails. Find the bug and fix it."


def _bundled(name: str) -> Path:
    return Path(str(resources.files("lsp_agent") / name))


def copy_demo_project(target: Path) -> Path:
    shutil.copytree(_bundled("demo_project"), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def run_tests(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unittest", "-q", "test_pricing"], cwd=workspace,
        capture_output=True, text=True, timeout=60, check=False,
    )


Completed = subprocess.CompletedProcess[str]


def verdict(before: Completed, after: Completed) -> str:
    """What the two test runs showed, in numbers."""
    failed = len(re.findall(r"^(?:FAIL|ERROR): ", before.stdout + before.stderr, re.MULTILINE))
    ran = re.search(r"^Ran (\d+) tests?", after.stdout + after.stderr, re.MULTILINE)
    now = f"all {ran.group(1)} pass now" if ran else "all pass now"
    return (f"Demo passed: {failed} test{'s' if failed != 1 else ''} failed before the agent's "
            f"change; {now}.")


class DemoAnswers:
    """The demo's user: allows what is asked and approves the proposal, saying so."""

    def __init__(self, renderer: Renderer):
        self.r = renderer

    async def permission(self, params: dict[str, Any]) -> dict[str, Any]:
        self.r.line(f"? {describe_permission(params)}")
        self.r.line("  (demo) the user allows it once")
        return {"decision": "allow"}

    async def proposal(self, event: ev.ProposalCreated) -> dict[str, Any]:
        ids = [h.id for f in event.files for h in f.hunks]
        self.r.line(f"  (demo) the user reviews the diff and accepts hunk(s) {', '.join(ids)}")
        return {"accept": "all"}


async def _demo(args: argparse.Namespace) -> int:
    from lsp_agent.scripted.server import ScriptedModelServer

    r = Renderer(simulated=True)  # the scripted model's tokens are estimates: so are the prices
    root = Path(tempfile.mkdtemp(prefix="lsp-agent-demo-"))
    workspace = copy_demo_project(root / "shop")
    scenario = _bundled("scenarios") / "fix_failing_test.json"
    data = json.loads(scenario.read_text())
    data["delay_ms"] = 0 if args.fast else data.get("delay_ms", 15)
    with ScriptedModelServer(data) as model:
        r.line(r._c("1", "== 1. The project's tests fail =="))
        before = run_tests(workspace)
        r.line((before.stdout + before.stderr).strip())
        env = {**os.environ, "ANTHROPIC_BASE_URL": model.base_url,
               "ANTHROPIC_API_KEY": os.environ.get("ANTHROPIC_API_KEY", "demo-key"),
               "LSP_AGENT_STATE_DIR": str(root / "state")}
        answers = DemoAnswers(r)
        client = AgentClient(workspace, r, answers.permission, answers.proposal, env=env,
                             server_log=root / "server.log")
        r.line(r._c("1", f"\n== 2. The agent works (scripted model at {model.base_url}) =="))
        r.line(f"> {DEMO_PROMPT}")
        await client.start()
        try:
            session = await client.new_session()
            result = await client.prompt(session, DEMO_PROMPT)
        finally:
            await client.stop()
    r.line(r._c("1", "\n== 3. The tests after the agent's change =="))
    after = run_tests(workspace)
    r.line((after.stdout + after.stderr).strip())
    ok = before.returncode != 0 and after.returncode == 0 and result.get("stopReason") == "end_turn"
    r.line(r._c("32" if ok else "31", "\n" + (verdict(before, after) if ok
                                              else "Demo failed: see the output above.")))
    if args.keep:
        r.line(f"Workspace kept at {workspace}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


def run_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))
