"""The base of every model that crosses the protocol, on its own: what needs only the base (the
server's initializationOptions) loads without the event models (types/events.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    """Base for everything that crosses the protocol: camelCase on the wire, snake_case here."""

    # defer_build: a model's validator and serializer are built at its first use, not when
    # its class is made; a server answers initialize without building the ~100 it may never
    # use (the warm-up builds them ahead of a prompt: complete_models).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
