"""The editor bridge's method names (bridge.py): in a module of their own so that the server can
advertise them at ``initialize`` without importing the bridge and the code intelligence behind
it (README.md, "Cold start")."""

DEFINITION = "agent/editor/definition"
REFERENCES = "agent/editor/references"
HOVER = "agent/editor/hover"
DOCUMENT_SYMBOLS = "agent/editor/documentSymbols"
WORKSPACE_SYMBOLS = "agent/editor/workspaceSymbols"
DIAGNOSTICS = "agent/editor/diagnostics"
BRIDGE_METHODS = [DEFINITION, REFERENCES, HOVER, DOCUMENT_SYMBOLS, WORKSPACE_SYMBOLS, DIAGNOSTICS]
