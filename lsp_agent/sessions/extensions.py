"""A session's extensions (MCP servers, skills, commands, plugins), built from the session's
own parts: kept here so session.py needs one line for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsp_agent.extensions.plugin_parts import plugin_agents, plugin_hooks
from lsp_agent.extensions.session_ext import SessionExtensions

if TYPE_CHECKING:
    from lsp_agent.sessions.session import Session


def session_extensions(session: Session) -> SessionExtensions:
    config = session.config
    extensions = SessionExtensions(
        session.workspace, tools=session.tools, gate=session.gate,
        asker=lambda: session.agent.deps.asker, state_dir=config.state_dir,
        session_id=session.id, options=config.safety_options,
        plugin_dirs=list(getattr(config, "plugin_dirs", None) or []))
    session.safety.warnings.extend(extensions.warnings)
    extensions.model_access = (lambda: session.agent.model, session.set_model)
    # Plugins' hooks and custom agents join the session's (lower precedence than its own).
    session.safety.hooks.add(plugin_hooks(extensions.plugins, session.safety.warnings))
    catalog = session.delegation.catalog
    for agent in plugin_agents(extensions.plugins, session.tools.names(), catalog.warnings):
        catalog.types.setdefault(agent.name, agent)
    return extensions
