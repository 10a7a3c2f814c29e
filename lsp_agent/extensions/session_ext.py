"""A session's extensions, assembled in one place: MCP servers, skills, custom commands and the
plugins that bundle them. The session holds one ``SessionExtensions``; nothing here imports
the session (it gets what it needs as arguments)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsp_agent.extensions.commands import CustomCommand, load_commands
from lsp_agent.extensions.mcp_config import load_mcp_config
from lsp_agent.extensions.mcp_hub import McpHub
from lsp_agent.extensions.mcp_tools import McpTool
from lsp_agent.extensions.output_styles import (
    DEFAULT,
    OutputStyle,
    configured_style,
    load_styles,
    style_block,
)
from lsp_agent.extensions.plugins import Plugin, load_plugins
from lsp_agent.extensions.skills import (
    Skill,
    SkillTool,
    load_skills,
    project_dirs,
    skill_roots,
    user_dirs,
)
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.restriction import Restriction
from lsp_agent.permissions.rules import Rule, RuleError
from lsp_agent.tools.tool_search import SessionTools
from lsp_agent.types.permissions import Asker

log = logging.getLogger(__name__)


def defer_mcp_at() -> int:
    """From this many MCP tools on, their schemas wait behind ToolSearch (names only)."""
    try:
        return int(os.environ.get("LSP_AGENT_MCP_DEFER_AT", "15"))
    except ValueError:
        return 15


class SessionExtensions:
    def __init__(self, workspace: Path, *, tools: SessionTools, gate: PermissionGate,
                 asker: Callable[[], Asker | None], state_dir: Path, session_id: str,
                 options: dict[str, Any] | None = None, plugin_dirs: list[Path] | None = None):
        self.workspace = workspace
        self.warnings: list[str] = []
        self._tools = tools
        self._gate = gate
        self._asker = asker
        self._granted: set[str] = set()
        self._started = False
        self.plugins: list[Plugin] = load_plugins(workspace, options, list(plugin_dirs or []),
                                                  self.warnings)
        config = load_mcp_config(
            workspace, options, extra=[("plugin", p.root / ".mcp.json", p.mcp_servers)
                                       for p in self.plugins if p.mcp_servers])
        self.warnings += config.warnings
        self.mcp = McpHub(workspace, config, state_dir / "sessions" / session_id / "mcp",
                          self._mcp_tools_changed, session_id)
        self.skills: dict[str, Skill] = load_skills(skill_roots(workspace), self.warnings)
        for plugin in self.plugins:
            for name, skill in load_skills([(f"plugin:{plugin.name}", plugin.root / "skills")],
                                           self.warnings, f"{plugin.name}:").items():
                self.skills.setdefault(name, skill)
        roots = [("user", d) for d in user_dirs("commands")] + \
            [("project", d) for d in project_dirs(workspace, "commands")]
        self.commands: dict[str, CustomCommand] = load_commands(roots, self.warnings)
        for plugin in self.plugins:
            for name, command in load_commands(
                    [(f"plugin:{plugin.name}", plugin.root / "commands")], self.warnings,
                    f"{plugin.name}:").items():
                self.commands.setdefault(name, command)
        self.styles: dict[str, OutputStyle] = load_styles(
            [("user", d) for d in user_dirs("output-styles")]
            + [("project", d) for d in project_dirs(workspace, "output-styles")]
            + [(f"plugin:{p.name}", p.root / "output-styles") for p in self.plugins],
            self.warnings)
        self.output_style: OutputStyle | None = None
        wanted = configured_style(workspace, options)
        if wanted and wanted != DEFAULT:
            try:
                self.set_output_style(wanted)
            except KeyError:
                self.warnings.append(f"outputStyle {wanted!r}: no such output style; "
                                     f"using the default")
        # (get, set) of the session's model, bound by the session (sessions/extensions.py).
        self.model_access: tuple[Callable[[], str], Callable[[str], Any]] | None = None
        self._model_before: str | None = None
        skill_tool = SkillTool(self.skills, self.grant, self.use_model)
        if skill_tool.skills:
            tools.set_group("skills", [skill_tool], defer=False)
        for warning in self.warnings:
            log.warning("%s", warning)
        self._start_if_running()

    # -- output style --------------------------------------------------------------------

    def set_output_style(self, name: str) -> OutputStyle | None:
        """Choose a style by name (``default``: none). Raises KeyError for an unknown one."""
        if name == DEFAULT:
            self.output_style = None
            return None
        self.output_style = self.styles[name]
        return self.output_style

    def style_blocks(self) -> list[dict[str, Any]]:
        return [style_block(self.output_style)] if self.output_style is not None else []

    # -- lifecycle -----------------------------------------------------------------------

    def _start_if_running(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started at the first prompt
        self._started = True
        self.mcp.start()

    def on_prompt(self) -> None:
        """A prompt enters the session: start servers (once), ask about unapproved ones."""
        if not self._started:
            self._started = True
            self.mcp.start()
        self.mcp.ask_approvals(self._asker())

    def grant(self, rules: list[str], source: str = "user", by_user: bool = True) -> None:
        """Pre-approve ``rules`` (a skill's or command's ``allowed-tools``) until the turn
        ends. Rules the session already had stay after it.

        A repository must not grant itself permissions: the rules of a project skill the
        *model* chose to invoke are not honoured (the user typing ``/name`` is consent), and
        over-broad rules (every shell command, an interpreter, writing anywhere) never are."""
        if source == "project" and not by_user:
            self.warnings.append(f"allowed-tools of a project skill invoked by the model "
                                 f"were not applied: {', '.join(rules)}")
            return
        fresh = []
        for text in rules:
            try:
                rule = Rule.parse(text, "session", self.workspace)
            except RuleError:
                continue
            if rule.broadness() is None and text not in self._gate.session_rules:
                fresh.append(text)
        self._gate.session_rules.update(fresh)
        self._granted.update(fresh)

    def use_model(self, model: str | None) -> None:
        """A skill's ``model`` until the turn ends (``inherit`` or none: unchanged)."""
        if not model or model == "inherit" or self.model_access is None:
            return
        get, set_ = self.model_access
        if self._model_before is None:
            self._model_before = get()
        set_(model)

    def restrict(self, label: str, rules: list[str]) -> None:
        """Until the turn ends, calls that change something must match ``rules``."""
        self._gate.restriction = Restriction.parse(label, rules, self.workspace)

    def end_turn(self) -> None:
        self._gate.session_rules.difference_update(self._granted)
        self._granted.clear()
        self._gate.restriction = None
        if self._model_before is not None and self.model_access is not None:
            self.model_access[1](self._model_before)  # the skill's model was for its turn
            self._model_before = None

    async def close(self) -> None:
        await self.mcp.close()

    # -- what clients list ---------------------------------------------------------------

    def _mcp_tools_changed(self, tools: list[McpTool]) -> None:
        by_server: dict[str, list[McpTool]] = {}
        for tool in tools:
            by_server.setdefault(tool.server.spec.name, []).append(tool)
        defer = len(tools) >= defer_mcp_at()
        for server in self.mcp.servers:
            self._tools.set_group(f"mcp:{server}", list(by_server.get(server, [])), defer)
