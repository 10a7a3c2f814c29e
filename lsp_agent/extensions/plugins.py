"""Plugins: a folder with ``.claude-plugin/plugin.json`` bundling ``commands/``, ``skills/``,
``agents/``, ``hooks/hooks.json`` and ``.mcp.json``; its commands and skills are named
``<plugin>:<name>``. ``${CLAUDE_PLUGIN_ROOT}`` in its MCP definitions is the plugin's folder.

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
    except (OSError, ValueError) as exc:
        warnings.append(f"{manifest}: invalid plugin manifest ({exc}); plugin skipped")
        return None
    return Plugin(name=name, root=folder, version=_text(data.get("version")),
                  description=_text(data.get("description")), mcp_servers=mcp)


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
    text = json.dumps(servers).replace("${CLAUDE_PLUGIN_ROOT}",
                                       json.dumps(str(folder))[1:-1])
    return {f"{manifest['name']}_{k}": v for k, v in json.loads(text).items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
