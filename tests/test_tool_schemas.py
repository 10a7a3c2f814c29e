"""Tool schemas are made once per input model (every subagent builds a pool of its own), and
each pool gets its own copy: a caller changing its schema changes no other pool's."""

from __future__ import annotations

from lsp_agent.tools.base import ToolPool
from lsp_agent.tools.pool import default_pool


def test_pools_share_the_work_not_the_schemas():
    first, second = default_pool(), ToolPool(list(default_pool()))
    assert first.api_schemas() == second.api_schemas()
    edit = next(s for s in first.api_schemas() if s["name"] == "Edit")
    assert "$defs" not in edit["input_schema"], "Edit's nested schema is inlined"
    assert "title" not in edit["input_schema"]["properties"]["path"]
    edit["input_schema"]["properties"].clear()
    again = next(s for s in ToolPool(list(default_pool())).api_schemas() if s["name"] == "Edit")
    assert "path" in again["input_schema"]["properties"]




def test_optional_fields_cost_no_null_option_and_still_accept_null():
    from lsp_agent.tools.shell import Bash

    assert "anyOf" in str(Bash.input_model.model_json_schema()["properties"]["timeout"])
    schema = Bash().api_schema()["input_schema"]
    timeout = schema["properties"]["timeout"]
    assert "anyOf" not in timeout and "default" not in timeout and timeout["type"] == "number"
    assert "description" in timeout and "timeout" not in schema.get("required", [])
    parsed = Bash.input_model.model_validate({"command": "ls", "timeout": None})
    assert parsed.model_dump()["timeout"] is None  # an explicit null is still accepted
