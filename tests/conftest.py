"""Fixtures shared by the in-process tests. End-to-end modules define their own, module-scoped
versions (one server per module), which take precedence by name."""

from __future__ import annotations

import pytest

from lsp_agent.scripted.server import ScriptedModelServer


@pytest.fixture
def model():
    """A scripted model server on loopback with an empty scenario; tests load their own."""
    with ScriptedModelServer({"turns": []}) as server:
        yield server
