"""Skills, custom commands, plugins and slash commands: the files users bring, loaded with
their faults reported, and a real Session (scripted model over real HTTP) showing what the
model receives."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest

from lsp_agent.extensions.commands import include_files, load_commands, substitute_arguments
from lsp_agent.extensions.frontmatter import FrontmatterError, split, tool_list
from lsp_agent.extensions.plugins import load_plugins
from lsp_agent.extensions.skills import load_skills, skill_roots
from lsp_agent.model.client import ModelSettings
from lsp_agent.model.service import ModelService
from lsp_agent.permissions.secrets import DEFAULT_RULES
from lsp_agent.permissions.settings import user_settings_path
from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.sessions.commands import list_commands
from lsp_agent.sessions.session import Session, SessionConfig
from lsp_agent.tools.pool import default_pool
from lsp_agent.types import events as ev
from lsp_agent.types.permissions import PermissionAnswer
from lsp_agent.workspace.diagnostics import DiagnosticsStore
from lsp_agent.workspace.documents import DiskDocuments
from tests.extensions.helpers import SERVER

MODEL = "claude-sonnet-4-5"
WAIT = 60.0
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def skill(root: Path, folder: str, front: str, body: str = "Do the thing.") -> Path:
    return write(root / folder / "SKILL.md", f"---\n{front}\n---\n{body}\n")


# -- frontmatter -------------------------------------------------------------------------------

def test_frontmatter_subset() -> None:
    meta, body = split("---\nname: x\ndescription: \"a: b\"\nflag: true\nn: 3\n"
                       "tools: [Read, \"Bash(git add:*, x)\"]\nlist:\n  - a\n  - b\n"
                       "long: |\n  one\n  two\n---\n\nBody\n")
    assert meta == {"name": "x", "description": "a: b", "flag": True, "n": 3,
                    "tools": ["Read", "Bash(git add:*, x)"], "list": ["a", "b"],
                    "long": "one\ntwo"}
    assert body == "Body"
    assert split("no frontmatter") == ({}, "no frontmatter")
    assert tool_list("Bash(git add:*), Read, Grep") == ["Bash(git add:*)", "Read", "Grep"]
    for bad in ("---\nname x\n---\n", "---\nname: x\n", "---\ntools: {a: 1}\n---\n"):
        with pytest.raises(FrontmatterError):
            split(bad)


# -- skills ------------------------------------------------------------------------------------

def test_skills_nested_missing_duplicates_and_bad_frontmatter(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    project = ws / ".claude" / "skills"
    skill(project, "deploy", "name: deploy\ndescription: Deploy the app\n"
          "allowed-tools: Bash(make deploy:*), Read\nargument-hint: <env>")
    skill(project, "group/nested", "description: A nested skill")
    (project / "empty").mkdir(parents=True)
    write(project / "broken" / "SKILL.md", "---\nname: broken\nthis is not yaml\n---\nx")
    skill(project, "hidden", "name: hidden\ndescription: Only for users\n"
          "disable-model-invocation: true")
    user = Path(str(user_settings_path())).parent / "skills"
    skill(user, "deploy", "name: deploy\ndescription: The user's own deploy")
    warnings: list[str] = []
    skills = load_skills(skill_roots(ws), warnings)
    assert set(skills) == {"deploy", "nested", "hidden"}
    assert skills["deploy"].description == "The user's own deploy"  # user level wins
    assert skills["nested"].folder == project / "group" / "nested"
    assert not skills["hidden"].model_invocable
    assert any("empty: no SKILL.md" in w for w in warnings)
    assert any("broken/SKILL.md" in w and "not loaded" in w for w in warnings)
    assert any("already defined" in w and str(user) in w for w in warnings)


# -- custom commands ---------------------------------------------------------------------------

def test_command_arguments_and_includes(tmp_path: Path) -> None:
    assert substitute_arguments("Fix $1 in $2 ($ARGUMENTS)", 'bug "my file.py"') == \
        'Fix bug in my file.py (bug "my file.py")'
    assert substitute_arguments("No placeholders", "extra words") == \
        "No placeholders\n\nARGUMENTS: extra words"
    write(tmp_path / "src" / "a.py", "print('a')\n")
    write(tmp_path / ".env", "API_KEY=sk-live-123\n")
    text = include_files("See @src/a.py and @.env and @../x.txt, mail me@example.com",
                         tmp_path, DEFAULT_RULES)
    assert "print('a')" in text
    assert "sk-live-123" not in text and "@.env (not included: a secret file)" in text
    assert "outside the workspace" in text
    assert "me@example.com" in text


def test_commands_load_with_namespaces_and_bad_frontmatter(tmp_path: Path) -> None:
    root = tmp_path / ".claude" / "commands"
    write(root / "review.md", "---\ndescription: Review a file\nargument-hint: <file>\n"
          "allowed-tools: Bash(git diff:*)\n---\nReview $ARGUMENTS")
    write(root / "fe" / "component.md", "Make a component")
    write(root / "bad.md", "---\ndescription: [unclosed\n---\nx")
    warnings: list[str] = []
    commands = load_commands([("project", root)], warnings)
    assert set(commands) == {"review", "fe:component"}
    assert commands["review"].allowed_tools == ["Bash(git diff:*)"]
    assert commands["fe:component"].description == "Make a component"
    assert any("bad.md" in w for w in warnings)


# -- plugins -----------------------------------------------------------------------------------

def test_plugins_valid_broken_and_not_enabled(tmp_path: Path) -> None:
    good = tmp_path / "good"
    write(good / ".claude-plugin" / "plugin.json", json.dumps(
        {"name": "good-tools", "version": "1.0.0", "description": "d"}))
    write(good / ".mcp.json", json.dumps({"mcpServers": {"srv": {
        "command": "${CLAUDE_PLUGIN_ROOT}/bin/server", "args": ["--x"]}}}))
    bad = tmp_path / "bad"
    write(bad / ".claude-plugin" / "plugin.json", json.dumps({"name": "Not Valid"}))
    notjson = tmp_path / "notjson"
    write(notjson / ".claude-plugin" / "plugin.json", "{")
    warnings: list[str] = []
    plugins = load_plugins(tmp_path, None, [good, bad, notjson], warnings)
    assert [p.name for p in plugins] == ["good-tools"]
    assert plugins[0].mcp_servers == {"good-tools_srv": {"command": f"{good}/bin/server",
                                                         "args": ["--x"]}}
    assert sum("invalid plugin manifest" in w for w in warnings) == 2
    # Under the project's plugin folder, a plugin loads only when trusted settings enable it.
    ws = tmp_path / "ws"
    project_plugin = ws / ".lsp-agent" / "plugins" / "p"
    write(project_plugin / ".claude-plugin" / "plugin.json", json.dumps({"name": "p"}))
    write(ws / ".lsp-agent" / "settings.json", json.dumps({"enabledPlugins": {"p": True}}))
    assert load_plugins(ws, None, [], []) == []
    write(ws / ".lsp-agent" / "settings.local.json", json.dumps({"enabledPlugins": {"p": True}}))
    assert [p.name for p in load_plugins(ws, None, [], [])] == ["p"]


# -- a real session ----------------------------------------------------------------------------

class Sink:
    def __init__(self) -> None:
        self.all: list[ev.AgentEvent] = []

    def __call__(self, event: ev.AgentEvent) -> None:
        self.all.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.all if isinstance(e, kind)]


def make_session(server: ScriptedModelServer, ws: Path, sink: Sink,
                 asker: Any = None, options: dict[str, Any] | None = None) -> Session:
    settings = ModelSettings(model=MODEL, fallback_model=None, api_key="k",
                             base_url=server.base_url, backoff_base=0.01)
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    config = SessionConfig(workspace=ws, settings=settings, state_dir=ws.parent / "state",
                           user_memory_dirs=[], safety_options=options)
    return Session(config, model=ModelService(settings, client), tools=default_pool(),
                   documents=DiskDocuments(), diagnostics=DiagnosticsStore(),
                   applier=None, sink=sink, asker=asker)  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    skill(ws / ".claude" / "skills", "release",
          "name: release\ndescription: Cut a release of the project\n"
          "allowed-tools: Bash(touch released)", body="SECRET-BODY: run the release steps.")
    write(ws / ".claude" / "commands" / "fix.md",
          "---\ndescription: Fix an issue\n---\nPlease fix issue $1 ($ARGUMENTS). "
          "Status: !`echo snippet-ran`")
    return ws


async def test_skill_description_in_request_body_in_result_and_grants(
        model: ScriptedModelServer, ws: Path) -> None:
    """A user-level skill the model invokes pre-approves its allowed-tools for the turn."""
    user = Path(str(user_settings_path())).parent / "skills"
    skill(user, "tidy", "name: tidy\ndescription: Tidy the workspace\n"
          "allowed-tools: Bash(touch tidied), Bash", body="TIDY-BODY")
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Skill", "input": {"skill": "tidy"}}]},
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "touch tidied"}}]},
        {"content": "done"}]})
    sink = Sink()
    asked: list[Any] = []

    async def asker(event: Any) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("deny")

    session = make_session(model, ws, sink, asker)
    ended = await asyncio.wait_for(session.prompt("tidy up"), WAIT)
    assert ended.stop_reason == "end_turn"
    first = model.requests[0]
    skill_tool = next(t for t in first["tools"] if t["name"] == "Skill")
    assert "release: Cut a release of the project" in skill_tool["description"]
    assert "tidy: Tidy the workspace" in skill_tool["description"]
    assert "SECRET-BODY" not in json.dumps(first) and "TIDY-BODY" not in json.dumps(first)
    result = sink.of(ev.ToolResult)[0]
    assert "TIDY-BODY" in result.content and str(user / "tidy") in result.content
    assert asked == [] and (ws / "tidied").exists()  # allowed-tools pre-approved it
    assert session.gate.session_rules == set()  # ... for that turn only; "Bash" never


async def test_project_skill_cannot_grant_itself_permissions(
        model: ScriptedModelServer, ws: Path) -> None:
    """The model invoking a repository's skill is not the user's consent: its allowed-tools
    are ignored; the user typing /release is, and they apply for that turn."""
    model.load({"turns": [
        {"content": [{"type": "tool_use", "name": "Skill", "input": {"skill": "release"}}]},
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "touch released"}}]},
        {"content": "done"},
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "touch released"}}]},
        {"content": "done"}]})
    sink = Sink()
    asked: list[Any] = []

    async def asker(event: Any) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("deny")

    session = make_session(model, ws, sink, asker)
    await asyncio.wait_for(session.prompt("release it"), WAIT)
    assert [a.input for a in asked] == [{"command": "touch released"}]
    assert not (ws / "released").exists()
    assert any("project skill invoked by the model" in w for w in session.extensions.warnings)
    await asyncio.wait_for(session.prompt("/release"), WAIT)
    assert "SECRET-BODY" in json.dumps(model.requests[-2]["messages"])
    assert len(asked) == 1 and (ws / "released").exists()


async def test_custom_command_expanded_with_snippet_and_unknown_command(
        model: ScriptedModelServer, ws: Path) -> None:
    model.load({"turns": [{"content": "ok"}]})
    sink = Sink()
    session = make_session(model, ws, sink, asker=None)
    session.set_mode("bypassPermissions")
    ended = await asyncio.wait_for(session.prompt("/fix 42 quickly"), WAIT)
    assert ended.stop_reason == "end_turn"
    text = json.dumps(model.requests[0]["messages"])
    assert "Please fix issue 42 (42 quickly). Status: snippet-ran" in text
    before = len(model.requests)
    ended = await asyncio.wait_for(session.prompt("/nosuch thing"), WAIT)
    assert ended.stop_reason == "error" and len(model.requests) == before
    assert "Unknown command /nosuch" in sink.of(ev.ErrorEvent)[-1].message
    names = {c["name"]: c["source"] for c in list_commands(session)}
    assert names["fix"] == "project" and names["release"] == "skill:project"
    assert names["help"] == "builtin"


async def test_snippet_needs_permission_like_a_bash_call(
        model: ScriptedModelServer, ws: Path) -> None:
    model.load({"turns": [{"content": "ok"}]})
    write(ws / ".claude" / "commands" / "wipe.md", "Result: !`rm -rf build`")
    (ws / "build").mkdir()
    asked: list[Any] = []

    async def deny(event: Any) -> PermissionAnswer:
        asked.append(event)
        return PermissionAnswer("deny")

    session = make_session(model, ws, Sink(), deny)
    await asyncio.wait_for(session.prompt("/wipe"), WAIT)
    assert [a.input for a in asked] == [{"command": "rm -rf build"}]
    assert (ws / "build").is_dir()
    assert "not run: the user said no" in json.dumps(model.requests[0]["messages"])


async def test_builtin_commands_answer_without_the_model(
        model: ScriptedModelServer, ws: Path) -> None:
    model.load({"turns": []})
    sink = Sink()
    session = make_session(model, ws, sink)
    await asyncio.wait_for(session.prompt("/mode plan"), WAIT)
    assert session.mode == "plan"
    await asyncio.wait_for(session.prompt("/help"), WAIT)
    help_text = sink.of(ev.TextDelta)[-1].text
    assert "/release" in help_text and "/fix" in help_text and "/mcp" in help_text
    await asyncio.wait_for(session.prompt("/mcp"), WAIT)
    assert "No MCP servers" in sink.of(ev.TextDelta)[-1].text
    assert model.requests == []
    model.load({"turns": [{"content": "ok"}]})
    await asyncio.wait_for(session.prompt("/usr/bin/python crashes"), WAIT)
    assert len(model.requests) == 1  # a path is not a command: it goes to the model


async def test_many_mcp_tools_are_deferred_behind_tool_search(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    write(user_settings_path(), json.dumps({"mcpServers": {"big": {
        "command": sys.executable, "args": [SERVER, "--tools", "500"]}}}))
    model.load({"turns": [{"content": "ok"}]})
    session = make_session(model, ws, Sink())
    await asyncio.wait_for(session.prompt("/mcp"), WAIT)  # starts the servers
    await session.extensions.mcp.wait_started(WAIT)
    try:
        assert session.extensions.mcp.status()[0]["tools"] == 508  # 8 fixed + 500
        schemas = session.tools.api_schemas()
        assert not any(s["name"].startswith("mcp__") for s in schemas)
        search = next(s for s in schemas if s["name"] == "ToolSearch")
        assert "mcp__big__* (508 tools" in search["description"]
        assert len(json.dumps(schemas)) < 30_000
        assert session.tools.get("mcp__big__t499") is not None
        assert [t.name for t in session.tools.search("select:mcp__big__t7", 3)] == \
            ["mcp__big__t7"]
    finally:
        await session.extensions.close()


async def test_doctor_memory_and_prompt_builtins(model: ScriptedModelServer, ws: Path) -> None:
    write(ws / ".mcp.json", json.dumps({"mcpServers": {"proj": {"command": "x"}}}))
    write(ws / "AGENTS.md", "Use tabs.")
    model.load({"turns": [{"content": "reviewed"}]})
    sink = Sink()
    session = make_session(model, ws, sink)
    await asyncio.wait_for(session.prompt("/doctor"), WAIT)
    report = sink.of(ev.TextDelta)[-1].text
    assert "model endpoint reachable" in report
    assert "MCP server proj waits for your approval" in report
    await asyncio.wait_for(session.prompt("/memory"), WAIT)
    assert f"loaded  {ws / 'AGENTS.md'}" in sink.of(ev.TextDelta)[-1].text
    await asyncio.wait_for(session.prompt("/review the parser"), WAIT)
    sent = json.dumps(model.requests[-1]["messages"])
    assert "Review the changes in the working tree" in sent and "Focus: the parser" in sent


async def test_mcp_prompts_are_commands_and_resources_are_mentions(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    write(user_settings_path(), json.dumps({"mcpServers": {"srv": {
        "command": sys.executable, "args": [SERVER]}}}))
    model.load({"turns": [{"content": "one"}, {"content": "two"}]})
    session = make_session(model, ws, Sink())
    session.extensions.on_prompt()
    await session.extensions.mcp.wait_started(WAIT)
    try:
        listed = {c["name"]: c for c in list_commands(session)}
        assert listed["mcp__srv__summarize"]["argumentHint"] == "<topic> [style]"
        await asyncio.wait_for(session.prompt("/mcp__srv__summarize rust very long"), WAIT)
        assert "Summarize rust in a very long way." in json.dumps(model.requests[-1])
        await asyncio.wait_for(session.prompt("Translate @srv:test://greeting please"), WAIT)
        sent = json.dumps(model.requests[-1]["messages"][-1])
        assert "RESOURCE-TEXT: hello from the server" in sent
        assert "Translate @srv:test://greeting please" in sent
    finally:
        await session.extensions.close()
