"""The Agent Client Protocol front end (``lsp-agent acp``): ACP v1 over stdio on the same
sessions as the language server. See docs/acp.md."""
