"""The pydantic models of types/, loaded with their first use rather than with the modules
that mention them: a language server answers initialize and idles without pydantic (some 9 MB:
pydantic_core, pydantic.main, the first model class, the event models).

A module on that path imports a model module for type checking and this one otherwise:

    if TYPE_CHECKING:
        from lsp_agent.types import events as ev
    else:  # the event models load with the first event (types/lazy.py)
        from lsp_agent.types.lazy import events as ev

``ev.TurnEnded`` then reads the same either way; the first name asked for imports the module.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """A module's names, the module imported when the first one is asked for."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)  # asked once: the next lookup is a plain attribute
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


events = LazyModule("lsp_agent.types.events")
editor = LazyModule("lsp_agent.types.editor")
watch = LazyModule("lsp_agent.types.watch")
