"""protocol.py as the handler modules see it, its pydantic models loaded on first use.

The method names (methods.py) are here at once: handlers register under them when the server is
made. Any other name (a params model, ``parse``) imports protocol.py the first time it is asked
for, with the first call of one of our methods: a server answers initialize and idles without
the models. Handler modules import this as ``p`` and protocol.py itself for type checking, so
``p.NewSessionParams`` reads the same either way.
"""

from __future__ import annotations

import importlib
from typing import Any

from lsp_agent.server import methods


def __getattr__(name: str) -> Any:
    source = methods if name.isupper() and hasattr(methods, name) else \
        importlib.import_module("lsp_agent.server.protocol")
    value = getattr(source, name)
    globals()[name] = value  # asked once: the next lookup is a plain module attribute
    return value
