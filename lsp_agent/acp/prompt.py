"""An ACP prompt (content blocks) as the text of a turn.

Text is taken as is; a resource link becomes a mention the model can Read (which the
permission gate judges); an embedded text resource is quoted with its URI, unless it comes from
a secret file: like the code around a selection, that stays out (the model can Read it, which
asks the user). Images and audio are not advertised and are left out with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from acp.schema import (
    EmbeddedResourceContentBlock,
    ResourceContentBlock,
    TextContentBlock,
    TextResourceContents,
)
from pygls.uris import to_fs_path

from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules
from lsp_agent.permissions.untrusted import shown


def _path_of(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    fs = to_fs_path(uri)
    return Path(fs) if fs else None


def _embedded(block: EmbeddedResourceContentBlock, rules: FileRules) -> str:
    resource = block.resource
    name = shown(resource.uri)
    if not isinstance(resource, TextResourceContents):
        return f"[attached binary resource {name}: left out, only text is read]"
    path = _path_of(resource.uri)
    if path is not None and rules.is_secret(path):
        return (f"[attached {name}: left out, it is a secret file. Read it to ask the user for "
                "its content.]")
    return f"<attached-resource uri=\"{name}\">\n{resource.text}\n</attached-resource>"


_RENDERERS: dict[type, Callable[[Any, FileRules], str]] = {
    TextContentBlock: lambda b, _rules: b.text,
    ResourceContentBlock: lambda b, _rules: f"[@{shown(b.name)}]({shown(b.uri)})",
    EmbeddedResourceContentBlock: _embedded,
}


def prompt_text(blocks: list[Any], rules: FileRules = DEFAULT_RULES) -> str:
    parts = []
    for block in blocks:
        render = _RENDERERS.get(type(block))
        parts.append(render(block, rules) if render is not None
                     else f"[{getattr(block, 'type', 'unknown')} content left out: not supported]")
    return "\n".join(parts)
