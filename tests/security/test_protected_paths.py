"""Files that make code run later are protected: writing them asks in every mode, acceptEdits
and bypassPermissions included (issue: `.vscode/tasks.json` with `runOn: folderOpen` was
written in acceptEdits without a question)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_agent.permissions import settings as st
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.secrets import DEFAULT_RULES
from lsp_agent.tools.files import Write, WriteInput
from lsp_agent.tools.shell import Bash, BashInput

PROTECTED = [
    ".vscode/tasks.json", ".vscode/settings.json", ".vscode/launch.json", "app.code-workspace",
    ".idea/workspace.xml", ".devcontainer/devcontainer.json", ".devcontainer/Dockerfile",
    ".devcontainer.json", ".github/workflows/ci.yml", ".github/actions/setup/action.yml",
    ".gitlab-ci.yml", ".circleci/config.yml", "Jenkinsfile", ".git/hooks/pre-commit",
    ".git/config", ".husky/pre-push", ".githooks/pre-commit", ".pre-commit-config.yaml",
    "lefthook.yml", ".lsp-agent/settings.json", ".claude/settings.local.json", ".envrc",
    ".bashrc", ".gitattributes", ".yarnrc.yml", ".env", "keys/id_rsa", "sub/.VSCode/TASKS.json",
]
ORDINARY = ["src/tasks.json", "docs/workflows/ci.yml", ".github/CODEOWNERS", "settings.json",
            "vscode/tasks.json", "Makefile", ".env.example"]


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LSP_AGENT_MANAGED_SETTINGS", str(tmp_path / "managed.json"))
    root = tmp_path / "ws"
    root.mkdir()
    return root


def write(gate: PermissionGate, path: Path):
    return gate.evaluate(Write(), WriteInput(path=str(path), content="{}"), path)


@pytest.mark.parametrize("rel", PROTECTED)
@pytest.mark.parametrize("mode", ["default", "acceptEdits", "bypassPermissions"])
def test_writing_a_file_that_runs_code_later_asks(ws, rel, mode):
    verdict = write(PermissionGate(ws, mode), ws / rel)  # type: ignore[arg-type]
    assert (verdict.action, verdict.source) == ("ask", "safety"), verdict


@pytest.mark.parametrize("rel", ORDINARY)
def test_ordinary_files_are_not_protected(ws, rel):
    assert write(PermissionGate(ws, "acceptEdits"), ws / rel).action == "allow"


def test_the_reason_says_why():
    assert "run code when the folder opens" in DEFAULT_RULES.protected_reason(
        Path("/w/.vscode/tasks.json"))
    assert "CI" in DEFAULT_RULES.protected_reason(Path("/w/.github/workflows/x.yml"))
    assert "git hooks" in DEFAULT_RULES.protected_reason(Path("/w/.husky/pre-commit"))


def test_shell_writes_to_protected_files_ask_in_every_mode(ws):
    gate = PermissionGate(ws, "bypassPermissions")
    for command in ("echo '{}' > .vscode/tasks.json", "cat x >> .github/workflows/ci.yml",
                    "echo x > .git/hooks/pre-commit"):
        verdict = gate.evaluate(Bash(), BashInput(command=command), None)
        assert verdict.action == "ask" and "protected" in verdict.reason, command


def test_settings_add_protected_files_and_cannot_remove_them(ws):
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"permissions": {"protectedFiles": ["scripts/deploy.sh", "build/**"],
                         "secretFiles": [".vscode/*"]}}))
    gate = PermissionGate(ws, "acceptEdits", settings=st.load(ws))
    assert write(gate, ws / "scripts" / "deploy.sh").action == "ask"
    assert write(gate, ws / "build" / "out" / "x.js").action == "ask"
    assert write(gate, ws / "src" / "deploy.sh").action == "allow"
    assert write(gate, ws / ".vscode" / "tasks.json").action == "ask"


def test_the_user_settings_file_is_protected_wherever_it_lives(ws, monkeypatch):
    """Even when XDG_CONFIG_HOME is an unusual folder inside the workspace."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(ws / "cfg"))
    gate = PermissionGate(ws, "acceptEdits")
    assert write(gate, st.user_settings_path()).action == "ask"
    assert write(gate, ws / "cfg" / "other" / "settings.json").action == "allow"
