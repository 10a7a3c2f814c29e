"""Plugins: a folder with ``.claude-plugin/plugin.json`` bundling ``commands/``, ``skills/``,
``agents/``, ``hooks/hooks.json`` and ``.mcp.json``; its commands and skills are named
``<plugin>:<name>``, and so are its custom agents. ``${CLAUDE_PLUGIN_ROOT}`` in its MCP
definitions and hooks is the plugin's folder. Its hooks run like the user's own (the plugin is
enabled by the user), after those of the settings files.

Where plugins come from: folders under ``$XDG_CONFIG_HOME/lsp-agent/plugins/`` and
``.lsp-agent/plugins/`` (a plugin there loads only when ``enabledPlugins`` names it as
enabled), and folders given explicitly (``lsp-agent run --plugin-dir``, the editor's
``pluginDirs``), which load as given. A plugin whose manifest is broken is reported and
skipped. ``enabledPlugins`` in project settings alone does not enable a project plugin: like
MCP servers, the repository cannot switch on its own code; user, local or editor settings can.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions.settings import candidate_files

MANIFEST = Path(".claude-plugin") / "plugin.json"
_PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_MANIFEST_BYTES = 200_000


@dataclass
class Plugin:
    name: str
    root: Path
    version: str | None = None
    description: str | None = None
    mcp_servers: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)  # {event: [matchers]}, root expanded
    agent_dirs: list[Path] = field(default_factory=list)


def plugin_roots(workspace: Path) -> list[Path]:
    from lsp_agent.extensions.skills import user_dirs

    return [user_dirs("plugins")[0], workspace / ".lsp-agent" / "plugins"]


def enabled_plugins(workspace: Path, options: dict[str, Any] | None) -> dict[str, bool]:
    """``enabledPlugins`` ({"name" or "name@marketplace": bool}) from trusted sources."""
    enabled: dict[str, bool] = {}
    sources: list[Any] = [options or {}]
    for scope, path in candidate_files(workspace):
        if scope == "project":
            continue
        try:
            sources.append(json.loads(path.read_text()) if path.is_file() else {})
        except (OSError, ValueError):
            continue
    for data in sources:
        value = data.get("enabledPlugins") if isinstance(data, dict) else None
        if isinstance(value, dict):
            for key, on in value.items():
                enabled.setdefault(str(key).split("@", 1)[0], on is True)
    return enabled


def load_plugins(workspace: Path, options: dict[str, Any] | None, explicit: list[Path],
                 warnings: list[str]) -> list[Plugin]:
    enabled = enabled_plugins(workspace, options)
    extra = (options or {}).get("pluginDirs")
    if isinstance(extra, list):
        explicit = [*explicit, *(Path(p) for p in extra if isinstance(p, str))]
    candidates: list[tuple[Path, bool]] = [(p, True) for p in explicit]
    for root in plugin_roots(workspace):
        if root.is_dir():
            candidates += [(p, False) for p in sorted(root.iterdir()) if p.is_dir()]
    plugins: dict[str, Plugin] = {}
    for folder, given in candidates:
        plugin = read_plugin(folder, warnings)
        if plugin is None:
            continue
        if not given and enabled.get(plugin.name) is not True:
            continue
        if plugin.name in plugins:
            warnings.append(f"{folder}: plugin {plugin.name!r} is already loaded from "
                            f"{plugins[plugin.name].root}; skipped")
            continue
        plugins[plugin.name] = plugin
    return list(plugins.values())


def read_plugin(folder: Path, warnings: list[str]) -> Plugin | None:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        warnings.append(f"{folder}: no {MANIFEST}; not a plugin, skipped")
        return None
    try:
        if manifest.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
        data = json.loads(manifest.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the manifest must be a JSON object")
        name = data.get("name")
        if not isinstance(name, str) or not _PLUGIN_NAME.match(name):
            raise ValueError(f"'name' must be kebab-case (a-z, 0-9, '-'), got {name!r}")
        mcp = _plugin_mcp(folder, data)
        hooks = _plugin_hooks(folder, data)
        agent_dirs = _plugin_paths(folder, data.get("agents"), "agents")
    except (OSError, ValueError) as exc:
        warnings.append(f"{manifest}: invalid plugin manifest ({exc}); plugin skipped")
        return None
    return Plugin(name=name, root=folder, version=_text(data.get("version")),
                  description=_text(data.get("description")), mcp_servers=mcp, hooks=hooks,
                  agent_dirs=agent_dirs)


def _with_root(value: Any, folder: Path) -> Any:
    """``value`` with ``${CLAUDE_PLUGIN_ROOT}`` replaced by the plugin's folder everywhere."""
    text = json.dumps(value).replace("${CLAUDE_PLUGIN_ROOT}", json.dumps(str(folder))[1:-1])
    return json.loads(text)


def _plugin_paths(folder: Path, declared: Any, default: str) -> list[Path]:
    """Folders named by the manifest (a path or a list of paths), else the default one."""
    if declared is None:
        return [folder / default] if (folder / default).is_dir() else []
    items = [declared] if isinstance(declared, str) else declared
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{default!r} must be a path or a list of paths")
    return [folder / _with_root(i, folder) for i in items]


def _plugin_hooks(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``hooks`` of the manifest (an object or a path), else ``hooks/hooks.json``: the
    ``{event: [...]}`` object, with the plugin root expanded."""
    declared = manifest.get("hooks")
    if isinstance(declared, str):
        declared = json.loads((folder / _with_root(declared, folder)).read_text(encoding="utf-8"))
    elif declared is None and (folder / "hooks" / "hooks.json").is_file():
        declared = json.loads((folder / "hooks" / "hooks.json").read_text(encoding="utf-8"))
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise ValueError("'hooks' must be an object or a path to hooks.json")
    hooks = declared.get("hooks", declared)  # hooks.json wraps them (with a description)
    if not isinstance(hooks, dict):
        raise ValueError("the plugin's 'hooks' must be an object of events")
    return _with_root(hooks, folder)


def _plugin_mcp(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    servers = manifest.get("mcpServers")
    if isinstance(servers, str):
        path = folder / servers.replace("${CLAUDE_PLUGIN_ROOT}", str(folder))
        servers = json.loads(path.read_text(encoding="utf-8")).get("mcpServers", {})
    elif servers is None and (folder / ".mcp.json").is_file():
        servers = json.loads((folder / ".mcp.json").read_text(encoding="utf-8")) \
            .get("mcpServers", {})
    if servers is None:
        return {}
    if not isinstance(servers, dict):
        raise ValueError("'mcpServers' must be an object or a path")
    return {f"{manifest['name']}_{k}": v for k, v in _with_root(servers, folder).items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
