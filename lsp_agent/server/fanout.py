"""Several handlers for one LSP notification.

pygls allows one handler per method, but more than one part of the server needs to hear
``initialized`` or ``textDocument/didSave`` (the model preload, the symbol index, the watcher).
Each part adds its handler here; one registered feature calls them all, in the order they were
added, and a handler that raises does not keep the others from running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]


def on_notification(ls: LanguageServer, method: str, handler: Handler) -> None:
    table: dict[str, list[Handler]] = ls.__dict__.setdefault("_notification_handlers", {})
    if method not in table:
        handlers: list[Handler] = []
        table[method] = handlers

        @ls.feature(method)
        def dispatch(params: Any) -> None:
            for each in list(handlers):
                try:
                    each(params)
                except Exception:  # one part's failure must not silence the others
                    log.exception("%s handler %s failed", method,
                                  getattr(each, "__qualname__", each))

    table[method].append(handler)
