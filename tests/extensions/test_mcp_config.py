"""MCP configuration: where servers are defined, ${VAR} expansion, broken definitions, and
who may approve a project server (never the project itself)."""

from __future__ import annotations

import json
from pathlib import Path

from lsp_agent.extensions.expand import expand
from lsp_agent.extensions.mcp_config import load_mcp_config, record_approval
from lsp_agent.permissions.settings import user_settings_path


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_expansion_with_defaults_and_missing_names() -> None:
    missing: list[str] = []
    env = {"A": "1", "EMPTY": ""}
    assert expand("${A}-${B:-two}-${EMPTY:-d}-${C}", env, missing) == "1-two-d-"
    assert missing == ["C"]
    assert expand("$A ${A", env) == "$A ${A"  # not the syntax: left as written


def test_mcp_json_servers_are_expanded_and_need_approval(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", {"mcpServers": {
        "files": {"command": "${TOOL_BIN:-npx}", "args": ["--root", "${HOME_DIR}"],
                  "env": {"TOKEN": "${TOKEN}"}},
        "web": {"type": "http", "url": "https://example.test/${PATH_PART:-mcp}",
                "headers": {"Authorization": "Bearer ${TOKEN}"}}}})
    config = load_mcp_config(tmp_path, env={"HOME_DIR": "/h", "TOKEN": "t0k"})
    files, web = config.servers["files"], config.servers["web"]
    assert (files.command, files.args, dict(files.env)) == ("npx", ("--root", "/h"),
                                                             {"TOKEN": "t0k"})
    assert (web.transport, web.url, dict(web.headers)) == (
        "http", "https://example.test/mcp", {"Authorization": "Bearer t0k"})
    assert files.scope == "project"
    assert config.trust.state(files) == "needs_approval"
    assert "t0k" not in files.shown + web.shown  # what the user approves shows no secrets


def test_broken_definitions_are_reported_not_fatal(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", {"mcpServers": {
        "odd": {"type": "websocket", "url": "ws://x"}, "empty": {}, "ok": {"command": "srv"},
        "badargs": {"command": "x", "args": "not a list"}}})
    config = load_mcp_config(tmp_path, env={})
    assert "unknown transport 'websocket'" in (config.servers["odd"].error or "")
    assert config.servers["empty"].error and config.servers["badargs"].error
    assert config.servers["ok"].error is None
    assert sum("MCP server" in w for w in config.warnings) == 3


def test_invalid_mcp_json_is_a_warning_and_defines_nothing(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", "{not json")
    config = load_mcp_config(tmp_path, env={})
    assert config.servers == {}
    assert any(".mcp.json: not valid JSON" in w for w in config.warnings)


def test_project_settings_cannot_approve_their_own_servers(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", {"mcpServers": {"a": {"command": "a"}, "b": {"command": "b"}}})
    write(tmp_path / ".claude" / "settings.json", {"enableAllProjectMcpServers": True,
                                                   "enabledMcpjsonServers": ["a", "b"]})
    config = load_mcp_config(tmp_path, env={})
    assert {config.trust.state(s) for s in config.servers.values()} == {"needs_approval"}


def test_user_and_local_settings_approve_and_disable(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", {"mcpServers": {n: {"command": n} for n in "abc"}})
    write(tmp_path / ".lsp-agent" / "settings.local.json", {"enabledMcpjsonServers": ["a"],
                                                           "disabledMcpjsonServers": ["c"]})
    write(user_settings_path(), {"enableAllProjectMcpServers": True})
    config = load_mcp_config(tmp_path, env={})
    states = {n: config.trust.state(s) for n, s in config.servers.items()}
    assert states == {"a": "approved", "b": "approved", "c": "disabled"}


def test_settings_servers_precedence_local_over_project_over_user(tmp_path: Path) -> None:
    write(user_settings_path(), {"mcpServers": {"x": {"command": "user-x"},
                                                "u": {"command": "user-u"}}})
    write(tmp_path / ".mcp.json", {"mcpServers": {"x": {"command": "project-x"}}})
    write(tmp_path / ".claude" / "settings.local.json",
          {"mcpServers": {"x": {"command": "local-x"}}})
    config = load_mcp_config(tmp_path, env={})
    assert config.servers["x"].command == "local-x"
    assert config.servers["u"].scope == "user"
    assert config.trust.state(config.servers["u"]) == "approved"  # the user's own server
    assert sum("takes precedence" in w for w in config.warnings) == 2


def test_approval_is_recorded_in_the_local_settings(tmp_path: Path) -> None:
    write(tmp_path / ".mcp.json", {"mcpServers": {"a": {"command": "a"}}})
    path = record_approval(tmp_path, "a")
    assert path == tmp_path / ".lsp-agent" / "settings.local.json"
    assert (tmp_path / ".lsp-agent" / ".gitignore").read_text() == "settings.local.json\n"
    config = load_mcp_config(tmp_path, env={})
    assert config.trust.state(config.servers["a"]) == "approved"


def test_editor_options_define_and_approve_servers(tmp_path: Path) -> None:
    from lsp_agent.server.protocol import InitializationOptions

    write(tmp_path / ".mcp.json", {"mcpServers": {"proj": {"command": "p"}}})
    options = InitializationOptions.model_validate({
        "mcpServers": {"mine": {"command": "m"}}, "enabledMcpjsonServers": ["proj"]},
    ).safety_options()
    config = load_mcp_config(tmp_path, options, env={})
    assert config.servers["mine"].scope == "options"
    assert {n: config.trust.state(s) for n, s in config.servers.items()} == {
        "mine": "approved", "proj": "approved"}
