"""The handler modules' view of protocol.py (server/lazy_protocol.py): the method names at once,
the params models only when first asked for, and the same objects as protocol.py's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lsp_agent.server import init_options, lazy_protocol, methods, protocol

PROGRAM = r"""
import json, sys
from lsp_agent.server import lazy_protocol as p
from lsp_agent.server.init_options import InitializationOptions

seen = {}
seen["names"] = [p.NEW_SESSION, p.WATCH_EVENT, p.CMD_FIX]
options = InitializationOptions.model_validate({"pythonLanguageFeatures": False, "mode": "plan"})
seen["options"] = [options.python_language_features, options.mode]
seen["after_names_and_options"] = "lsp_agent.server.protocol" in sys.modules
p.parse(p.SessionParams, {"sessionId": "s1"})
seen["after_a_parse"] = "lsp_agent.server.protocol" in sys.modules
print(json.dumps(seen))
"""


def test_the_models_load_with_the_first_use_not_with_the_names_or_the_options():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"names": ["agent/newSession", "agent/watchEvent", "lspAgent.fix"],
                    "options": [False, "plan"],
                    "after_names_and_options": False, "after_a_parse": True}


def test_every_method_name_is_protocols_own():
    names = [n for n in vars(methods) if n.isupper()]
    assert len(names) > 20
    for name in names:
        assert getattr(lazy_protocol, name) == getattr(protocol, name) == getattr(methods, name)
    assert protocol.InitializationOptions is init_options.InitializationOptions


def test_models_and_parse_are_protocols_objects():
    assert lazy_protocol.PromptParams is protocol.PromptParams
    assert lazy_protocol.MemoryWriteParams is protocol.MemoryWriteParams
    assert lazy_protocol.parse is protocol.parse


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        lazy_protocol.NoSuchParams  # noqa: B018
