"""The watcher's triggers, quiet, budgets, speculative fixes, granted auto-apply, inbox states and
events, end to end: a real ``lsp-agent serve`` over stdio, the real SDK against the scripted
model. The test command counts its runs in a file outside the project (so that the watcher
never knows of it), which makes "the command ran N times" exact."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.store.layout import workspace_slug
from tests.e2e_harness import WAIT, Editor, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
FIX = {"type": "tool_use", "name": "Edit", "input": {
    "path": "calc.py", "old_string": "a - b", "new_string": "a + b"}}
CHECK = """import pathlib, sys
pathlib.Path(sys.argv[1]).open("a").write("run\\n")
sys.path.insert(0, ".")
import calc
assert calc.add(2, 3) == 5, calc.add(2, 3)
"""
# A formatter of the user's: trailing spaces go.
FORMAT = """import sys
path = sys.argv[1]
text = open(path).read()
open(path, "w").write("\\n".join(line.rstrip() for line in text.split("\\n")))
"""
ERROR = {"range": {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 16}},
         "message": "add() subtracts", "severity": 1, "source": "lint"}


@pytest.fixture
def model():
    with ScriptedModelServer({"turns": [{"content": [FIX]}, {"content": "Fix prepared."}]}) \
            as server:
        yield server


class Project:
    def __init__(self, root: Path, text: str = BUGGY):
        self.root = root / "project"
        self.root.mkdir(parents=True)
        self.calc = self.root / "calc.py"
        self.calc.write_text(text)
        (root / "check.py").write_text(CHECK)
        (root / "fmt.py").write_text(FORMAT)
        self.counter = root / "runs.txt"
        self.command = (f"{shlex.quote(sys.executable)} {shlex.quote(str(root / 'check.py'))} "
                        f"{shlex.quote(str(self.counter))}")
        self.formatter = f"{shlex.quote(sys.executable)} {shlex.quote(str(root / 'fmt.py'))}"

    @property
    def runs(self) -> int:
        return len(self.counter.read_text().splitlines()) if self.counter.exists() else 0

    def log(self) -> list[dict[str, Any]]:
        folder = self.root / ".state" / "watch" / workspace_slug(self.root)
        return [json.loads(line) for day in sorted(folder.glob("*.log"))
                for line in day.read_text().splitlines()]

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True,
                       timeout=60)


class Heard:
    """What the server sent: inbox items (by id, the latest version) and watch events."""

    def __init__(self, editor: Editor):
        self.items: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

        @editor.client.feature("agent/inbox")
        async def on_inbox(params: Any) -> None:
            item = plain(params)["item"]
            self.items[item["id"]] = item

        @editor.client.feature("agent/watchEvent")
        async def on_event(params: Any) -> None:
            self.events.append(plain(params))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if i["kind"] == kind]

    @property
    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]


async def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll until ``condition()`` is truthy (the deadline only avoids a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (found := condition()):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


async def settled(editor: Editor, **more: Any) -> dict[str, Any]:
    """The watcher's status once no check is scheduled or running (and ``more`` holds)."""
    while True:
        status = await editor.request("agent/watchStatus", {})
        if status["activity"] == "idle" and all(status[k] >= v for k, v in more.items()):
            return status
        await asyncio.sleep(0.05)


def save(editor: Editor, path: Path) -> None:
    editor.client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri(path))))


async def watching(model: ScriptedModelServer, project: Project, **watch: Any) -> Editor:
    return await start_editor(model.base_url, project.root, watch={
        # The model triage has its own tests (test_e2e_watch_triage.py): off here.
        "enabled": True, "debounceSeconds": 0, "quietSeconds": 0, "triage": False, **watch})


# -- triggers ---------------------------------------------------------------------------------


async def test_a_file_saved_again_and_again_runs_once_and_within_the_budget(model, tmp_path):
    project = Project(tmp_path)
    editor = await watching(model, project, testCommand=project.command, debounceSeconds=0.5,
                            maxRunsPerHour=1)
    heard = Heard(editor)
    try:
        for _ in range(10):
            save(editor, project.calc)
        await asyncio.wait_for(settled(editor), WAIT)
        await until(lambda: heard.of_kind("test_failure"), "the fix")
        assert project.runs == 1

        project.calc.write_text("def add(a, b):\n    return a * b\n")  # another failure
        for _ in range(10):
            save(editor, project.calc)
        await until(lambda: project.runs == 2, "the second burst's run")
        await asyncio.wait_for(settled(editor), WAIT)
        assert project.runs == 2 and len(model.requests) == 1  # no second session this hour
        assert any("over the budget of 1 runs per hour" in r.get("why", "")
                   for r in project.log())
    finally:
        await editor.client.shutdown_session()


async def test_the_tick_runs_the_command_only_when_a_file_changed_or_head_moved(model, tmp_path):
    project = Project(tmp_path, FIXED)
    project.git("init", "-q", "-b", "main")
    project.git("add", "calc.py")
    project.git("commit", "-q", "-m", "start")
    editor = await watching(model, project, testCommand=project.command, tickSeconds=1)
    heard = Heard(editor)
    try:
        save(editor, project.calc)
        await until(lambda: project.runs == 1, "the run on save")
        status = await asyncio.wait_for(settled(editor), WAIT)
        # Idle ticks: no subprocess, no model call.
        await asyncio.wait_for(settled(editor, ticks=status["ticks"] + 3), WAIT)
        assert project.runs == 1 and model.requests == []
        assert heard.kinds == ["testsPassed"]  # the first run passed: said once

        project.calc.write_text(FIXED + "# changed outside the editor\n")
        await until(lambda: project.runs == 2, "the tick's run after the file changed")
        project.git("commit", "-q", "--allow-empty", "-m", "moved")
        await until(lambda: project.runs == 3, "the tick's run after HEAD moved")
        status = await asyncio.wait_for(settled(editor), WAIT)
        await asyncio.wait_for(settled(editor, ticks=status["ticks"] + 2), WAIT)
        assert project.runs == 3
        events = [(r["event"], r.get("why", "")) for r in project.log()]
        assert ("tick", "the test command passed") in events
        assert ("head", "the test command passed") in events
        assert heard.kinds == ["testsPassed"]  # passing again is not news
    finally:
        await editor.client.shutdown_session()


async def test_nothing_starts_while_the_user_types_in_the_workspace(model, tmp_path):
    project = Project(tmp_path, FIXED)
    editor = await watching(model, project, testCommand=project.command, quietSeconds=1)
    try:
        editor.open(project.calc)
        editor.type_text(project.calc, FIXED + "# typing\n")
        save(editor, project.calc)
        log = await until(lambda: [r for r in project.log()
                                   if r["why"] == "the test command passed"] and project.log(),
                          "the run once the user stopped typing")
        assert project.runs == 1
        assert log[0]["action"] == "wait" and "typing" in log[0]["why"]  # waited, then ran
    finally:
        await editor.client.shutdown_session()


# -- a failing test: events, inbox statuses, typing before the review ----------------------------


async def test_a_fix_waits_in_the_inbox_and_lands_around_the_users_typing(model, tmp_path):
    project = Project(tmp_path)
    editor = await watching(model, project, testCommand=project.command)
    heard = Heard(editor)
    try:
        save(editor, project.calc)
        [item] = await until(lambda: heard.of_kind("test_failure"), "the inbox item")
        assert item["proposals"] == [{"id": item["proposalIds"][0], "status": "pending"}]
        assert heard.kinds == ["testsFailed", "fixPrepared"]
        assert project.calc.read_text() == BUGGY

        # The user types in the file before reviewing: the fix must not overwrite that.
        editor.open(project.calc)
        typed = editor.type_at(project.calc, (0, 0), (0, 0), "# mine\n")
        await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                              "accept": "all"})
        assert editor.buffer(project.calc) == "# mine\n" + FIXED
        assert editor.applied[-1]["documentChanges"][0]["textDocument"]["version"] == typed
        [listed] = (await editor.request("agent/inboxList", {}))["items"]
        assert listed["proposals"][0]["status"] == "accepted"
        updated = await until(lambda: heard.items[item["id"]]["proposals"][0]["status"]
                              == "accepted", "the item's update")
        assert updated

        save(editor, project.calc)
        await until(lambda: "testsPassed" in heard.kinds, "testsPassed")
        assert heard.kinds == ["testsFailed", "fixPrepared", "testsPassed"]

        assert await editor.request("agent/inboxDismiss", {"id": item["id"]}) == {
            "dismissed": True}
        assert (await editor.request("agent/inboxList", {}))["items"] == []
        with pytest.raises(JsonRpcInvalidParams, match="unknown inbox item"):
            await editor.request("agent/inboxDismiss", {"id": item["id"]})
    finally:
        await editor.client.shutdown_session()


# -- the daily cost cap ---------------------------------------------------------------------------


async def test_the_daily_cost_cap_stops_the_watcher_and_survives_a_restart(model, tmp_path):
    project = Project(tmp_path)
    watch = {"testCommand": project.command, "dailyCostUsd": 0.000001}
    editor = await watching(model, project, **watch)
    heard = Heard(editor)
    try:
        save(editor, project.calc)
        await until(lambda: heard.of_kind("test_failure"), "the first fix")
        [budget] = await until(lambda: heard.of_kind("budget"), "the budget item")
        assert "daily budget" in budget["title"] and "sessionId" not in budget
        assert "budgetReached" in heard.kinds
        project.calc.write_text("def add(a, b):\n    return a * b\n")  # another failure
        save(editor, project.calc)
        await until(lambda: project.runs == 2, "the second run")
        await asyncio.wait_for(settled(editor), WAIT)
        assert len(model.requests) == 1  # no second session
        assert any("daily cost cap" in r.get("why", "") for r in project.log())
        assert len(heard.of_kind("budget")) == 1  # one item a day
        spent = (await editor.request("agent/watchStatus", {}))["spentTodayUsd"]
        assert spent > 0.000001
    finally:
        await editor.client.shutdown_session()

    editor = await watching(model, project, **watch)  # a restart does not reset the day
    heard = Heard(editor)
    try:
        assert (await editor.request("agent/watchStatus", {}))["spentTodayUsd"] == spent
        project.calc.write_text("def add(a, b):\n    return a // b\n")
        save(editor, project.calc)
        await until(lambda: heard.of_kind("budget"), "the budget item after the restart")
        await asyncio.wait_for(settled(editor), WAIT)
        assert len(model.requests) == 1 and heard.of_kind("test_failure") == []
    finally:
        await editor.client.shutdown_session()


# -- speculative fixes ----------------------------------------------------------------------------


def diagnostics_changed(editor: Editor, path: Path, diagnostics: list[dict[str, Any]]) -> None:
    editor.client.protocol.notify("agent/diagnosticsChanged",
                                  {"uri": uri(path), "diagnostics": diagnostics})


async def fix_command(editor: Editor, path: Path, diagnostic: dict[str, Any]) -> dict[str, Any]:
    result = await asyncio.wait_for(editor.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="lspAgent.fix",
                                 arguments=[{"uri": uri(path), "diagnostic": diagnostic}])), WAIT)
    return plain(result)


async def test_a_new_error_gets_its_fix_prepared_and_fix_with_agent_opens_it(model, tmp_path):
    project = Project(tmp_path)
    editor = await watching(model, project)  # no test command: diagnostics alone
    heard = Heard(editor)
    try:
        editor.open(project.calc)
        diagnostics_changed(editor, project.calc, [])  # clean: the baseline
        diagnostics_changed(editor, project.calc, [ERROR])  # then an error appears
        [item] = await until(lambda: heard.of_kind("diagnostic"), "the prepared fix")
        assert item["uri"] == uri(project.calc) and "add() subtracts" in item["title"]
        assert "fixPrepared" in heard.kinds
        first = json.dumps(model.requests[0]["messages"])
        assert "add() subtracts" in first  # the diagnostic reached the background session
        assert editor.buffer(project.calc) == BUGGY and project.calc.read_text() == BUGGY

        result = await fix_command(editor, project.calc, ERROR)
        assert result == {"sessionId": item["sessionId"], "prepared": True,
                          "proposalIds": item["proposalIds"]}
        # The same set again is nothing new: no second speculation.
        diagnostics_changed(editor, project.calc, [ERROR])
        await editor.request("agent/watchStatus", {})
        assert len(heard.of_kind("diagnostic")) == 1

        await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                              "accept": "all"})
        assert editor.buffer(project.calc) == FIXED
    finally:
        await editor.client.shutdown_session()


async def test_typing_in_the_document_withdraws_the_prepared_fix(model, tmp_path):
    project = Project(tmp_path)
    editor = await watching(model, project)
    heard = Heard(editor)
    try:
        editor.open(project.calc)
        diagnostics_changed(editor, project.calc, [])
        diagnostics_changed(editor, project.calc, [ERROR])
        [item] = await until(lambda: heard.of_kind("diagnostic"), "the prepared fix")
        editor.type_at(project.calc, (0, 0), (0, 0), "# user\n")
        await until(lambda: heard.items[item["id"]]["proposals"][0]["status"] == "withdrawn",
                    "the withdrawn proposal")
        with pytest.raises(JsonRpcInvalidParams, match="unknown or already resolved"):
            await editor.request("agent/review", {"proposalId": item["proposalIds"][0],
                                                  "accept": "all"})
        result = await fix_command(editor, project.calc, ERROR)  # a turn as before
        assert "prepared" not in result and result["sessionId"] != item["sessionId"]
        assert editor.buffer(project.calc) == "# user\n" + BUGGY
    finally:
        await editor.client.shutdown_session()


async def test_a_speculative_fix_waits_until_the_user_stops_typing(model, tmp_path):
    project = Project(tmp_path)
    editor = await watching(model, project, quietSeconds=1)
    heard = Heard(editor)
    try:
        editor.open(project.calc)
        diagnostics_changed(editor, project.calc, [])
        editor.type_at(project.calc, (0, 0), (0, 0), "\n")
        moved = {**ERROR, "range": {"start": {"line": 2, "character": 11},
                                    "end": {"line": 2, "character": 16}}}
        diagnostics_changed(editor, project.calc, [moved])
        await until(lambda: heard.of_kind("diagnostic"), "the fix once quiet")
        log = project.log()
        assert [r["action"] for r in log if r["event"] in ("diagnostics", "diagnostic")] == [
            "speculate", "wait", "fix"]  # it waited for the typing to stop, then started
    finally:
        await editor.client.shutdown_session()


# -- granted kinds of change ----------------------------------------------------------------------


async def test_granted_formatting_lands_without_review_unless_the_user_typed(model, tmp_path):
    project = Project(tmp_path, "def add(a, b):   \n    return a + b  \n")
    editor = await watching(model, project, autoApply=["format"],
                            formatCommand=f"{project.formatter} {{file}}")
    heard = Heard(editor)
    try:
        editor.open(project.calc)
        save(editor, project.calc)
        [item] = await until(lambda: heard.of_kind("auto_applied"), "the auto_applied item")
        assert editor.buffer(project.calc) == FIXED and project.calc.read_text() == FIXED
        assert item["proposals"] == [{"id": item["proposalIds"][0], "status": "accepted"}]
        assert "-def add(a, b):   " in item["detail"] and "+def add(a, b):" in item["detail"]
        assert "autoApplied" in heard.kinds and model.requests == []

        # The user types while the edit is on its way: the editor refuses it, nothing lands.
        editor.type_text(project.calc, "x = 1   \n")
        editor.before_apply = lambda: editor.type_text(project.calc, "x = 2   \n")
        save(editor, project.calc)
        await until(lambda: any(r.get("why", "").startswith("not applied")
                                for r in project.log()), "the refusal in the log")
        assert editor.buffer(project.calc) == "x = 2   \n"
        assert len(heard.of_kind("auto_applied")) == 1
    finally:
        await editor.client.shutdown_session()
