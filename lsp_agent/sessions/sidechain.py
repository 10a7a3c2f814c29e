"""A subagent's transcript: ``<sessionId>/subagents/<agentId>.jsonl`` next to the parent's.

The same entries as a session's transcript (the child's conversation through its observer,
usage and errors from its events), written by the store's writer, so the redactor masks
secrets in it too and retention deletes it with the session's folder. Its first entry after
the header, ``subagent``, says who the child is (type, name, description, isolated or not).
It stays open while the child may be continued (SendMessage) and is closed with the session.

A resumed session reads its children's transcripts back (``saved_children``): each child
that did not work in a git worktree gets its conversation again and its transcript goes on,
so SendMessage can continue it after the resume.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lsp_agent.agent.subagents import MAX_KEPT_AGENTS, AgentInput, AgentTool, Child, Delegation
from lsp_agent.context.agents import AgentType
from lsp_agent.sessions.recorder import SessionRecorder
from lsp_agent.store.reader import TranscriptReader, load_transcript
from lsp_agent.store.writer import TranscriptWriter, WriterState, open_writer

log = logging.getLogger(__name__)


class SidechainRecorder(SessionRecorder):
    def __init__(self, parent: SessionRecorder, agent_id: str, agent_type: AgentType | str,
                 resume: WriterState | None = None):
        super().__init__(parent.store, parent.workspace, agent_id, parent.report)
        self.path = sidechain_dir(parent) / f"{agent_id}.jsonl"
        self.agent_type = agent_type if isinstance(agent_type, str) else agent_type.name
        self._resume = resume  # go on with the saved transcript

    async def _open(self) -> TranscriptWriter | None:
        try:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            writer = await open_writer(self.path, self.session_id, cwd=str(self.workspace),
                                       state=self._resume,
                                       redactor=self.store.redactor, on_error=self.report)
        except Exception as exc:  # the child goes on unsaved; the parent's transcript says why
            log.warning("subagent %s is not saved: %s", self.session_id, exc)
            self._backlog.clear()
            return None
        self._writer = writer
        for entry in self._backlog:
            writer.append(entry)
        self._backlog.clear()
        return writer


    async def flush(self) -> None:
        """Write what was recorded so far (the child may be continued: not closed yet)."""
        await self.ready()
        if self._writer is not None and not self._closed:
            await self._writer.flush()


def sidechain_dir(parent: SessionRecorder) -> Path:
    return parent.store.layout.session_dir(parent.workspace, parent.session_id) / "subagents"


def open_sidechain(parent: SessionRecorder | None, agent_id: str, agent_type: AgentType,
                   prompt: str, about: dict[str, Any] | None = None) -> SidechainRecorder | None:
    """Start a child's transcript (opened in the background); None when the session is not
    saved. ``about``: who the child is (``agentType``, ``name``, ``description``,
    ``isolated``), its first entry."""
    if parent is None:
        return None
    recorder = SidechainRecorder(parent, agent_id, agent_type)
    recorder.open_new()
    if about is not None:
        recorder.append({"type": "subagent", **about})
    recorder.expect_prompt(prompt, "user", None)
    return recorder


@dataclass
class SavedChild:
    """A child of a resumed session, read back from its transcript."""

    agent_id: str
    agent_type: str
    name: str | None
    description: str
    prompt: str
    model: str | None
    messages: list[dict[str, Any]]
    isolated: bool
    recorder: SidechainRecorder  # goes on with its transcript (opened in the background)


async def saved_children(parent: SessionRecorder, newest: int) -> list[SavedChild]:
    """The ``newest`` children of the session whose transcripts say who they are, oldest
    first; an unreadable transcript is skipped (logged)."""
    folder = sidechain_dir(parent)
    files = await asyncio.to_thread(_newest_files, folder, newest)
    found = []
    for path in files:
        try:
            reader = await asyncio.to_thread(load_transcript, path)
            child = await asyncio.to_thread(_child_of, parent, reader)
        except Exception as exc:  # one damaged transcript must not stop the resume
            log.warning("subagent transcript %s is not resumed: %s", path, exc)
            continue
        if child is not None:
            found.append(child)
    return found


def _newest_files(folder: Path, newest: int) -> list[Path]:
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    return files[-newest:]


def _child_of(parent: SessionRecorder, reader: TranscriptReader) -> SavedChild | None:
    about = next((e for e in reader.entries if e.get("type") == "subagent"), None)
    if about is None or not isinstance(about.get("agentType"), str):
        return None  # written before children said who they are
    turns = reader.turns()
    state = reader.writer_state()
    recorder = SidechainRecorder(parent, reader.session_id, about["agentType"], resume=state)
    recorder.model = reader.model() or ""
    return SavedChild(
        agent_id=reader.session_id, agent_type=about["agentType"], name=about.get("name"),
        description=str(about.get("description") or about["agentType"]),
        prompt=(turns[0].prompt if turns else "") or "(resumed)", model=reader.model(),
        messages=reader.messages(), isolated=bool(about.get("isolated")), recorder=recorder)


async def restore_children(delegation: Delegation, tool: AgentTool,
                           parent: SessionRecorder | None) -> list[str]:
    """Give a resumed session its children back, so SendMessage can continue them. A child
    that worked in a git worktree is not (its worktree ended with it), nor one whose agent
    type no longer exists. Returns the agent ids restored."""
    if parent is None:
        return []
    restored = []
    for saved in await saved_children(parent, MAX_KEPT_AGENTS):
        agent_type = delegation.catalog.get(saved.agent_type)
        if agent_type is None or saved.isolated:
            continue
        try:
            args = AgentInput(description=saved.description[:200], prompt=saved.prompt,
                              subagent_type=saved.agent_type, name=saved.name,
                              model=saved.model)
        except ValidationError as exc:
            log.warning("subagent %s is not resumed: %s", saved.agent_id, exc)
            continue
        saved.recorder.open_new()
        delegation.keep(Child.resumed(tool, agent_type, saved.agent_id, args, saved.messages,
                                      saved.recorder))
        restored.append(saved.agent_id)
    return restored
