"""The server's ``initializationOptions`` (docs/protocol.md), validated at initialize: on its
own, so that initialize loads neither the event models nor the methods' params.

A plain dataclass, so that a client that sends no options gets the defaults without pydantic
(some 8 MB of an idle server: pydantic_core, pydantic.main, the first model class). Options
whose every value already has the type its field wants (what editors send: a mode, a model,
a few booleans) are taken as they are; any other options are validated by pydantic (a
TypeAdapter over the dataclass: the same coercion, aliases, errors and schema as a model's),
loaded then. Both give the same result for the same options (tests/test_init_options.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from annotated_types import Gt  # pydantic's own constraint type, without pydantic

from lsp_agent.types.permissions import MODES, Mode

if TYPE_CHECKING:
    from pydantic import TypeAdapter

Positive = Annotated[float, Gt(0)]


def _camel(name: str) -> str:
    """The wire name: what pydantic's to_camel (Wire's alias generator) makes of our names."""
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


@dataclass
class InitializationOptions:
    # camelCase on the wire, snake_case here (as types/wire.py's Wire), for pydantic.
    __pydantic_config__ = {"alias_generator": _camel, "populate_by_name": True}

    python_language_features: bool = True
    permission_timeout_seconds: Positive = 300.0
    apply_edit_timeout_seconds: Positive = 60.0
    # After applied: true, how long to wait for the buffer's didChange to show the edit.
    apply_edit_verify_seconds: Positive = 3.0
    editor_saves_applied_edits: bool = False
    editor_bridge: bool = False  # the client answers agent/editor/* requests
    editor_bridge_timeout_seconds: Positive = 10.0
    # Per-query limits of Python code intelligence: the editor's requests, the agent's tools.
    code_intel_timeout_seconds: Positive = 30.0
    code_intel_tool_timeout_seconds: Positive = 20.0
    mode: Mode = "default"
    model: str | None = None
    fallback_model: str | None = None
    classifier_model: str | None = None  # auto mode's classifier (default a haiku model)
    explore_model: str | None = None  # the Explore subagent's (default a haiku model)
    state_dir: str | None = None
    persist_sessions: bool = True  # transcripts under the state dir (resume, fork, history)
    # Saved sessions not updated for this long are deleted (with their checkpoints), and the
    # oldest go first while all of them take more than the size limit.
    session_retention_days: Positive = 30.0
    session_storage_max_mb: Positive = 500.0
    # Settings-file sections (see docs/security.md), between managed and project settings.
    permissions: dict[str, Any] | None = None
    sandbox: dict[str, Any] | None = None
    hooks: dict[str, Any] | None = None
    # Extensions (docs/extensions.md): the editor's settings count as the user's own.
    mcp_servers: dict[str, Any] | None = None
    enable_all_project_mcp_servers: bool | None = None
    enabled_mcpjson_servers: list[str] | None = None
    disabled_mcpjson_servers: list[str] | None = None
    enabled_plugins: dict[str, bool] | None = None
    plugin_dirs: list[str] | None = None
    # Auto memory (docs/autonomy.md): off with false; the folder from the user's side only.
    auto_memory: bool | None = None
    auto_memory_directory: str | None = None
    # Dream (docs/autonomy.md): {"enabled", "minHours", "minSessions", "idleSeconds"}.
    dream: dict[str, Any] | None = None
    # The watcher (docs/autonomy.md): {"enabled", "testCommand", "debounceSeconds", ...}.
    watch: dict[str, Any] | None = None

    @classmethod
    def model_validate(cls, raw: Any) -> InitializationOptions:
        """Options as the client sent them, validated (pydantic's ValidationError, a
        ValueError, when they are not valid)."""
        taken = _as_sent(raw)
        return taken if taken is not None else options_adapter().validate_python(raw)

    @classmethod
    def model_construct(cls) -> InitializationOptions:
        """The defaults, as validating ``{}`` gives them, without pydantic."""
        return cls()

    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def safety_options(self) -> dict[str, Any] | None:
        found = {"permissions": self.permissions, "sandbox": self.sandbox, "hooks": self.hooks,
                 "mcpServers": self.mcp_servers,
                 "enableAllProjectMcpServers": self.enable_all_project_mcp_servers,
                 "enabledMcpjsonServers": self.enabled_mcpjson_servers,
                 "disabledMcpjsonServers": self.disabled_mcpjson_servers,
                 "enabledPlugins": self.enabled_plugins, "pluginDirs": self.plugin_dirs,
                 "autoMemory": self.auto_memory,
                 "autoMemoryDirectory": self.auto_memory_directory}
        return {k: v for k, v in found.items() if v is not None} or None


class _NotAsIs(Exception):
    """A value pydantic has to judge (coerce it, or say what is wrong with it)."""


def _positive(value: Any) -> float:
    if type(value) not in (int, float) or not value > 0:  # not bool; NaN is not > 0
        raise _NotAsIs
    try:
        return float(value)  # as pydantic gives a float field an int
    except OverflowError:
        raise _NotAsIs from None


def _exactly(*types: type, values: tuple[Any, ...] | None = None) -> Callable[[Any], Any]:
    def take(value: Any) -> Any:
        if type(value) not in types or (values is not None and value not in values):
            raise _NotAsIs
        return value
    return take


# A field's annotation -> how a value of exactly its type is taken. Fields not here (the
# settings sections: dicts and lists) always go through pydantic.
AS_IS: dict[str, Callable[[Any], Any]] = {
    "bool": _exactly(bool),
    "bool | None": _exactly(bool, type(None)),
    "str | None": _exactly(str, type(None)),
    "Positive": _positive,
    "Mode": _exactly(str, values=MODES),
}


@functools.cache
def _fields_as_is() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """The wire name of each field taken as is -> (its name here, how it is taken)."""
    return {_camel(f.name): (f.name, AS_IS[str(f.type)])
            for f in dataclasses.fields(InitializationOptions) if str(f.type) in AS_IS}


def _as_sent(raw: Any) -> InitializationOptions | None:
    """The options, when every one is a known wire name with a value of exactly its field's
    type; else None (pydantic decides)."""
    if type(raw) is not dict:
        return None
    fields, values = _fields_as_is(), {}
    for key, value in raw.items():
        if key not in fields:  # snake_case, unknown, or a settings section
            return None
        name, take = fields[key]
        try:
            values[name] = take(value)
        except _NotAsIs:
            return None
    return InitializationOptions(**values)


@functools.cache
def options_adapter() -> TypeAdapter[InitializationOptions]:
    """The validator, built with the first options a client sends (or by a warm-up)."""
    from pydantic import TypeAdapter

    return TypeAdapter(InitializationOptions)
