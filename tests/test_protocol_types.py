"""The extension's wire types are generated from the server's models; these tests keep them so.

vscode-client/scripts/protocol_schema.py dumps the JSON Schema of the models that cross the
protocol; the extension's TypeScript types (src/shared/protocol.generated.ts) are generated from
the committed copy, src/shared/protocol.schema.json. A model change without regenerating fails
here, so the Python suite catches drift without node (CI also runs ``npm run check:protocol``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator

CLIENT = Path(__file__).resolve().parent.parent / "vscode-client"
SCRIPT = CLIENT / "scripts" / "protocol_schema.py"
SNAPSHOT = CLIENT / "src" / "shared" / "protocol.schema.json"
REGENERATE = "run `npm run gen:protocol` in vscode-client/ and commit both generated files"


@cache
def schema_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protocol_schema", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def schema() -> dict[str, Any]:
    return schema_module().protocol_schema()


ev = schema_module().events  # the modules the script dumps, wherever they live
p = schema_module().protocol


def validator(name: str) -> Draft202012Validator:
    """Validates against one named type, resolving its references within the whole schema."""
    return Draft202012Validator({"$defs": schema()["$defs"], "$ref": f"#/$defs/{name}"})


def test_committed_schema_matches_the_models(tmp_path):
    # Exactly what `npm run gen:protocol` runs, with a home of its own.
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=120, env=env, check=True).stdout
    assert out == SNAPSHOT.read_text(encoding="utf-8"), (
        f"{SNAPSHOT.relative_to(CLIENT.parent)} is out of date with the server's models: "
        f"{REGENERATE}")


def test_every_event_type_is_in_the_union():
    union = schema()["$defs"]["AgentEvent"]
    types = set(union["discriminator"]["mapping"])
    assert "proposal_created" in types
    members = get_args(get_args(ev.AgentEvent)[0])
    assert len(union["oneOf"]) == len(types) == len(members) > 10



def test_a_client_builds_the_event_validator_once():
    # Built per event, the union's validator cost a client ~1/10 s of CPU for each one.
    assert ev.event_adapter() is ev.event_adapter()
    event = ev.parse_event({"type": "text_delta", "session_id": "s", "seq": 1, "text": "hi"})
    assert isinstance(event, ev.TextDelta) and event.text == "hi"

SENT_BY_SERVER: list[tuple[str, Any]] = [
    ("AgentEvent", ev.TurnStarted(session_id="s", seq=1, prompt="hi")),  # trigger None: left out
    ("AgentEvent", ev.TurnStarted(session_id="s", seq=2, prompt="go on", trigger="stop_hook")),
    ("AgentEvent", ev.ProposalCreated(
        session_id="s", seq=3, proposal_id="p1", tool_use_id="t1",
        files=[ev.FileChangeView(uri="file:///a.py", path="a.py", is_new=True, diff="+x",
                                 hunks=[ev.HunkView(id="h1", header="@@ -0,0 +1 @@", diff="+x")])],
    )),
    ("AgentEvent", ev.ProposalResolved(session_id="s", seq=4, proposal_id="p1", status="accepted")),
    ("AgentEvent", ev.ToolResult(session_id="s", seq=5, tool_use_id="t1", name="Bash",
                                 content="ok")),
    ("AgentEvent", ev.TodosUpdated(session_id="s", seq=6, todos=[
        ev.TodoView(content="Fix it", status="in_progress", active_form="Fixing it"),
        ev.TodoView(content="Test it", status="pending")])),
    ("AgentEvent", ev.CostReport(session_id="s", seq=7, turn=ev.SessionCost(),
                                 session=ev.SessionCost(by_model=[
                                     ev.ModelCost(model="m", usage=ev.Usage(input_tokens=3))]))),
    ("NewSessionResult", p.NewSessionResult(session_id="s", workspace_uri="file:///w",
                                            mode="plan", model="m")),
]


@pytest.mark.parametrize(("name", "message"), SENT_BY_SERVER,
                         ids=[f"{n}-{m.__class__.__name__}" for n, m in SENT_BY_SERVER])
def test_what_the_server_sends_fits_its_schema(name, message):
    validator(name).validate(message.wire())


def test_server_sent_fields_are_required_unless_they_may_be_left_out():
    # wire() writes every field but the None ones: the generated TS types say so, so the client
    # may rely on `ts` and `accepted` and must check `feedback`.
    resolved = schema()["$defs"]["ProposalResolved"]
    assert {"ts", "seq", "accepted", "status"} <= set(resolved["required"])
    assert "feedback" not in resolved["required"]
    assert resolved["properties"]["feedback"] == {"type": "string"}  # absent, never null
    wire = ev.ProposalResolved(session_id="s", proposal_id="p1", status="rejected").wire()
    del wire["ts"]
    assert not validator("AgentEvent").is_valid(wire)


def test_client_sent_fields_with_defaults_are_optional():
    validator("PromptParams").validate({"sessionId": "s", "text": "hi"})
    validator("PermissionAnswerParams").validate({"decision": "allow", "remember": "project"})
    validator("ReviewParams").validate({"proposalId": "p1", "accept": "all", "feedback": None})
    assert not validator("PromptParams").is_valid({"text": "hi"})
    assert not validator("SetModeParams").is_valid({"sessionId": "s", "mode": "yolo"})


def test_only_type_definitions_keep_titles():
    # A titled field would become a named TS type of its own ("export type SessionId = string").
    def titled(node: Any, path: str) -> list[str]:
        if isinstance(node, list):
            return [t for i, item in enumerate(node) for t in titled(item, f"{path}/{i}")]
        if not isinstance(node, dict):
            return []
        here = [path] if isinstance(node.get("title"), str) else []
        return here + [t for k, v in node.items() if k != "title" for t in titled(v, f"{path}/{k}")]

    definitions = {f"#/$defs/{name}" for name in schema()["$defs"]}
    assert set(titled(schema(), "#")) - definitions == {"#"}
