"""The watcher: what it costs while nothing happens, and how long from a save to an inbox item.

A real ``lsp-agent serve`` (through the e2e harness), the real SDK against the scripted model:

* **idle**: the watcher enabled on a project, nothing saved, for ``--idle-seconds`` (default 60;
  the issue's figure is over 10 minutes: pass 600): the server's CPU time over that span (from
  /proc) and the number of model requests (must be 0);
* **idle with the tick**: the same with ``tickSeconds`` 5 after one save (so the tick has a file
  to look at): CPU, the ticks that looked, the test command's runs after the first (must be 0:
  nothing changed) and model requests (must be 0);
* **save to inbox**: a save whose test fails -> the ``agent/inbox`` notification, ``--runs``
  times (a fresh workspace each run: the watcher tries a failure once). Reported next to the
  test command's own time (run alone) and the scripted model's time (its requests' durations
  as the server saw them are not exposed; the scenario streams with no delay). The overhead is
  total minus the command's time.

    python bench/bench_watch.py [--runs 5] [--idle-seconds 60]

Results: bench/results/watch.json and lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lsprotocol import types as lsp  # noqa: E402

from lsp_agent.scripted.server import ScriptedModelServer  # noqa: E402
from tests.e2e_harness import start_editor, uri  # noqa: E402

BUGGY = "def add(a, b):\n    return a - b\n"
CHECK = "import calc; assert calc.add(2, 3) == 5"
FIX = {"type": "tool_use", "name": "Edit", "input": {
    "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}
COMMAND = f"{shlex.quote(sys.executable)} -c {shlex.quote(CHECK)}"
TRIAGE = {"system_contains": "triage step of lsp-agent's watcher", "content": [
    {"type": "tool_use", "name": "triage", "input": {"fix": True, "reason": "a real defect"}}]}
WATCH = {"enabled": True, "testCommand": COMMAND, "debounceSeconds": 0}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle(model: ScriptedModelServer, root: Path, seconds: float) -> dict[str, Any]:
    project = root / "idle"
    project.mkdir()
    (project / "calc.py").write_text(BUGGY)
    editor = await start_editor(model.base_url, project, watch=WATCH)
    try:
        pid = editor.client._server.pid
        await editor.request("agent/watchStatus", {})  # the server is up and answering
        before, started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        used, wall = cpu_seconds(pid) - before, time.monotonic() - started
    finally:
        await editor.client.shutdown_session()
    return {"seconds": round(wall, 1), "cpuSeconds": round(used, 3),
            "cpuPercent": round(100 * used / wall, 3), "modelRequests": len(model.requests)}


async def idle_with_tick(model: ScriptedModelServer, root: Path,
                         seconds: float) -> dict[str, Any]:
    project = root / "idle-tick"
    project.mkdir()
    (project / "calc.py").write_text(BUGGY.replace("a - b", "a + b"))
    counter = root / "tick-runs.txt"
    watch = {"enabled": True, "testCommand": f"echo run >> {shlex.quote(str(counter))}",
             "debounceSeconds": 0, "tickSeconds": 5, "quietSeconds": 0}
    editor = await start_editor(model.base_url, project, watch=watch)
    requests_before = len(model.requests)
    try:
        pid = editor.client._server.pid
        editor.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri(project / "calc.py"))))
        # No event tells when the command ran: poll its counter.
        while not counter.exists():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        status = await editor.request("agent/watchStatus", {})
        before, started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        used, wall = cpu_seconds(pid) - before, time.monotonic() - started
        after = await editor.request("agent/watchStatus", {})
    finally:
        await editor.client.shutdown_session()
    return {"seconds": round(wall, 1), "tickSeconds": 5, "cpuSeconds": round(used, 3),
            "cpuPercent": round(100 * used / wall, 3), "ticks": after["ticks"] - status["ticks"],
            "runsAfterTheFirst": len(counter.read_text().splitlines()) - 1,
            "modelRequests": len(model.requests) - requests_before}


async def save_to_inbox(model: ScriptedModelServer, root: Path, runs: int) -> dict[str, Any]:
    totals = []
    for run in range(runs):  # a server per run: its root is the project
        project = root / f"p{run}"
        project.mkdir()
        (project / "calc.py").write_text(BUGGY)
        # The model triage (on by default) answers first: told apart by its system prompt.
        model.load({"turns": [{"content": [FIX], "when": [TRIAGE]}, {"content": "prepared"}]})
        editor = await start_editor(model.base_url, project, watch=WATCH)
        arrived: asyncio.Queue[float] = asyncio.Queue()

        @editor.client.feature("agent/inbox")
        async def on_inbox(params: Any, queue: asyncio.Queue[float] = arrived) -> None:
            queue.put_nowait(time.monotonic())

        try:
            # Warm: the first session of a server imports the SDK and builds its parts.
            await editor.request("agent/newSession", {})
            started = time.monotonic()
            editor.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri(project / "calc.py"))))
            totals.append(await asyncio.wait_for(arrived.get(), 120) - started)
        finally:
            await editor.client.shutdown_session()
    command = []
    for _ in range(runs):
        started = time.monotonic()
        proc = await asyncio.create_subprocess_shell(
            COMMAND, cwd=root / "p0", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await proc.wait()
        command.append(time.monotonic() - started)
    total, cmd = statistics.median(totals), statistics.median(command)
    return {"runs": runs, "medianSeconds": round(total, 3), "maxSeconds": round(max(totals), 3),
            "testCommandSeconds": round(cmd, 3), "overheadSeconds": round(total - cmd, 3)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ScriptedModelServer({"turns": []}) as model:
        root = Path(tmp)
        # The server must not read the machine's settings (a deny-all file would skew it).
        os.environ["HOME"] = str(root / "home")
        os.environ["XDG_CONFIG_HOME"] = str(root / "home" / ".config")
        quiet = await idle(model, root, args.idle_seconds)
        print(f"idle: {quiet}")
        ticking = await idle_with_tick(model, root, args.idle_seconds)
        print(f"idle with the tick: {ticking}")
        (root / "runs").mkdir()
        latency = await save_to_inbox(model, root / "runs", args.runs)
        print(f"save -> inbox: {latency}")
    out = HERE / "results" / "watch.json"
    out.write_text(json.dumps({"idle": quiet, "idleWithTick": ticking, "saveToInbox": latency},
                              indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
