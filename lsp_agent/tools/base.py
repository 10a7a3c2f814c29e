"""One Tool interface with safe defaults: a new tool is a name, a description, an input model
and a ``call``. Everything else (schema, size cap, permission target) has a default.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules
from lsp_agent.permissions.untrusted import shown
from lsp_agent.types.edits import FileEdit
from lsp_agent.types.permissions import Access, Subject
from lsp_agent.workspace.documents import DocumentSource

if TYPE_CHECKING:
    from lsp_agent.code_intel.api import CodeIntel
    from lsp_agent.tools.background import BackgroundTasks
    from lsp_agent.tools.task_list import TaskBoard
    from lsp_agent.tools.todos import TodoList
    from lsp_agent.tools.tool_search import SessionTools


class ToolError(Exception):
    """A failure the model should see as an error result (``is_error: true``) and can act on."""


@dataclass
class ToolOutput:
    content: str
    is_error: bool = False
    # Image blocks for the model ({"type": "image", "source": {...}}), after the text.
    images: list[dict[str, Any]] = field(default_factory=list)


class ProposalSink(Protocol):
    async def propose(self, tool_use_id: str, changes: list[FileEdit]) -> str:
        """Submit whole-file changes for review; returns the outcome text for the model."""
        ...


class DiagnosticsSource(Protocol):
    async def diagnostics(self, path: Path) -> list[dict[str, Any]]:
        """Diagnostics the editor reported for ``path`` (LSP Diagnostic JSON)."""
        ...


class ProcessRegistry(Protocol):
    def add(self, pgid: int) -> None: ...
    def discard(self, pgid: int) -> None: ...


class ShellSandbox(Protocol):
    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` as it runs under the session's sandbox policy; raises
        ``SandboxUnavailable`` when the policy requires a sandbox that cannot run."""
        ...


class FileHistory(Protocol):
    """Keeps what files were before and after the agent wrote them (checkpoints, rewind)."""

    async def before_write(self, paths: list[Path]) -> None: ...

    async def after_write(self, paths: list[Path],
                          texts: Mapping[Path, str] | None = None) -> None: ...


@dataclass
class ToolContext:
    workspace: Path
    documents: DocumentSource
    proposals: ProposalSink
    diagnostics: DiagnosticsSource
    results_dir: Path  # oversized results are saved here
    session_id: str = ""
    tool_use_id: str = ""
    code_intel: CodeIntel | None = None
    processes: ProcessRegistry | None = None
    shell_timeout: float = 120.0
    # None fails closed: a shell tool refuses to run without a sandbox policy (an explicit
    # "off" policy is a Sandbox too).
    sandbox: ShellSandbox | None = None
    todos: TodoList | None = None  # the session's plan, for TodoWrite
    tools: SessionTools | None = None  # loaded and deferred tools, for ToolSearch
    file_rules: FileRules = DEFAULT_RULES  # which files are secrets (the session's settings)
    # The session's checkpoint: a shell tool names the files its command writes.
    file_history: FileHistory | None = None
    tasks: BackgroundTasks | None = None  # the session's background commands
    task_board: TaskBoard | None = None  # the shared task list (TaskCreate...), all agents'
    agent_name: str | None = None  # the subagent calling (None: the session's own agent)

    def resolve(self, raw: str) -> Path:
        """Resolve a tool's path argument against the workspace (relative or absolute)."""
        p = Path(raw).expanduser()
        if not p.is_absolute():
            p = self.workspace / p
        return Path(_normalise(p))

    def display(self, path: Path) -> str:
        """A path as the model should see it: relative to the workspace when inside it,
        escaped when its name is not printable (a name must not forge lines)."""
        try:
            return shown(str(path.relative_to(self.workspace)))
        except ValueError:
            return shown(str(path))


def _normalise(p: Path) -> str:
    import os

    return os.path.normpath(str(p))


_INPUT_SCHEMAS: dict[type[BaseModel], dict[str, Any]] = {}


def _without_null_option(prop: dict[str, Any]) -> dict[str, Any]:
    """``X | None = None`` as pydantic writes it (``anyOf: [X, {type: null}]``, ``default:
    null``) says no more to the model than an optional ``X`` it may leave out, and costs tokens
    on every request; validation still accepts null."""
    options = prop.get("anyOf")
    if "default" not in prop or prop["default"] is not None or not isinstance(options, list) \
            or len(options) != 2 or {"type": "null"} not in options:
        return prop
    kept = next(o for o in options if o != {"type": "null"})
    rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
    return {**kept, **rest}


class Tool(ABC):
    """Declared once: name, description, input model, what a call touches (``access``, from
    which the permission gate judges it), whether calls may run concurrently, result cap."""

    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    # Safe default: a tool that does not say what it touches is asked about.
    access: ClassVar[Access] = "external"
    read_only: ClassVar[bool] = False  # derived from ``access``
    max_result_chars: ClassVar[int] = 40_000
    # Seconds a call may take before it is stopped and reported as an error, so no tool can
    # hold a turn forever. None: the tool bounds itself (Bash's own timeout) or waits for the
    # user (Edit and Write wait for the review).
    time_limit: ClassVar[float | None] = 120.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.read_only = cls.access in ("read", "session")

    def api_schema(self) -> dict[str, Any]:
        # Made once per input model: pydantic's schema generation costs milliseconds per tool,
        # and every subagent builds a pool of its own (a copy: callers may change theirs).
        schema = _INPUT_SCHEMAS.get(self.input_model)
        if schema is None:
            schema = self.input_model.model_json_schema()
            schema.pop("title", None)
            props = schema.get("properties", {})
            for name, prop in props.items():
                prop.pop("title", None)
                props[name] = _without_null_option(prop)
            _INPUT_SCHEMAS[self.input_model] = schema
        return {"name": self.name, "description": self.description,
                "input_schema": copy.deepcopy(schema)}

    def subject(self, args: BaseModel) -> Subject:
        """What this call touches: by default the input's ``path`` (file tools) or
        ``command`` (shell tools)."""
        path = getattr(args, "path", None)
        command = getattr(args, "command", None)
        return Subject(self.access, path=path if isinstance(path, str) and path else None,
                       command=command if isinstance(command, str) else None)

    def is_concurrency_safe(self, args: BaseModel) -> bool:
        """Whether this call may run alongside other concurrency-safe calls."""
        return self.read_only

    @abstractmethod
    async def call(self, args: Any, ctx: ToolContext) -> str | ToolOutput: ...


class ToolPool:
    """The tools offered to the model: sorted by name so schemas are byte-stable across turns."""

    def __init__(self, tools: list[Tool]):
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate tool names: {sorted(names)}")
        self._tools = {t.name: t for t in sorted(tools, key=lambda t: t.name)}
        self._schemas = [t.api_schema() for t in self._tools.values()]

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def api_schemas(self) -> list[dict[str, Any]]:
        """Computed once: byte-identical on every request (cacheable) and free per round."""
        return self._schemas
