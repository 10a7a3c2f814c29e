"""Fixtures for the store tests: a state dir and a workspace in temp folders, HOME pointed
at a temp folder too, and a redactor that knows only the secrets a test gives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.store import Redactor, Store


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state", redactor=Redactor())
