"""types/lazy.py: the model modules as the idle path sees them, imported with the first name
asked for, the same objects as the modules' own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lsp_agent.types import editor, events, lazy, watch

PROGRAM = r"""
import json, sys
from lsp_agent.types.lazy import events

seen = {"before": "lsp_agent.types.events" in sys.modules or "pydantic" in sys.modules}
usage = events.Usage(input_tokens=3)
seen["after"] = "lsp_agent.types.events" in sys.modules and "pydantic" in sys.modules
seen["usage"] = usage.wire()
print(json.dumps(seen))
"""


def test_the_module_loads_with_the_first_name_asked_for():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"before": False, "after": True,
                                       "usage": {"inputTokens": 3, "outputTokens": 0,
                                                 "cacheReadInputTokens": 0,
                                                 "cacheCreationInputTokens": 0}}


def test_names_are_the_modules_own_objects():
    assert lazy.events.TurnEnded is events.TurnEnded
    assert lazy.editor.EditorContext is editor.EditorContext
    assert lazy.watch.InboxItem is watch.InboxItem
    assert isinstance(events.Usage(), lazy.events.Usage)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        lazy.events.NoSuchEvent  # noqa: B018
