"""Permission settings files and their precedence.

Highest first: managed (``/etc/lsp-agent/managed-settings.json``, or the file named by
``$LSP_AGENT_MANAGED_SETTINGS``), initialization options / command line, local project
(``.lsp-agent/settings.local.json``, then
``.claude/settings.local.json``), project (``.lsp-agent/settings.json``, then
``.claude/settings.json``), user (``$XDG_CONFIG_HOME/lsp-agent/settings.json``). Rules of all
sources apply together (a deny anywhere wins over an allow anywhere); single values such as
``defaultMode`` and ``sandbox`` come from the highest source that sets them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lsp_agent.permissions.committed import is_committed
from lsp_agent.permissions.rules import Rule, RuleError
from lsp_agent.permissions.safe_write import WriteScope, real_path, write_bytes_checked
from lsp_agent.permissions.secrets import pattern_problem

log = logging.getLogger(__name__)
MANAGED_PATH = Path("/etc/lsp-agent/managed-settings.json")
MAX_SETTINGS_BYTES = 1_000_000
KINDS = ("allow", "ask", "deny")


@dataclass
class Source:
    name: str  # managed, options, local, project, user
    path: Path | None
    data: dict[str, Any]


@dataclass
class Settings:
    allow: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    deny: list[Rule] = field(default_factory=list)
    default_mode: str | None = None
    additional_directories: list[Path] = field(default_factory=list)
    secret_files: list[str] = field(default_factory=list)  # patterns added to the secret table
    protected_files: list[str] = field(default_factory=list)  # ... and to the protected table
    sandbox: dict[str, Any] = field(default_factory=dict)
    hooks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (source, config)
    approved_hooks: list[str] = field(default_factory=list)  # project hooks' fingerprints
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


# Modes the project's own settings cannot choose.
_TRUSTED_MODES = frozenset({"bypassPermissions", "auto"})


def user_settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lsp-agent" / "settings.json"


def own_settings_files() -> tuple[str, str]:
    """The user and managed settings files as strings, for the protected-files table.

    Asked on every file decision: cached per environment, building paths costs more than
    the rest of the decision."""
    env = os.environ
    return _own_settings_files(env.get("XDG_CONFIG_HOME"), env.get("HOME"),
                               env.get("LSP_AGENT_MANAGED_SETTINGS"))


@lru_cache(maxsize=8)
def _own_settings_files(xdg: str | None, home: str | None, managed: str | None) -> tuple[str, str]:
    return str(user_settings_path()), str(managed_settings_path())


def local_settings_path(workspace: Path) -> Path:
    return workspace / ".lsp-agent" / "settings.local.json"


def managed_settings_path() -> Path:
    return Path(os.environ.get("LSP_AGENT_MANAGED_SETTINGS") or MANAGED_PATH)


def candidate_files(workspace: Path) -> list[tuple[str, Path]]:
    """Settings files in precedence order (highest first), minus the options source. A local
    file that the repository commits is the repository's, not the user's: read as project
    settings (it cannot approve the project's MCP servers or hooks, nor loosen the mode)."""
    return [
        ("managed", managed_settings_path()),
        (_local_scope(local_settings_path(workspace)), local_settings_path(workspace)),
        (_local_scope(workspace / ".claude" / "settings.local.json"),
         workspace / ".claude" / "settings.local.json"),
        ("project", workspace / ".lsp-agent" / "settings.json"),
        ("project", workspace / ".claude" / "settings.json"),
        ("user", user_settings_path()),
    ]


def _local_scope(path: Path) -> str:
    if path.is_file() and is_committed(path):
        return "project"
    return "local"


def load(workspace: Path, options: dict[str, Any] | None = None) -> Settings:
    sources: list[Source] = []
    warnings: list[str] = []
    for name, path in candidate_files(workspace):
        data = read_json_object(path, warnings)
        if data is not None:
            sources.append(Source(name, path, data))
            if name == "project" and path.name == "settings.local.json":
                warnings.append(f"{path}: committed to the repository, so read as project "
                                "settings (approvals and trusted modes in it are ignored); "
                                "`git rm --cached` it to make it yours again")
        if name == "managed" and options:
            sources.append(Source("options", None, options))
    if options and not any(s.name == "options" for s in sources):
        sources.insert(0, Source("options", None, options))
    settings = merge(sources, workspace)
    settings.warnings[:0] = warnings
    return settings


def merge(sources: list[Source], workspace: Path) -> Settings:
    out = Settings()
    for source in sources:  # highest precedence first
        label = f"{source.name}:{source.path}" if source.path else source.name
        out.sources.append(label)
        perms = source.data.get("permissions") or {}
        if not isinstance(perms, dict):
            out.warnings.append(f"{label}: 'permissions' must be an object; ignored")
            perms = {}
        for kind in KINDS:
            for text in _strings(perms.get(kind), f"{label}: permissions.{kind}", out.warnings):
                try:
                    rule = Rule.parse(text, source.name, workspace)
                except RuleError as exc:
                    out.warnings.append(f"{label}: {exc}")
                    continue
                getattr(out, kind).append(rule)
                if kind == "allow" and (why := rule.broadness()):
                    out.warnings.append(f"{label}: over-broad allow rule: {why}")
        mode = perms.get("defaultMode")
        if mode in _TRUSTED_MODES and source.name in {"project", "local"}:
            # A cloned repository must not switch its own safety off, nor hand its prompts to
            # a classifier that its own files could talk round.
            out.warnings.append(f"{label}: defaultMode {mode} is only honoured in "
                                "managed, editor or user settings; ignored")
        elif out.default_mode is None and isinstance(mode, str):
            out.default_mode = mode
        for d in _strings(perms.get("additionalDirectories"), label, out.warnings):
            out.additional_directories.append(Path(os.path.expanduser(d)))
        for key, target in (("secretFiles", out.secret_files),
                            ("protectedFiles", out.protected_files)):
            for pattern in _strings(perms.get(key), f"{label}: permissions.{key}", out.warnings):
                if problem := pattern_problem(pattern):
                    out.warnings.append(f"{label}: permissions.{key} {pattern!r}: {problem}")
                elif pattern not in target:
                    target.append(pattern)
        sandbox = source.data.get("sandbox")
        if isinstance(sandbox, dict):
            if "passEnv" in sandbox and source.name in {"project", "local"}:
                # A cloned repository must not hand credentials to the commands it runs.
                out.warnings.append(f"{label}: sandbox.passEnv is only honoured in managed, "
                                    "editor or user settings; ignored")
                sandbox = {k: v for k, v in sandbox.items() if k != "passEnv"}
            out.sandbox = {**sandbox, **out.sandbox}  # higher sources already set win
        hooks = source.data.get("hooks")
        if isinstance(hooks, dict):
            out.hooks.append((label, hooks))
        if source.name != "project":  # a repository cannot approve its own hooks
            out.approved_hooks += _strings(source.data.get("approvedProjectHooks"),
                                           f"{label}: approvedProjectHooks", out.warnings)
    return out


def record_rule(path: Path, rule: str, kind: str = "allow") -> None:
    """Add ``rule`` to the settings file at ``path`` (creating it), keeping everything else."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text() or "{}")
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
    perms = data.setdefault("permissions", {})
    rules = perms.setdefault(kind, [])
    if rule not in rules:
        rules.append(rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Checked at write time: a settings file (or its .gitignore) that became a link to
    # somewhere else is not written through.
    scope = WriteScope(roots=(real_path(path.parent),), protected_ok=True)
    if path.name == "settings.local.json":
        ignore = path.parent / ".gitignore"
        if not ignore.exists() and not ignore.is_symlink():
            write_bytes_checked(ignore, b"settings.local.json\n", scope)
    write_bytes_checked(path, (json.dumps(data, indent=2) + "\n").encode(), scope)


def read_json_object(path: Path, warnings: list[str], max_bytes: int = MAX_SETTINGS_BYTES,
                     unreadable: str = "unreadable settings") -> dict[str, Any] | None:
    """A settings-like JSON file holding an object; None (and a warning naming the file) when
    it is missing, too large, not JSON or not an object. Shared by every config reader."""
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > max_bytes:
            warnings.append(f"{path}: larger than {max_bytes} bytes; ignored")
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.append(f"{path}: {unreadable} ({exc}); ignored")
        return None
    if not isinstance(data, dict):
        warnings.append(f"{path}: must hold a JSON object; ignored")
        return None
    return data


def _strings(value: Any, label: str, warnings: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        warnings.append(f"{label}: expected a list of strings; ignored")
        return []
    return value
