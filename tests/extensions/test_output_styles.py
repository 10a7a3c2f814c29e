"""Output styles: files in Claude Code's format, chosen by ``outputStyle`` or /output-style, in
the system prompt after the cached static layer. A real Session, the real SDK against the
scripted model server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.extensions.output_styles import load_styles
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.settings import local_settings_path, user_settings_path
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments

WAIT = 60.0
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")
TEACHER = ("---\nname: Teacher\ndescription: Explains as it works\n"
           "keep-coding-instructions: true\n---\nExplain each change in one sentence (TEACH).\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_session(server: ScriptedModelServer, ws: Path, events: list[ev.AgentEvent]) -> Session:
    settings = ModelSettings(model="claude-sonnet-4-5", fallback_model=None, api_key="k",
                             base_url=server.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    config = SessionConfig(workspace=ws, settings=settings, state_dir=ws.parent / "state",
                           user_memory_dirs=[])
    return Session(config, model=ModelService(settings, client), tools=default_pool(),
                   documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                   applier=None, sink=events.append, asker=None)  # type: ignore[arg-type]


def system_text(body: dict[str, Any]) -> str:
    return json.dumps(body["system"])


def test_styles_are_read_with_their_faults_reported(tmp_path: Path) -> None:
    user, project = tmp_path / "user", tmp_path / "project"
    write(user / "teacher.md", TEACHER)
    write(project / "teacher.md", "---\nname: Teacher\n---\nProject version.\n")
    write(project / "terse.md", "Answer in at most three lines.\n")  # no frontmatter: stem
    write(project / "empty.md", "---\nname: Empty\n---\n")
    write(project / "bad.md", "---\nname: [unclosed\n---\nx\n")
    warnings: list[str] = []
    styles = load_styles([("user", user), ("project", project)], warnings)
    assert sorted(styles) == ["Teacher", "terse"]
    teacher = styles["Teacher"]
    assert teacher.source == "user" and teacher.keep_coding_instructions
    assert teacher.description == "Explains as it works"
    assert styles["terse"].prompt == "Answer in at most three lines."
    assert any("empty.md" in w for w in warnings) and any("bad.md" in w for w in warnings)


async def test_the_configured_style_is_in_the_system_prompt_after_the_static_layer(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / ".claude" / "output-styles" / "teacher.md", TEACHER)
    write(local_settings_path(ws), json.dumps({"outputStyle": "Teacher"}))
    model.load({"turns": [{"content": "ok"}, {"content": "ok"}]})
    session = make_session(model, ws, [])
    try:
        await asyncio.wait_for(session.prompt("hi"), WAIT)
    finally:
        await session.close()
    system = model.requests[0]["system"]
    assert "cache_control" in system[0] and "TEACH" not in system[0]["text"]
    assert system[-1]["text"].startswith('<output-style name="Teacher">')
    assert "TEACH" in system[-1]["text"] and "cache_control" not in system[-1]


async def test_output_style_command_switches_and_lists(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(user_settings_path().parent / "output-styles" / "teacher.md", TEACHER)
    model.load({"turns": [{"content": "ok"}, {"content": "ok"}]})
    events: list[ev.AgentEvent] = []
    session = make_session(model, ws, events)
    try:
        await asyncio.wait_for(session.prompt("one"), WAIT)
        await asyncio.wait_for(session.prompt("/output-style"), WAIT)
        listing = [e for e in events if isinstance(e, ev.TextDelta)][-1].text
        assert "Output style: default" in listing and "Teacher: Explains as it works" in listing
        await asyncio.wait_for(session.prompt("/output-style Teacher"), WAIT)
        await asyncio.wait_for(session.prompt("two"), WAIT)
        ended = await asyncio.wait_for(session.prompt("/output-style nosuch"), WAIT)
    finally:
        await session.close()
    assert "TEACH" not in system_text(model.requests[0])
    assert "TEACH" in system_text(model.requests[1])
    # The cached prefix (static layer) is byte-identical across the change.
    assert model.requests[0]["system"][0] == model.requests[1]["system"][0]
    assert ended.stop_reason == "error" and len(model.requests) == 2
    error = [e for e in events if isinstance(e, ev.ErrorEvent)][-1]
    assert "unknown output style" in error.message and "Teacher" in error.message


async def test_an_unknown_configured_style_is_a_warning(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(local_settings_path(ws), json.dumps({"outputStyle": "Pirate"}))
    session = make_session(model, ws, [])
    try:
        assert session.extensions.output_style is None
        assert any("outputStyle 'Pirate'" in w for w in session.safety.warnings)
    finally:
        await session.close()
