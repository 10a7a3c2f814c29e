"""A subagent's transcript: ``<sessionId>/subagents/<agentId>.jsonl`` next to the parent's.

The same entries as a session's transcript (the child's conversation through its observer,
usage and errors from its events), written by the store's writer, so the redactor masks
secrets in it too and retention deletes it with the session's folder. Nothing reads it back
yet: it is the record of what a child did (its prompt, tool calls and results). It stays open
while the child may be continued (SendMessage) and is closed with the session.
"""

from __future__ import annotations

import asyncio
import logging

from lsp_agent.context.agents import AgentType
from lsp_agent.sessions.recorder import SessionRecorder
from lsp_agent.store.writer import TranscriptWriter, open_writer

log = logging.getLogger(__name__)


class SidechainRecorder(SessionRecorder):
    def __init__(self, parent: SessionRecorder, agent_id: str, agent_type: AgentType):
        super().__init__(parent.store, parent.workspace, agent_id, parent.report)
        self.path = (parent.store.layout.session_dir(parent.workspace, parent.session_id)
                     / "subagents" / f"{agent_id}.jsonl")
        self.agent_type = agent_type.name

    async def _open(self) -> TranscriptWriter | None:
        try:
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            writer = await open_writer(self.path, self.session_id, cwd=str(self.workspace),
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


def open_sidechain(parent: SessionRecorder | None, agent_id: str, agent_type: AgentType,
                   prompt: str) -> SidechainRecorder | None:
    """Start a child's transcript (opened in the background); None when the session is not
    saved."""
    if parent is None:
        return None
    recorder = SidechainRecorder(parent, agent_id, agent_type)
    recorder.open_new()
    recorder.expect_prompt(prompt, "user", None)
    return recorder
