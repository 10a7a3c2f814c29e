"""JSON helpers shared by the front ends and the editor bridge."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """Undo pygls's namedtuple wrapping of unknown params, recursively."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
