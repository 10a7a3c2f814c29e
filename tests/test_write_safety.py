"""Writes re-check their final path when they happen; reads never block on special files.

The proposal tests run the real ProposalBook with the server's disk writer, on real files,
symlinks, FIFOs and permission bits (POSIX only).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest
from pydantic import BaseModel

from lsp_agent.agent.loop import Agent, AgentDeps
from lsp_agent.edits.workspace_edit import WorkspaceEditError, apply_workspace_edit_to_disk
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.safe_write import (
    WriteRefused,
    WriteScope,
    real_path,
    write_bytes_checked,
    write_text_checked,
)
from lsp_agent.permissions.settings import record_rule
from lsp_agent.server.editor import DiskApplier
from lsp_agent.sessions.proposals import ProposalBook, ProposalHost
from lsp_agent.tools.base import FileEdit, Tool, ToolContext, ToolError, ToolOutput, ToolPool
from lsp_agent.tools.files import Edit, EditInput, Read, ReadInput, Write, WriteInput
from lsp_agent.tools.results import finalize_output
from lsp_agent.tools.search import Grep, GrepInput
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments, NotRegularFile

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics")
ORIGINAL = "def total(items):\n    return sum(items)\n"
EDITED = "def total(items):\n    return sum(items, 0)\n"


class Session:
    """What a ProposalBook needs of a session."""

    def __init__(self, workspace: Path, mode: str = "default"):
        self.workspace, self.mode, self.id = workspace, mode, "s1"
        self.documents = DiskDocuments()
        self.events: list[Any] = []
        self.proposed = asyncio.Event()

    def emit(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, ev.ProposalCreated):
            self.proposed.set()


def host_of(session: Session) -> ProposalHost:
    return ProposalHost(session.id, session.workspace, session.documents, session.emit,
                        lambda: session.mode)  # type: ignore[arg-type,return-value]


class NoDiagnostics:
    async def diagnostics(self, path: Path) -> list[dict]:
        return []


def context(workspace: Path, proposals: Any = None) -> ToolContext:
    return ToolContext(workspace=workspace, documents=DiskDocuments(), proposals=proposals,
                       diagnostics=NoDiagnostics(), results_dir=workspace / ".results",
                       tool_use_id="toolu_1")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "calc.py").write_text(ORIGINAL)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside" / "victim.py"
    target.parent.mkdir()
    target.write_text(ORIGINAL)  # same text: a rebase alone would not notice the swap
    return target


async def propose_then(workspace: Path, between, accept: Any = "all") -> tuple[Any, Session]:
    """Propose the EDITED change to calc.py, run ``between()``, then accept it."""
    session = Session(workspace)
    book = ProposalBook(host_of(session), DiskApplier())
    call = asyncio.create_task(Edit().call(
        EditInput(path="calc.py", old_string="sum(items)", new_string="sum(items, 0)"),
        context(workspace, book)))
    await asyncio.wait_for(session.proposed.wait(), 10)
    created = next(e for e in session.events if isinstance(e, ev.ProposalCreated))
    between()
    result = await book.review(created.proposal_id, accept, [], None)
    outcome = await asyncio.wait_for(call, 10)
    return (result, outcome), session


# --------------------------------------------------------------------------- proposals


async def test_symlink_swapped_in_after_the_proposal_is_not_written_through(workspace, outside):
    calc = workspace / "calc.py"

    def swap() -> None:
        calc.unlink()
        calc.symlink_to(outside)

    (result, outcome), session = await propose_then(workspace, swap)

    assert outside.read_text() == ORIGINAL, "the file outside the workspace must not change"
    assert calc.is_symlink()
    assert result.status == "failed" and result.applied == []
    assert "NOT applied" in outcome and f"now leads to {real_path(outside)}" in outcome
    resolved = [e for e in session.events if isinstance(e, ev.ProposalResolved)]
    assert resolved[-1].status == "failed"


async def test_symlink_to_a_protected_file_in_the_workspace_is_refused(workspace):
    secret = workspace / ".env"
    secret.write_text(ORIGINAL)
    calc = workspace / "calc.py"

    def swap() -> None:
        calc.unlink()
        calc.symlink_to(secret)

    (result, outcome), _ = await propose_then(workspace, swap)

    assert secret.read_text() == ORIGINAL
    assert result.status == "failed" and "NOT applied" in outcome


async def test_file_made_read_only_after_the_proposal_is_not_replaced(workspace):
    calc = workspace / "calc.py"

    (result, outcome), _ = await propose_then(workspace, lambda: calc.chmod(0o444))

    assert calc.read_text() == ORIGINAL
    assert stat.S_IMODE(calc.stat().st_mode) == 0o444
    assert result.status == "failed"
    assert "read-only (mode 0444)" in outcome and "NOT applied" in outcome


async def test_an_untouched_proposal_is_applied_and_keeps_the_mode_bits(workspace):
    calc = workspace / "calc.py"
    calc.chmod(0o750)

    (result, _), _ = await propose_then(workspace, lambda: None)

    assert result.status == "accepted" and calc.read_text() == EDITED
    assert stat.S_IMODE(calc.stat().st_mode) == 0o750
    assert not [p for p in workspace.iterdir() if p.name.endswith(".lsp-agent.tmp")]


async def test_a_link_approved_when_proposed_is_still_written(workspace, outside):
    # A symlink that was there all along: the permission check saw where it leads.
    link = workspace / "linked.py"
    link.symlink_to(outside)
    session = Session(workspace, mode="acceptEdits")
    book = ProposalBook(host_of(session), DiskApplier())

    outcome = await book.propose("toolu_1", [FileEdit(link, ORIGINAL, EDITED, None)])

    assert "applied" in outcome and outside.read_text() == EDITED and link.is_symlink()


async def test_a_rejected_file_swapped_for_a_link_is_neither_read_nor_blocking(workspace,
                                                                               outside):
    other = workspace / "other.py"
    other.write_text(ORIGINAL)
    session = Session(workspace)
    book = ProposalBook(host_of(session), DiskApplier())
    edits = [FileEdit(workspace / "calc.py", ORIGINAL, EDITED, None),
             FileEdit(other, ORIGINAL, EDITED, None)]
    call = asyncio.create_task(book.propose("toolu_1", edits))
    await asyncio.wait_for(session.proposed.wait(), 10)
    created = next(e for e in session.events if isinstance(e, ev.ProposalCreated))
    other.unlink()
    other.symlink_to(outside)

    result = await book.review(created.proposal_id, ["f1.h1"], ["f2.h1"], None)
    await asyncio.wait_for(call, 10)

    assert result.status == "partially_accepted" and result.applied == ["f1.h1"]
    assert (workspace / "calc.py").read_text() == EDITED and outside.read_text() == ORIGINAL


async def test_edit_through_a_link_inside_the_workspace_is_proposed_and_applied(workspace):
    (workspace / "alias.py").symlink_to(workspace / "calc.py")
    session = Session(workspace, mode="acceptEdits")
    book = ProposalBook(host_of(session), DiskApplier())

    outcome = await Edit().call(
        EditInput(path="alias.py", old_string="sum(items)", new_string="sum(items, 0)"),
        context(workspace, book))

    assert "applied" in outcome and (workspace / "calc.py").read_text() == EDITED
    assert (workspace / "alias.py").is_symlink()


async def test_edit_of_a_read_only_file_is_refused_before_review(workspace):
    (workspace / "calc.py").chmod(0o444)
    with pytest.raises(ToolError, match=r"calc.py is read-only \(mode 0444\)"):
        await Edit().call(EditInput(path="calc.py", old_string="sum", new_string="add"),
                          context(workspace))


# --------------------------------------------------------------------------- the writer


def test_write_refuses_a_path_that_now_leads_elsewhere(workspace, outside):
    calc = workspace / "calc.py"
    approved = real_path(calc)
    calc.unlink()
    calc.symlink_to(outside)

    with pytest.raises(WriteRefused, match="now leads to"):
        write_text_checked(calc, EDITED, WriteScope.inside(workspace, expected=approved))
    assert outside.read_text() == ORIGINAL


def test_write_refuses_a_link_out_of_its_roots(workspace, outside):
    link = workspace / "out.py"
    link.symlink_to(outside)
    with pytest.raises(WriteRefused, match="outside"):
        write_bytes_checked(link, b"x", WriteScope.inside(workspace))
    assert outside.read_text() == ORIGINAL


def test_write_refuses_a_protected_file(workspace):
    (workspace / ".git").mkdir()
    with pytest.raises(WriteRefused, match=r"inside \.git"):
        write_bytes_checked(workspace / ".git" / "config", b"x", WriteScope.inside(workspace))
    assert not (workspace / ".git" / "config").exists()


def test_write_refuses_to_replace_a_fifo(workspace):
    fifo = workspace / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(WriteRefused, match="not a regular file"):
        write_text_checked(fifo, "x", WriteScope.inside(workspace))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_new_file_gets_default_permissions(workspace):
    write_bytes_checked(workspace / "sub" / "new.py", b"x = 1\n", WriteScope.inside(workspace))
    mode = stat.S_IMODE((workspace / "sub" / "new.py").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_headless_client_refuses_a_link_out_of_the_workspace(workspace, outside):
    link = workspace / "out.py"
    link.symlink_to(outside)
    edit = {"changes": {link.as_uri(): [{"range": {"start": {"line": 0, "character": 0},
                                                   "end": {"line": 0, "character": 0}},
                                         "newText": "# added\n"}]}}
    with pytest.raises(WorkspaceEditError, match="outside"):
        apply_workspace_edit_to_disk(edit, roots=[workspace])
    assert outside.read_text() == ORIGINAL


def test_settings_file_swapped_for_a_link_is_not_written_through(workspace, outside):
    settings = workspace / ".lsp-agent" / "settings.local.json"
    settings.parent.mkdir()
    outside.write_text("{}")
    settings.symlink_to(outside)
    with pytest.raises(WriteRefused, match="outside"):
        record_rule(settings, "Bash(make)")
    assert outside.read_text() == "{}"


def test_settings_file_is_written_normally(workspace):
    settings = workspace / ".lsp-agent" / "settings.local.json"
    record_rule(settings, "Bash(make)")
    assert json.loads(settings.read_text()) == {"permissions": {"allow": ["Bash(make)"]}}
    assert (settings.parent / ".gitignore").read_text() == "settings.local.json\n"


class NoInput(BaseModel):
    pass


class Loud(Tool):
    name = "Loud"
    description = "Says a lot."
    input_model = NoInput
    max_result_chars = 100

    async def call(self, args: Any, ctx: ToolContext) -> str:
        return "x" * 1000


async def test_saved_results_do_not_follow_a_planted_link(workspace, outside):
    ctx = context(workspace)
    ctx.results_dir.mkdir()
    (ctx.results_dir / "toolu_1.txt").symlink_to(outside)

    output = await finalize_output(Loud(), "x" * 1000, ctx)

    assert isinstance(output, ToolOutput) and "could not be saved" in output.content
    assert outside.read_text() == ORIGINAL


# --------------------------------------------------------------------------- special files


@pytest.fixture
def fifo(workspace: Path) -> Path:
    path = workspace / "pipe.txt"
    os.mkfifo(path)  # nobody ever writes to it: opening it for reading would wait forever
    return path


async def test_read_of_a_fifo_is_a_clear_error(workspace, fifo):
    with pytest.raises(ToolError, match=r"pipe.txt is a FIFO \(named pipe\), not a regular"):
        await asyncio.wait_for(Read().call(ReadInput(path="pipe.txt"), context(workspace)), 10)


async def test_ranged_read_of_a_fifo_is_a_clear_error(workspace, fifo):
    args = ReadInput(path="pipe.txt", offset=1, limit=5)
    with pytest.raises(ToolError, match="FIFO"):
        await asyncio.wait_for(Read().call(args, context(workspace)), 10)


async def test_edit_and_write_of_a_fifo_are_clear_errors(workspace, fifo):
    ctx = context(workspace)
    with pytest.raises(ToolError, match="FIFO"):
        await asyncio.wait_for(
            Edit().call(EditInput(path="pipe.txt", old_string="a", new_string="b"), ctx), 10)
    with pytest.raises(ToolError, match="FIFO"):
        await asyncio.wait_for(Write().call(WriteInput(path="pipe.txt", content="x"), ctx), 10)


async def test_grep_of_a_fifo_is_a_clear_error(workspace, fifo):
    args = GrepInput(pattern="x", path="pipe.txt")
    with pytest.raises(ToolError, match="FIFO"):
        await asyncio.wait_for(Grep(use_ripgrep=False).call(args, context(workspace)), 10)


async def test_grep_walk_skips_a_fifo(workspace, fifo):
    args = GrepInput(pattern="sum", output_mode="files_with_matches")
    out = await asyncio.wait_for(Grep(use_ripgrep=False).call(args, context(workspace)), 30)
    assert "calc.py" in out and "pipe.txt" not in out


def test_snapshot_of_a_fifo_raises_without_opening_it(fifo):
    with pytest.raises(NotRegularFile, match="FIFO"):
        DiskDocuments().snapshot(fifo)


def test_snapshot_of_a_socket_is_refused(tmp_path):
    import socket

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(NotRegularFile, match="socket"):
            DiskDocuments().snapshot(path)


def test_snapshot_of_a_device_is_refused():
    with pytest.raises(NotRegularFile, match="character device"):
        DiskDocuments().snapshot(Path("/dev/zero"))


# --------------------------------------------------------------------------- time limits


class Hang(Tool):
    name = "Hang"
    description = "Never finishes."
    input_model = NoInput
    access = "read"
    time_limit = 0.3

    async def call(self, args: Any, ctx: ToolContext) -> str:
        await asyncio.sleep(3600)
        return "unreachable"


async def test_a_tool_past_its_time_limit_is_stopped_and_reported(model, workspace):
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Hang", "input": {}}]},
        {"content": "ok", "expect": {"tool_result_contains": "did not finish within 0.3 s"}},
    ]})
    settings = ModelSettings(model="test-model", api_key="k", base_url=model.base_url,
                             backoff_base=0.01)
    agent = Agent(AgentDeps(
        model=ModelService(settings, anthropic.AsyncAnthropic(
            api_key="k", base_url=model.base_url, max_retries=0)),
        tools=ToolPool([Hang()]), gate=PermissionGate(workspace, "default"),
        system=lambda: [{"type": "text", "text": "t"}],
        tool_context=lambda tool_use_id: ToolContext(
            workspace=workspace, documents=DiskDocuments(), proposals=None,
            diagnostics=DiagnosticsStore(), results_dir=workspace / ".results",
            tool_use_id=tool_use_id),
        session_id="s1"))

    events = [e async for e in agent.run_turn([{"type": "text", "text": "go"}])]

    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert result.is_error and "Hang did not finish within 0.3 s" in result.content
    assert events[-1].stop_reason == "end_turn"


# --------------------------------------------------------------------------- reads on the loop


@pytest.fixture
def count_thread_hops(monkeypatch) -> list[str]:
    """Names of the functions sent to a worker thread while the test runs."""
    hops: list[str] = []
    real_to_thread = asyncio.to_thread

    async def counting(func, /, *args, **kwargs):
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_to_thread(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    return hops


async def test_a_small_file_is_read_without_a_thread_hop(workspace, count_thread_hops):
    # A hop costs more than reading a small file; the bench's Read rounds depend on this.
    (workspace / "notes.txt").write_text("alpha\nbeta\n")
    out = await Read().call(ReadInput(path="notes.txt"), context(workspace))
    assert out == "     1\talpha\n     2\tbeta"
    assert count_thread_hops == []


async def test_a_large_file_is_read_and_split_in_a_worker(workspace, count_thread_hops):
    from lsp_agent.workspace.documents import INLINE_READ_BYTES

    lines = ("y" * 99 + "\n") * (INLINE_READ_BYTES // 100)
    (workspace / "big.txt").write_text("x" * 99 + "\n" + lines)
    out = await Read().call(ReadInput(path="big.txt", limit=2), context(workspace))
    assert out.startswith("     1\t" + "x" * 99)
    assert "disk_snapshot" in count_thread_hops and "split_lines" in count_thread_hops


async def test_a_fifo_swapped_in_after_the_size_check_cannot_block(workspace, fifo, monkeypatch):
    # The race the inline path must survive: the stat saw a small regular file, then a FIFO
    # took its place. The read opens non-blocking and checks the type on the descriptor.
    from lsp_agent.workspace import documents

    monkeypatch.setattr(documents, "is_small_regular_file", lambda path: True)
    with pytest.raises(ToolError, match="FIFO"):
        await asyncio.wait_for(Read().call(ReadInput(path="pipe.txt"), context(workspace)), 10)
