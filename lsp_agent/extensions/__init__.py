"""Extensions users add by dropping files into folders, in Claude Code's formats: MCP servers
(``.mcp.json``, settings ``mcpServers``), skills (``SKILL.md`` folders), slash commands
(``commands/*.md``) and plugins that bundle them. See docs/extensions.md."""
