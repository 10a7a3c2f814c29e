"""The watcher's policy: where its settings come from and whether they are approved, its
budget, its memory of what it tried, and its daily log. Pure data and small files; the server
side (lsp_agent/sessions/watcher.py) runs the test command and the background sessions.

Settings: ``"watch": {"enabled": true, "testCommand": "pytest -x -q", "debounceSeconds": 2,
"maxRunsPerHour": 4, "mode": "auto", "testTimeoutSeconds": 300, "tickSeconds": 300,
"quietSeconds": 5, "dailyCostUsd": 2.0, "speculative": true, "triage": true,
"triageModel": "claude-haiku-4-5", "autoApply": ["format"],
"formatCommand": "ruff format {file}", "lintFixCommand": "ruff check --fix {file}"}`` in the
editor's initialization options or a settings file. Off by default. A watcher from the project's
committed settings (``.lsp-agent/settings.json``, ``.claude/settings.json``) runs only after the
user approved exactly that configuration once (``agent/watchApprove``): a cloned repository
must not run commands on save by itself. The editor's options, user and local settings count
as approval.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.permissions.settings import candidate_files, read_json_object
from lsp_agent.store.layout import atomic_write_json, ensure_private_dir, workspace_slug

APPROVED_SOURCES = frozenset({"options", "managed", "user", "local"})
MODES = frozenset({"auto", "default", "plan"})  # never one that applies edits on its own


@dataclass(frozen=True)
class AutoApplyKind:
    """A kind of change the user may grant to land without review: a command of their own
    (never the model) that rewrites one file."""

    setting: str  # the watch setting holding its command
    label: str  # what the inbox says was done


# The kinds ``watch.autoApply`` may grant; the spelling "lint --fix" is accepted too.
AUTO_APPLY_KINDS: dict[str, AutoApplyKind] = {
    "format": AutoApplyKind("formatCommand", "formatted"),
    "lint-fix": AutoApplyKind("lintFixCommand", "lint fixes applied"),
}
AUTO_APPLY_ALIASES = {"lint --fix": "lint-fix", "lint-fix": "lint-fix", "format": "format"}


@dataclass(frozen=True)
class WatchConfig:
    enabled: bool = False
    test_command: str | None = None
    debounce_seconds: float = 2.0
    max_runs_per_hour: int = 4
    mode: str = "auto"
    test_timeout_seconds: float = 300.0
    tick_seconds: float = 300.0  # the periodic check (runs only if something changed)
    quiet_seconds: float = 5.0  # nothing starts for a file typed in more recently than this
    daily_cost_usd: float = 2.0  # the background sessions' spend per day, then nothing
    speculative: bool = True  # prepare fixes of new error diagnostics before being asked
    # A small model decides whether a failure is worth a fix session: one cheap request that
    # can save a whole session's (flaky, network, environment failures).
    triage: bool = True
    triage_model: str | None = None  # None: the classifier model (classifierModel)
    auto_apply: tuple[str, ...] = ()  # granted kinds (AUTO_APPLY_KINDS), in order
    commands: tuple[tuple[str, str], ...] = ()  # (kind, command) of the granted kinds
    source: str = "options"  # where it came from
    raw: str = "{}"  # its canonical JSON: what an approval is of

    @property
    def needs_approval(self) -> bool:
        return self.source not in APPROVED_SOURCES

    def digest(self) -> str:
        return hashlib.sha256(self.raw.encode()).hexdigest()[:32]


def _auto_apply(data: dict[str, Any], source: str,
                warnings: list[str]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The granted kinds that have a command; each problem becomes a warning."""
    asked = data.get("autoApply", [])
    if not isinstance(asked, list):
        warnings.append(f"{source}: watch.autoApply must be a list; ignored")
        return (), ()
    kinds: list[str] = []
    commands: list[tuple[str, str]] = []
    for name in asked:
        kind = AUTO_APPLY_ALIASES.get(name) if isinstance(name, str) else None
        if kind is None:
            warnings.append(f"{source}: watch.autoApply: {name!r} is not one of "
                            f"{sorted(AUTO_APPLY_KINDS)}; ignored")
            continue
        command = data.get(AUTO_APPLY_KINDS[kind].setting)
        if not isinstance(command, str) or not command.strip():
            warnings.append(f"{source}: watch.autoApply grants {kind!r} but "
                            f"watch.{AUTO_APPLY_KINDS[kind].setting} is not set; ignored")
            continue
        if kind not in kinds:
            kinds.append(kind)
            commands.append((kind, command))
    return tuple(kinds), tuple(commands)


def parse(data: Any, source: str) -> tuple[WatchConfig | None, list[str]]:
    if not isinstance(data, dict):
        return None, [f"{source}: 'watch' must be an object; ignored"]
    warnings: list[str] = []
    mode = data.get("mode", "auto")
    if mode not in MODES:
        warnings.append(f"{source}: watch.mode {mode!r} is not one of {sorted(MODES)}; "
                        "using auto")
        mode = "auto"
    command = data.get("testCommand")
    triage_model = data.get("triageModel")
    if triage_model is not None and not (isinstance(triage_model, str) and triage_model.strip()):
        warnings.append(f"{source}: watch.triageModel must be a model name; using the "
                        "classifier model")
        triage_model = None
    kinds, commands = _auto_apply(data, source, warnings)
    try:
        config = WatchConfig(
            enabled=data.get("enabled") is True,
            test_command=command if isinstance(command, str) and command.strip() else None,
            debounce_seconds=max(0.0, float(data.get("debounceSeconds", 2.0))),
            max_runs_per_hour=max(0, int(data.get("maxRunsPerHour", 4))),
            mode=mode,
            test_timeout_seconds=max(1.0, float(data.get("testTimeoutSeconds", 300.0))),
            tick_seconds=max(1.0, float(data.get("tickSeconds", 300.0))),
            quiet_seconds=max(0.0, float(data.get("quietSeconds", 5.0))),
            daily_cost_usd=max(0.0, float(data.get("dailyCostUsd", 2.0))),
            speculative=data.get("speculative", True) is not False,
            triage=data.get("triage", True) is not False, triage_model=triage_model,
            auto_apply=kinds, commands=commands,
            source=source, raw=json.dumps(data, sort_keys=True))
    except (TypeError, ValueError) as exc:
        return None, [f"{source}: watch: {exc}; ignored"]
    return config, warnings


def load(workspace: Path, options: Any = None) -> tuple[WatchConfig | None, list[str]]:
    """The watcher's settings of the highest source that has any (the editor's options, then
    the settings files in precedence order)."""
    if options is not None:
        return parse(options, "options")
    for kind, path in candidate_files(workspace):
        data = read_json_object(path, [])
        if data is not None and "watch" in data:
            return parse(data["watch"], kind)
    return None, []


class Approvals:
    """Which project watcher configurations the user approved (per workspace, by digest)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "watch" / "approvals.json"

    def _read(self) -> dict[str, str]:
        data = read_json_object(self.path, [])
        return {k: v for k, v in (data or {}).items() if isinstance(v, str)}

    def approved(self, workspace: Path, config: WatchConfig) -> bool:
        return not config.needs_approval or \
            self._read().get(workspace_slug(workspace)) == config.digest()

    def approve(self, workspace: Path, config: WatchConfig) -> None:
        ensure_private_dir(self.path.parent)
        data = self._read()
        data[workspace_slug(workspace)] = config.digest()
        atomic_write_json(self.path, data)


@dataclass
class Budget:
    """At most ``per_hour`` runs in any hour."""

    per_hour: int
    _runs: deque[float] = field(default_factory=deque)

    def take(self, now: float | None = None, keep: int = 0) -> bool:
        """One run, if there is one left besides the ``keep`` reserved for more urgent work."""
        now = time.monotonic() if now is None else now
        while self._runs and now - self._runs[0] >= 3600:
            self._runs.popleft()
        if len(self._runs) + keep >= self.per_hour:
            return False
        self._runs.append(now)
        return True


def failure_key(command: str, output: str) -> str:
    """What makes two failures the same: the command and the output's last lines (timings
    and temp paths vary more at the top)."""
    tail = "\n".join(output.strip().splitlines()[-15:])
    return hashlib.sha256(f"{command}\n{tail}".encode()).hexdigest()[:24]


class DailyLog:
    """One JSON line per decision, one file per day: what it looked at and why it acted."""

    def __init__(self, state_dir: Path, workspace: Path):
        self.folder = Path(state_dir) / "watch" / workspace_slug(workspace)

    def write(self, **record: Any) -> None:
        ensure_private_dir(self.folder)
        now = dt.datetime.now(dt.UTC)
        line = json.dumps({"at": now.isoformat(timespec="seconds"), **record})
        with open(self.folder / f"{now.date().isoformat()}.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")


def today() -> str:
    """The day budgets and logs are counted in (UTC, as the daily log's file names)."""
    return dt.datetime.now(dt.UTC).date().isoformat()


class DailyCost:
    """What the watcher's background sessions cost today, kept in the state dir so that a
    restarted server does not start the day's count again."""

    def __init__(self, state_dir: Path, workspace: Path):
        self.path = Path(state_dir) / "watch" / workspace_slug(workspace) / "cost.json"

    def spent(self, day: str | None = None) -> float:
        data = read_json_object(self.path, []) or {}
        usd = data.get("usd")
        if data.get("day") != (day or today()) or not isinstance(usd, int | float):
            return 0.0
        return float(usd)

    def add(self, usd: float, day: str | None = None) -> float:
        """Adds ``usd`` to the day's total; returns the new total."""
        day = day or today()
        total = self.spent(day) + usd
        ensure_private_dir(self.path.parent)
        atomic_write_json(self.path, {"day": day, "usd": round(total, 6)})
        return total
