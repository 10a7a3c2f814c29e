"""Fixtures shared by the in-process tests. End-to-end modules define their own, module-scoped
versions (one server per module), which take precedence by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from lsp_agent.scripted.server import ScriptedModelServer

# Property tests judge results, never speed: hypothesis's default 200 ms deadline per example
# turns a loaded machine (or a first import compiling its bytecode) into a failure.
settings.register_profile("lsp-agent", deadline=None)
settings.load_profile("lsp-agent")

# Every place our code (or Claude Code's locations, which we honour) looks for user-level
# settings, state or caches. Tests point them all at a fresh folder, so that the developer's
# own settings (a deny rule, a defaultMode, a hook) never change a result; subprocess servers
# inherit the same environment.
_ISOLATED_DIRS = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_DATA_HOME": "home/.local/share",
    "XDG_STATE_HOME": "home/.local/state",
    "XDG_CACHE_HOME": "home/.cache",
    "LSP_AGENT_STATE_DIR": "home/.cache/lsp-agent",
}
_ISOLATED_FILES = {"LSP_AGENT_MANAGED_SETTINGS": "managed-settings.json"}


@pytest.fixture(scope="session")
def _jedi_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared across tests: jedi's cache only speeds things up and holds no settings.
    return tmp_path_factory.mktemp("jedi-cache")


def _isolate(base: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    for name, rel in _ISOLATED_DIRS.items():
        (base / rel).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(base / rel))
    for name, rel in _ISOLATED_FILES.items():
        monkeypatch.setenv(name, str(base / rel))
    monkeypatch.setenv("LSP_AGENT_CACHE_DIR", str(cache))
    # `run` starts no warm server that would outlive a test (tests/test_run_reuse.py turns
    # reuse on, and stops what it started).
    monkeypatch.setenv("LSP_AGENT_RUN_KEEPALIVE", "0")
    # git still needs an identity for the tests that commit in a scratch repository.
    for name, value in {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
                        "GIT_COMMITTER_NAME": "test",
                        "GIT_COMMITTER_EMAIL": "test@example.invalid"}.items():
        monkeypatch.setenv(name, value)
    return base / "home"


@pytest.fixture(scope="session", autouse=True)
def isolated_user_dirs_for_the_session(tmp_path_factory: pytest.TempPathFactory,
                                       _jedi_cache: Path):
    """Module-scoped servers start before any function-scoped fixture runs: without this they
    would inherit the real HOME and read the developer's settings (CI plants hostile ones)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _isolate(tmp_path_factory.mktemp("session-user"), monkeypatch, _jedi_cache)


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                       _jedi_cache: Path, isolated_user_dirs_for_the_session: Path) -> Path:
    # A fresh folder per test as well, so that one test's settings never reach the next.
    return _isolate(tmp_path_factory.mktemp("user"), monkeypatch, _jedi_cache)


@pytest.fixture
def model():
    """A scripted model server on loopback with an empty scenario; tests load their own."""
    with ScriptedModelServer({"turns": []}) as server:
        yield server


def real_home_before_isolation() -> str | None:
    """For the isolation test: HOME as the test run started."""
    return _REAL_HOME


_REAL_HOME = os.environ.get("HOME")
