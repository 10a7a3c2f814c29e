"""What the server does before it answers initialize, made cheaper without changing what it
answers: the initialization options' defaults without building their validator."""

from __future__ import annotations

import logging

import pytest
from lsprotocol import types as lsp

from lsp_agent.server import protocol as p
from lsp_agent.server.app import create_server


def initialize(options: object) -> lsp.InitializeParams:
    return lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                initialization_options=options)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("options", [None, {}, []])
def test_no_options_give_exactly_the_validated_defaults(options):
    server = create_server()
    server.configure(initialize(options))

    validated = p.InitializationOptions.model_validate({})
    assert server.options.model_dump() == validated.model_dump()
    assert server.options.model_fields_set == validated.model_fields_set == set()
    assert server.permissions.timeout == validated.permission_timeout_seconds
    assert server.applier.timeout == validated.apply_edit_timeout_seconds


def test_given_options_are_validated_and_applied():
    server = create_server()
    server.configure(initialize({"permissionTimeoutSeconds": 5, "pythonLanguageFeatures": False,
                                 "editorSavesAppliedEdits": True}))
    assert server.options.permission_timeout_seconds == 5
    assert server.options.python_language_features is False
    assert server.permissions.timeout == 5 and server.applier.editor_saves is True


def test_invalid_options_are_ignored_with_a_warning(caplog):
    server = create_server()
    with caplog.at_level(logging.WARNING, logger="lsp_agent.server.app"):
        server.configure(initialize({"permissionTimeoutSeconds": -1}))
    assert "ignoring invalid initializationOptions" in caplog.text
    assert server.options.model_dump() == p.InitializationOptions.model_validate({}).model_dump()
