"""What enabled plugins add to a session besides commands, skills and MCP servers: their hooks
(``hooks/hooks.json``) and custom agents (``agents/*.md``, named ``<plugin>:<name>``)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from lsp_agent.context.agents import MAX_AGENT_FILES, AgentType, read_agent_file
from lsp_agent.extensions.plugins import Plugin
from lsp_agent.permissions.hooks import Matcher, parse_config

log = logging.getLogger(__name__)


def plugin_hooks(plugins: list[Plugin], warnings: list[str]) -> dict[str, list[Matcher]]:
    table, problems = parse_config([(f"plugin:{p.name}", p.hooks) for p in plugins if p.hooks])
    warnings += problems
    return table


def plugin_agents(plugins: list[Plugin], known_tools: Iterable[str],
                  warnings: list[str]) -> list[AgentType]:
    known = {*known_tools, "Agent"}
    agents = []
    for plugin in plugins:
        for folder in plugin.agent_dirs:
            try:
                files = sorted(folder.glob("*.md"))[:MAX_AGENT_FILES] if folder.is_dir() else []
            except OSError as exc:
                warnings.append(f"{folder}: cannot list the plugin's agents ({exc})")
                continue
            for path in files:
                agent = read_agent_file(path, known, warnings)
                if agent is not None:
                    agents.append(dataclasses.replace(agent, name=f"{plugin.name}:{agent.name}"))
    return agents
