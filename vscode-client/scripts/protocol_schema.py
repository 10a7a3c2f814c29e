"""Print the JSON Schema of the server's wire types (the source of the extension's TS types).

    python vscode-client/scripts/protocol_schema.py > vscode-client/src/shared/protocol.schema.json

The schema is generated from the pydantic models the server validates and serialises with, so
the TypeScript types made from it (``npm run gen:protocol``) cannot drift from them unnoticed:
``npm run check:protocol`` and tests/test_protocol_types.py compare against the committed copies.

Two directions, two shapes:
- what the server sends (events, results) is made by ``Wire.wire()``, which drops ``None``
  fields and writes every other field: nullable fields become optional and non-null, all
  others required;
- what the client sends (params) is validated: fields with defaults are optional.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import TypeAdapter

from lsp_agent.types import events  # the event union
from lsp_agent.server import protocol

TITLE = "LspAgentProtocol"

# Sent by the server, in the shape ``Wire.wire()`` gives them.
SERVER_SENT: dict[str, Any] = {
    "AgentEvent": events.AgentEvent,
    "NewSessionResult": protocol.NewSessionResult,
    "ResumeSessionResult": protocol.ResumeSessionResult,
    "FixResult": protocol.FixResult,
    "InboxItem": protocol.InboxItem,
    "WatchEvent": protocol.WatchEvent,
}

# Sent by the client (request params, command arguments, initializationOptions, answers).
CLIENT_SENT: dict[str, Any] = {
    "InitializationOptions": protocol.InitializationOptions,
    "NewSessionParams": protocol.NewSessionParams,
    "PromptParams": protocol.PromptParams,
    "SessionParams": protocol.SessionParams,
    "CompactParams": protocol.CompactParams,
    "SetModeParams": protocol.SetModeParams,
    "SetModelParams": protocol.SetModelParams,
    "ReviewParams": protocol.ReviewParams,
    "PermissionAnswerParams": protocol.PermissionAnswerParams,
    "FixArguments": protocol.FixArguments,
    "SelectionArguments": protocol.SelectionArguments,
    "ResumeSessionParams": protocol.ResumeSessionParams,
    "SessionHistoryParams": protocol.SessionHistoryParams,
    "ForkSessionParams": protocol.ForkSessionParams,
    "RenameSessionParams": protocol.RenameSessionParams,
    "SavedSessionParams": protocol.SavedSessionParams,
    "ListSessionsParams": protocol.ListSessionsParams,
    "PromptHistoryParams": protocol.PromptHistoryParams,
    "RewindParams": protocol.RewindParams,
    "TaskParams": protocol.TaskParams,
    "DiagnosticsChangedParams": protocol.DiagnosticsChangedParams,
    "InboxDismissParams": protocol.InboxDismissParams,
}

NULL = {"type": "null"}
# Keywords whose value maps names to schemas.
NAMED_SCHEMAS = ("$defs", "properties", "patternProperties")


def _definitions(roots: dict[str, Any], mode: str) -> dict[str, Any]:
    """Every type reachable from ``roots``, by name, each root under its own name."""
    inputs = [(name, mode, TypeAdapter(tp)) for name, tp in roots.items()]
    top, found = TypeAdapter.json_schemas(inputs, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = dict(found.get("$defs", {}))
    for (name, _), schema in top.items():
        if "$ref" not in schema:  # a union: pydantic inlines it, so give it its name here
            defs[name] = {"title": name, **schema}
    return defs


def _drop_null(schema: dict[str, Any]) -> dict[str, Any]:
    branches = [b for b in schema.get("anyOf", []) if b != NULL]
    if "anyOf" not in schema or len(branches) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**rest, **branches[0]} if len(branches) == 1 else {**rest, "anyOf": branches}


def _as_serialised(model: dict[str, Any]) -> dict[str, Any]:
    """The shape ``wire()`` writes: ``None`` fields left out, every other field present."""
    props = model.get("properties")
    if props is None:
        return model
    nullable = {name for name, s in props.items() if NULL in s.get("anyOf", [])}
    return {
        **model,
        "properties": {name: _drop_null(s) for name, s in props.items()},
        "required": [name for name in props if name not in nullable],
    }


def _strip_field_titles(schema: Any, keep_title: bool = False) -> Any:
    """Drop pydantic's per-field titles ("Session Id"): TS generators make a type of each.

    Only definitions keep theirs (their class names, which name the generated types).
    """
    if isinstance(schema, list):
        return [_strip_field_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and not keep_title:
            continue
        if key in NAMED_SCHEMAS:  # name -> schema: the names are data, not keywords
            out[key] = {n: _strip_field_titles(s, key == "$defs") for n, s in value.items()}
        else:
            out[key] = _strip_field_titles(value)
    return out


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        for name, schema in part.items():
            if name in merged and merged[name] != schema:
                raise SystemExit(f"protocol_schema: {name} differs between directions; "
                                 "give the client-sent and server-sent types distinct models")
            merged[name] = schema
    return merged


def protocol_schema() -> dict[str, Any]:
    sent = {n: _as_serialised(s) for n, s in _definitions(SERVER_SENT, "serialization").items()}
    received = _definitions(CLIENT_SENT, "validation")
    defs = _merge(sent, received)
    roots = sorted({*SERVER_SENT, *CLIENT_SENT})
    return _strip_field_titles({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TITLE,
        "description": "The wire types of docs/protocol.md, generated from the server's models.",
        "type": "object",
        "properties": {name: {"$ref": f"#/$defs/{name}"} for name in roots},
        "required": roots,
        "additionalProperties": False,
        "$defs": defs,
    }, keep_title=True)


def render() -> str:
    """The schema as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(protocol_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
