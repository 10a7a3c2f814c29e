"""Which MCP servers a workspace configures, and which of them may start.

Looked up (first definition of a name wins, the others are reported as shadowed):

* local: ``mcpServers`` in ``.lsp-agent/settings.local.json`` / ``.claude/settings.local.json``
  and Claude Code's per-project entry in ``~/.claude.json`` -- the user's own files;
* project: ``.mcp.json`` and ``mcpServers`` in ``.lsp-agent/settings.json`` /
  ``.claude/settings.json`` -- files that come with a cloned repository;
* user: ``mcpServers`` in the user settings and in ``~/.claude.json``;
* plugins: a plugin's ``.mcp.json`` (enabled plugins only, see plugins.py).

Trust: a project server starts only when the user approved it (once, remembered in the local
settings' ``enabledMcpjsonServers``) or a user/local/managed/editor setting allows it
(``enableAllProjectMcpServers``, ``enabledMcpjsonServers``; ``disabledMcpjsonServers`` wins).
Project settings never approve anything: the repository would be approving itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lsp_agent.extensions.expand import expand_all
from lsp_agent.permissions.local_settings import remember_in_local_settings
from lsp_agent.permissions.settings import candidate_files, read_json_object

Transport = Literal["stdio", "http", "sse"]
TrustState = Literal["approved", "needs_approval", "disabled"]
MAX_CONFIG_BYTES = 1_000_000
# Claude Code's spellings of the transports, and ours.
TRANSPORTS: dict[str, Transport] = {"stdio": "stdio", "http": "http", "streamable-http": "http",
                                    "streamableHttp": "http", "sse": "sse"}
TRUSTED_SCOPES = frozenset({"user", "local", "plugin", "options"})
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ServerSpec:
    name: str  # as the tools are named: mcp__<name>__<tool>
    scope: str  # local, project, user, plugin, options
    source: str  # the file that defined it
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    startup: Literal["session", "lazy"] = "session"
    error: str | None = None  # a definition that cannot start (unknown transport, ...)

    @property
    def shown(self) -> str:
        """The command line or URL, as the user approves it (never env or headers: secrets)."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args]).strip()
        return f"{self.url} ({self.transport})"


@dataclass
class McpTrust:
    enable_all: bool = False
    enabled: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)

    def state(self, spec: ServerSpec, approved_now: set[str] | None = None) -> TrustState:
        if spec.scope in TRUSTED_SCOPES:
            return "approved"
        if spec.name in self.disabled:
            return "disabled"
        if self.enable_all or spec.name in self.enabled or spec.name in (approved_now or set()):
            return "approved"
        return "needs_approval"


@dataclass
class McpConfig:
    servers: dict[str, ServerSpec] = field(default_factory=dict)
    trust: McpTrust = field(default_factory=McpTrust)
    warnings: list[str] = field(default_factory=list)


def server_name(raw: str) -> str:
    """A configured name as tool names allow it (letters, digits, _ and -)."""
    return _NAME_CHARS.sub("_", raw)[:40] or "server"


def claude_json_path() -> Path:
    return Path(os.environ.get("HOME") or Path.home()) / ".claude.json"


def load_mcp_config(workspace: Path, options: dict[str, Any] | None = None,
                    env: Mapping[str, str] | None = None,
                    extra: list[tuple[str, Path, dict[str, Any]]] | None = None) -> McpConfig:
    """Every server the workspace's files define, with the trust settings that apply.
    ``extra``: (scope, source file, ``mcpServers`` object) from plugins."""
    env = os.environ if env is None else env
    config = McpConfig()
    settings_files = [(scope, path, _read_json(path, config.warnings))
                      for scope, path in candidate_files(workspace)]
    claude = _read_json(claude_json_path(), config.warnings) or {}
    project_entry = (claude.get("projects") or {}).get(str(workspace)) \
        if isinstance(claude.get("projects"), dict) else None
    definitions: list[tuple[str, Path, Any]] = []
    if options and "mcpServers" in options:
        definitions.append(("options", Path("<editor settings>"), options["mcpServers"]))
    definitions += [(scope, path, data.get("mcpServers")) for scope, path, data in
                    settings_files if data and scope == "local"]
    if isinstance(project_entry, dict):
        definitions.append(("local", claude_json_path(), project_entry.get("mcpServers")))
    mcp_json = workspace / ".mcp.json"
    definitions.append(("project", mcp_json, (_read_json(mcp_json, config.warnings) or {})
                        .get("mcpServers")))
    definitions += [(scope, path, data.get("mcpServers")) for scope, path, data in
                    settings_files if data and scope == "project"]
    definitions += [(scope, path, data.get("mcpServers")) for scope, path, data in
                    settings_files if data and scope == "user"]
    definitions.append(("user", claude_json_path(), claude.get("mcpServers")))
    definitions += [(scope, path, servers) for scope, path, servers in extra or []]
    for scope, path, servers in definitions:
        _add_servers(config, scope, path, servers, env, workspace)
    trusted = [data for scope, _, data in settings_files if data and scope != "project"]
    if options:
        trusted.insert(0, options)
    if isinstance(project_entry, dict):
        trusted.append(project_entry)
    config.trust = _trust(trusted)
    return config


def _add_servers(config: McpConfig, scope: str, path: Path, servers: Any,
                 env: Mapping[str, str], workspace: Path) -> None:
    if servers is None:
        return
    if not isinstance(servers, dict):
        config.warnings.append(f"{path}: 'mcpServers' must be an object; ignored")
        return
    for raw_name, raw in servers.items():
        name = server_name(str(raw_name))
        if name in config.servers:
            config.warnings.append(f"{path}: MCP server {raw_name!r} is also defined in "
                                   f"{config.servers[name].source}, which takes precedence")
            continue
        config.servers[name] = parse_server(name, scope, str(path), raw, env, workspace,
                                            config.warnings)


def parse_server(name: str, scope: str, source: str, raw: Any, env: Mapping[str, str],
                 workspace: Path, warnings: list[str]) -> ServerSpec:
    """One server's definition; a broken one is kept with its ``error`` (shown in status)."""
    def broken(why: str) -> ServerSpec:
        warnings.append(f"{source}: MCP server {name!r}: {why}")
        return ServerSpec(name, scope, source, "stdio", error=why)

    if not isinstance(raw, dict):
        return broken("its definition must be an object")
    kind = raw.get("type") or raw.get("transport") or ("stdio" if "command" in raw else
                                                       "http" if "url" in raw else None)
    transport = TRANSPORTS.get(str(kind)) if kind is not None else None
    if transport is None:
        return broken(f"unknown transport {kind!r} (expected stdio, http or sse)"
                      if kind is not None else "neither 'command' nor 'url' is given")
    missing: list[str] = []
    data = expand_all(raw, env, missing)
    if missing:
        warnings.append(f"{source}: MCP server {name!r}: environment variable(s) "
                        f"{', '.join(sorted(set(missing)))} not set (expanded to empty)")
    startup: Literal["session", "lazy"] = "lazy" if data.get("startup") == "lazy" else "session"
    try:
        if transport == "stdio":
            command, args = data.get("command"), data.get("args") or []
            if not isinstance(command, str) or not command:
                return broken("'command' must be a non-empty string")
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                return broken("'args' must be a list of strings")
            cwd = data.get("cwd")
            return ServerSpec(name, scope, source, transport, command=command, args=tuple(args),
                              env=_string_map(data.get("env"), "env"),
                              cwd=str(workspace / cwd) if isinstance(cwd, str) else str(workspace),
                              startup=startup)
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return broken("'url' must be an http(s) URL")
        return ServerSpec(name, scope, source, transport, url=url,
                          headers=_string_map(data.get("headers"), "headers"), startup=startup)
    except ValueError as exc:
        return broken(str(exc))


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"'{what}' must be an object of strings")
    return {str(k): v for k, v in value.items()}


def _trust(sources: list[dict[str, Any]]) -> McpTrust:
    trust = McpTrust()
    for data in sources:
        if data.get("enableAllProjectMcpServers") is True:
            trust.enable_all = True
        for key, target in (("enabledMcpjsonServers", trust.enabled),
                            ("disabledMcpjsonServers", trust.disabled)):
            names = data.get(key)
            if isinstance(names, list):
                target.update(server_name(n) for n in names if isinstance(n, str))
    return trust


def _read_json(path: Path, warnings: list[str]) -> dict[str, Any] | None:
    return read_json_object(path, warnings, MAX_CONFIG_BYTES, unreadable="not valid JSON")


def record_approval(workspace: Path, name: str) -> Path:
    """Remember that the user approved the project server ``name`` for this workspace: added
    to ``enabledMcpjsonServers`` in the local settings (never committed: gitignored)."""
    return remember_in_local_settings(workspace, "enabledMcpjsonServers", [name])
