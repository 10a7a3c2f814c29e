"""A skill's ``model``: the requests after the skill is loaded (by the model or by /name) use
it, until the turn ends. A real Session, the real SDK against the scripted model server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import pytest

from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

WAIT = 60.0
MAIN, SKILL_MODEL = "claude-sonnet-4-5", "claude-haiku-4-5"
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")


@pytest.fixture
def session(model: ScriptedModelServer, tmp_path: Path):
    ws = tmp_path / "ws"
    skill = ws / ".claude" / "skills" / "quick" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text(f"---\nname: quick\ndescription: Quick answers\nmodel: {SKILL_MODEL}\n"
                     "---\nAnswer quickly.\n")
    settings = ModelSettings(model=MAIN, fallback_model=None, api_key="k",
                             base_url=model.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=model.base_url, max_retries=0)
    return Session(SessionConfig(workspace=ws, settings=settings, state_dir=tmp_path / "state",
                                 user_memory_dirs=[]),
                   model=ModelService(settings, client), tools=default_pool(),
                   documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                   applier=None, sink=lambda _e: None, asker=None)  # type: ignore[arg-type]


async def test_the_model_loading_a_skill_switches_for_the_turn(model, session) -> None:
    model.load({"sequencing": "sequential", "turns": [
        {"content": [{"type": "tool_use", "name": "Skill", "input": {"skill": "quick"}}]},
        {"content": "quick answer"}, {"content": "next"}]})
    try:
        await asyncio.wait_for(session.prompt("help"), WAIT)
        await asyncio.wait_for(session.prompt("again"), WAIT)
    finally:
        await session.close()
    assert [r["model"] for r in model.requests] == [MAIN, SKILL_MODEL, MAIN]


async def test_the_user_invoking_a_skill_switches_for_the_turn(model, session) -> None:
    model.load({"sequencing": "sequential", "turns": [{"content": "a"}, {"content": "b"}]})
    try:
        await asyncio.wait_for(session.prompt("/quick now"), WAIT)
        await asyncio.wait_for(session.prompt("plain"), WAIT)
    finally:
        await session.close()
    assert [r["model"] for r in model.requests] == [SKILL_MODEL, MAIN]
    assert session.agent.model == MAIN
