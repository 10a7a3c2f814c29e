"""Context benchmark: fixed overhead and total input tokens, lsp-agent next to Claude Code's CLI.

Both agents run as command-line programs against the same scripted model server (the real
Messages API wire format), which records every request body. Two tasks:

* ``hi``: the prompt "hi", answered with one line (the cost of saying anything at all);
* ``fix``: a failing test; the scripted model reads the file, runs the tests, edits, answers.

From the recorded bodies (replayed in order through the scripted server's own token estimate
and prefix-cache accounting, so both agents are measured with one ruler):

* fixed overhead: tools + system prompt of the first request that offers tools;
* total input: every request's prompt tokens, split into cache reads, cache writes and
  uncached input.

Claude Code (``@anthropic-ai/claude-code`` from the npm registry) is installed into a cache
folder on first use, with ``npm install``. It runs in its own network namespace
(``unshare -n``) whose only interface is the loopback, together with its scripted server: it
cannot reach any other address, whatever it tries. Its HOME is an empty temporary folder.

    python bench/bench_context.py                       # both agents (installs Claude Code)
    python bench/bench_context.py --agents lsp-agent    # only lsp-agent
    python bench/bench_context.py --claude /path/to/claude

Results: bench/results/context.json and markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench import peers  # noqa: E402
from bench.common import run_facts  # noqa: E402
from lsp_agent.scripted.server import ScriptedModelServer  # noqa: E402
from lsp_agent.scripted.usage import (  # noqa: E402
    PromptCache,
    canonical_json,
    estimate_tokens,
)

RESULTS = HERE / "results" / "context.json"
CLAUDE_PACKAGE = "@anthropic-ai/claude-code"
CLAUDE_DIR = Path.home() / ".cache" / "lsp-agent-bench" / "claude-code"
RUN_TIMEOUT = 180
INSTALL_TIMEOUT = 600
TARGET_RATIO = 0.35  # lsp-agent's fixed overhead vs Claude Code's
DONE = {True: "yes", False: "no", None: "n/a"}

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX_PROMPT = "test_add fails. Find the bug in calc.py and fix it."


# -- scenarios: the same task in each agent's own tool vocabulary -----------------------------

def scenario(agent: str, task: str, workspace: Path) -> dict[str, Any]:
    if task == "hi":
        return {"turns": [{"content": "Hello! What can I do for you?"}]}
    if agent == "lsp-agent":
        read = {"path": "calc.py"}
        edit = {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}
        bash = {"command": "python -m pytest -q"}
    else:
        read = {"file_path": str(workspace / "calc.py")}
        edit = {"file_path": str(workspace / "calc.py"), "old_string": "a - b",
                "new_string": "a + b"}
        bash = {"command": "python -m pytest -q", "description": "Run the tests"}
    return {"turns": [
        {"content": [{"type": "text", "text": "Let me look at calc.py."},
                     {"type": "tool_use", "name": "Read", "input": read}]},
        {"content": [{"type": "tool_use", "name": "Bash", "input": bash}]},
        {"content": [{"type": "tool_use", "name": "Edit", "input": edit}]},
        {"content": [{"type": "tool_use", "name": "Bash", "input": bash}]},
        {"content": "add() subtracted; it adds now and the test passes."},
    ]}


def make_workspace(root: Path) -> Path:
    workspace = root / "ws"
    workspace.mkdir(parents=True)
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(TEST)
    return workspace


def prompt_for(task: str) -> str:
    return "hi" if task == "hi" else FIX_PROMPT


# -- running each agent --------------------------------------------------------------------------

def base_env(home: Path, base_url: str) -> dict[str, str]:
    return {
        "HOME": str(home), "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test", "TERM": "dumb",
        "LANG": "C.UTF-8",
    }


def run_lsp_agent(task: str, root: Path) -> dict[str, Any]:
    workspace = make_workspace(root)
    home = root / "home"
    home.mkdir()
    with ScriptedModelServer(scenario("lsp-agent", task, workspace)) as server:
        env = base_env(home, server.base_url) | {
            "LSP_AGENT_CONFIG_DIR": str(home / "config"), "LSP_AGENT_STATE_DIR": str(home / "s"),
            "LSP_AGENT_CACHE_DIR": str(home / "jedi")}
        done = subprocess.run(
            [sys.executable, "-m", "lsp_agent", "run", prompt_for(task), "--workspace",
             str(workspace), "--yes", "--permission-mode", "acceptEdits"],
            cwd=workspace, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False)
        bodies = [r["body"] for r in server.records]
    return {"returncode": done.returncode, "bodies": bodies, "stdout_tail": done.stdout[-600:],
            "fixed": (workspace / "calc.py").read_text() != CALC}


def claude_command(binary: str, task: str, bare: bool) -> list[str]:
    command = [binary, "-p", prompt_for(task), "--output-format", "json",
               "--permission-mode", "acceptEdits", "--allowedTools", "Bash(python -m pytest*)"]
    return command + (["--bare"] if bare else [])


def run_claude_inside(binary: str, task: str, bare: bool, out: Path) -> None:
    """Runs inside the network namespace: loopback up, scripted server, the CLI."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10,
                   env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    root = Path(tempfile.mkdtemp(prefix="bench-claude-"))
    try:
        workspace = make_workspace(root)
        home = root / "home"
        home.mkdir()
        with ScriptedModelServer(scenario("claude", task, workspace)) as server:
            env = base_env(home, server.base_url) | {
                "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
            done = subprocess.run(claude_command(binary, task, bare), cwd=workspace, env=env,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT,
                                  stdin=subprocess.DEVNULL, check=False)
            bodies = [r["body"] for r in server.records]
        out.write_text(json.dumps({
            "returncode": done.returncode, "bodies": bodies, "stdout_tail": done.stdout[-600:],
            "stderr_tail": done.stderr[-600:],
            "fixed": (workspace / "calc.py").read_text() != CALC}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_claude(binary: str, task: str, bare: bool) -> dict[str, Any]:
    if shutil.which("unshare") is None:
        raise SystemExit("unshare(1) is needed to keep Claude Code off the network")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "claude.json"
        command = ["unshare", "-n", sys.executable, __file__, "--inner-claude", binary,
                   "--task", task, "--out", str(out)] + (["--bare"] if bare else [])
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT + 30, check=False)
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"the isolated Claude Code run failed:\n{done.stderr[-2000:]}")
        return json.loads(out.read_text())


def install_claude(folder: Path) -> str:
    """Claude Code at the version pinned in bench/peers.py (never whatever npm has today)."""
    return str(peers.ensure_claude(folder))


def claude_version(binary: str) -> str:
    done = subprocess.run(["unshare", "-n", binary, "--version"], capture_output=True, text=True,
                          timeout=60, env={"HOME": tempfile.gettempdir(), "PATH": "/usr/bin:/bin"},
                          check=False)
    return done.stdout.strip()


# -- measuring -----------------------------------------------------------------------------------

def tokens(values: list[Any]) -> int:
    return sum(estimate_tokens(canonical_json(
        {k: v for k, v in value.items() if k != "cache_control"}
        if isinstance(value, dict) else value)) for value in values)


def system_list(body: dict[str, Any]) -> list[Any]:
    system = body.get("system")
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return list(system or [])


def measure(run: dict[str, Any]) -> dict[str, Any]:
    bodies = run["bodies"]
    main = [b for b in bodies if b.get("tools")]
    first = main[0] if main else bodies[0]
    cache = PromptCache()
    read = write = uncached = 0
    for body in bodies:
        usage = cache.account(body)
        read += usage.cache_read_input_tokens
        write += usage.cache_creation_input_tokens
        uncached += usage.input_tokens
    total = read + write + uncached
    return {
        "requests": len(bodies), "requests_with_tools": len(main),
        "tools_count": len(first.get("tools") or []),
        "tools_tokens": tokens(first.get("tools") or []),
        "system_tokens": tokens(system_list(first)),
        "fixed_overhead_tokens": tokens(first.get("tools") or []) + tokens(system_list(first)),
        "fixed_overhead_bytes": len(canonical_json(first.get("tools") or []))
        + len(canonical_json(system_list(first))),
        "total_input_tokens": total, "cache_read_tokens": read, "cache_write_tokens": write,
        "uncached_input_tokens": uncached,
        "cache_read_ratio": round(read / total, 3) if total else 0.0,
        "task_done": run["fixed"] if run.get("task") == "fix" else None,
        "returncode": run["returncode"],
    }


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = ["| agent | task | requests | fixed overhead (tokens) | tools / system | "
             "fixed bytes | total input (tokens) | cache reads | task done |",
             "|---|---|---|---|---|---|---|---|---|"]
    for agent, tasks in results.items():
        for task, m in tasks.items():
            lines.append(
                f"| {agent} | {task} | {m['requests']} | {m['fixed_overhead_tokens']:,} | "
                f"{m['tools_tokens']:,} ({m['tools_count']} tools) / {m['system_tokens']:,} | "
                f"{m['fixed_overhead_bytes']:,} | {m['total_input_tokens']:,} | "
                f"{m['cache_read_ratio']:.0%} | {DONE[m['task_done']]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="lsp-agent,claude-code,claude-code-bare")
    parser.add_argument("--tasks", default="hi,fix")
    parser.add_argument("--claude", help="path of the claude binary (default: install it)")
    parser.add_argument("--claude-dir", type=Path, default=CLAUDE_DIR)
    parser.add_argument("--inner-claude", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_claude:
        run_claude_inside(args.inner_claude, args.task, args.bare, args.out)
        return

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    binary = None
    if any(a.startswith("claude-code") for a in agents):
        binary = args.claude or install_claude(args.claude_dir)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for agent in agents:
        results[agent] = {}
        for task in tasks:
            if agent == "lsp-agent":
                with tempfile.TemporaryDirectory() as tmp:
                    run = run_lsp_agent(task, Path(tmp))
            else:
                run = run_claude(binary, task, bare=agent.endswith("-bare"))
            results[agent][task] = measure(run | {"task": task})
            print(f"{agent} {task}: {results[agent][task]}", file=sys.stderr)

    report: dict[str, Any] = {
        "meta": run_facts(), "claude_code_pinned": peers.CLAUDE_CODE_VERSION,
        "date": dt.date.today().isoformat(), "python": platform.python_version(),
        "platform": platform.platform(), "claude_code_version": claude_version(binary)
        if binary else None, "results": results}
    if "lsp-agent" in results and "claude-code" in results:
        report["fixed_overhead_ratio"] = {
            task: round(results["lsp-agent"][task]["fixed_overhead_tokens"]
                        / results["claude-code"][task]["fixed_overhead_tokens"], 3)
            for task in tasks}
        report["total_input_ratio"] = {
            task: round(results["lsp-agent"][task]["total_input_tokens"]
                        / results["claude-code"][task]["total_input_tokens"], 3)
            for task in tasks}
        report["target_fixed_overhead_ratio"] = TARGET_RATIO
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    for key in ("fixed_overhead_ratio", "total_input_ratio"):
        if key in report:
            print(f"- {key} (lsp-agent / claude-code): {report[key]}")
    print(f"- Claude Code: {report['claude_code_version']} (pinned {peers.CLAUDE_CODE_VERSION})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
