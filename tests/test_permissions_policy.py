"""The permission gate: rules, settings precedence, modes, paths and remembered answers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lsp_agent.permissions import paths
from lsp_agent.permissions import settings as st
from lsp_agent.permissions.hooks import HookOutcome
from lsp_agent.permissions.policy import PermissionGate
from lsp_agent.permissions.rules import Rule, RuleError
from lsp_agent.tools.files import Edit, EditInput, Read, ReadInput
from lsp_agent.tools.shell import Bash, BashInput


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LSP_AGENT_MANAGED_SETTINGS", str(tmp_path / "managed.json"))
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x = 1\n")
    return root


def gate_with(ws: Path, mode: str = "default", **perms) -> PermissionGate:
    settings = st.merge([st.Source("options", None, {"permissions": perms})], ws)
    return PermissionGate(ws, mode, settings=settings)  # type: ignore[arg-type]


def bash(gate: PermissionGate, command: str, hook: HookOutcome | None = None):
    return gate.evaluate(Bash(), BashInput(command=command), None, hook)


def edit(gate: PermissionGate, path: Path):
    args = EditInput(path=str(path), old_string="x", new_string="y")
    return gate.evaluate(Edit(), args, path)


def read(gate: PermissionGate, path: Path):
    return gate.evaluate(Read(), ReadInput(path=str(path)), path)


@pytest.mark.parametrize(("rule", "command", "matches"), [
    ("Bash(git status)", "git status", True),
    ("Bash(git status)", "git status --short", False),
    ("Bash(npm run test:*)", "npm run test", True),
    ("Bash(npm run test:*)", "npm run test:unit --watch", True),
    ("Bash(npm run test:*)", "npm run testify", False),
    ("Bash(git log *)", "git log --oneline", True),
    ("Bash", "anything at all", True),
])
def test_bash_rule_matching(rule, command, matches):
    assert Rule.parse(rule).matches_command(command) is matches


def test_path_rules_are_globs_relative_to_the_workspace(ws):
    rule = Rule.parse("Edit(src/**)", "project", ws)
    assert rule.matches_path(ws / "src" / "deep" / "x.py", ws)
    assert not rule.matches_path(ws / "docs" / "x.md", ws)
    assert Rule.parse("Read(~/.ssh/**)").matches_path(Path.home() / ".ssh" / "id_rsa", ws)
    assert Rule.parse("Read(//etc/*.conf)").matches_path(Path("/etc/x.conf"), ws)
    assert not Rule.parse("Read(//etc/*.conf)").matches_path(Path("/etc/a/x.conf"), ws)


def test_rules_cover_tool_families_and_mcp():
    # Families follow what a tool declares it touches, not a list of names.
    assert Rule.parse("Edit(src/**)").applies_to("Write", "write")
    assert Rule.parse("Read").applies_to("Grep", "read")
    assert not Rule.parse("Read").applies_to("Write", "write")
    assert not Rule.parse("Edit").applies_to("MultiEdit")
    assert Rule.parse("mcp__github").applies_to("mcp__github__create_issue")
    assert Rule.parse("mcp__github__*").applies_to("mcp__github__list")
    assert not Rule.parse("mcp__github").applies_to("mcp__gitlab__list")
    with pytest.raises(RuleError):
        Rule.parse("Bash(unclosed")


@pytest.mark.parametrize("rule", ["Bash", "Bash(*)", "Bash(python:*)", "Bash(sh *)",
                                  "Edit(**)"])
def test_over_broad_allow_rules_are_flagged(ws, rule):
    settings = st.merge([st.Source("user", None, {"permissions": {"allow": [rule]}})], ws)
    assert any("over-broad" in w for w in settings.warnings)


def test_narrow_allow_rule_is_not_flagged(ws):
    settings = st.merge([st.Source("user", None, {"permissions": {
        "allow": ["Bash(npm run test:*)", "Edit(src/**)"]}})], ws)
    assert settings.warnings == []


def test_deny_beats_allow_whatever_the_source(ws):
    gate = gate_with(ws, allow=["Bash(git push:*)"], deny=["Bash(git push:*)"])
    verdict = bash(gate, "git status && git push origin main")
    assert verdict.action == "deny" and "git push" in verdict.reason


def test_allow_rule_lets_a_command_run_and_each_part_is_matched(ws):
    gate = gate_with(ws, allow=["Bash(npm run test:*)"])
    assert bash(gate, "npm run test:unit").action == "allow"
    assert bash(gate, "ls && npm run test").action == "allow"
    assert bash(gate, "npm run test && npm publish").action == "ask"


def test_ask_rule_beats_allow_rule_and_read_only(ws):
    gate = gate_with(ws, allow=["Bash(git log:*)"], ask=["Bash(git log:*)"])
    assert bash(gate, "git log").action == "ask"


def test_dangerous_pattern_asks_with_reason_even_if_allowed(ws):
    gate = gate_with(ws, allow=["Bash(git push:*)"])
    verdict = bash(gate, "git push --force origin main")
    assert verdict.action == "ask" and "rewrites the remote" in verdict.reason


def test_a_danger_is_marked_for_auto_mode_and_an_ordinary_concern_is_not(ws):
    gate = gate_with(ws, "auto")
    assert bash(gate, "git push --force origin main").danger
    assert not bash(gate, "npm install").danger


@pytest.mark.parametrize(("command", "danger"), [
    ("python -c \"import os; os.system('rm -rf ~')\"", True),
    ("python3.11 -c 'import subprocess; subprocess.run([\"make\"])'", True),
    ("node -e 'require(\"child_process\").execSync(\"ls\")'", True),
    ("ruby -e 'puts `id`'", True),
    ("python3 -c 'import json; print(json.dumps({}))'", False),
    ("perl -e 'print 1'", False),
])
def test_inline_code_that_starts_programs_is_a_danger(ws, command, danger):
    # Even allowed by a rule: the program it starts is hidden in a string.
    verdict = bash(gate_with(ws, allow=["Bash(python:*)", "Bash(python3.11:*)", "Bash(node:*)",
                                        "Bash(ruby:*)", "Bash(python3:*)", "Bash(perl:*)"]),
                   command)
    assert (verdict.action == "ask") is danger
    assert ("inline code" in verdict.reason) is danger


@pytest.mark.parametrize(("mode", "expected"), [
    ("default", "ask"), ("acceptEdits", "ask"), ("dontAsk", "deny"),
    ("bypassPermissions", "allow"), ("plan", "deny")])
def test_modes_for_a_shell_command(ws, mode, expected):
    assert bash(gate_with(ws, mode), "npm install").action == expected


def test_plan_mode_refusal_says_plan_mode_is_on(ws):
    verdict = edit(gate_with(ws, "plan"), ws / "src" / "a.py")
    assert verdict.action == "deny" and "Plan mode is on" in verdict.reason


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "dontAsk", "bypassPermissions"])
def test_read_only_shell_never_prompts(ws, mode):
    assert bash(gate_with(ws, mode), "git status && ls src | wc -l").action == "allow"


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "bypassPermissions"])
def test_catastrophic_commands_are_denied_in_every_mode(ws, mode):
    gate = gate_with(ws, mode, allow=["Bash(rm:*)"])
    assert bash(gate, "rm -rf ~").action == "deny"


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "bypassPermissions"])
def test_protected_and_outside_writes_ask_in_every_mode(ws, mode):
    gate = gate_with(ws, mode, allow=["Edit"])
    assert edit(gate, ws / ".git" / "config").action == "ask"
    assert edit(gate, ws / ".env.local").action == "ask"
    assert edit(gate, ws / ".lsp-agent" / "settings.json").action == "ask"
    assert edit(gate, ws.parent / "elsewhere.py").action == "ask"
    assert bash(gate, "echo x > ../outside.txt").action == "ask"


@pytest.mark.parametrize("mode", ["default", "acceptEdits", "bypassPermissions", "auto"])
@pytest.mark.parametrize("command", [
    "rm -rf ../other-project", "cp src/a.py /tmp/copied.py", "rm -rf .git",
    "sed -i s/x/y/ .github/workflows/ci.yml", "touch ~/.bashrc", "mv src/a.py ../moved.py"])
def test_files_a_command_names_as_written_ask_when_outside_or_protected(ws, mode, command):
    """Not only redirections: the operands of rm, cp, mv, sed -i ... (shell_writes' table),
    even when a rule allows the program; the reason is a safety one (auto mode's classifier
    never settles it)."""
    (ws / ".github" / "workflows").mkdir(parents=True)
    (ws / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    verdict = bash(gate_with(ws, mode, allow=["Bash(rm:*)", "Bash(cp:*)", "Bash(mv:*)",
                                              "Bash(sed:*)", "Bash(touch:*)"]), command)
    assert (verdict.action, verdict.source) == ("ask", "safety"), verdict
    assert "outside the workspace" in verdict.reason or "protected" in verdict.reason


def test_files_written_inside_the_workspace_follow_the_rules(ws):
    allowed = gate_with(ws, "default", allow=["Bash(rm:*)", "Bash(cp:*)"])
    assert bash(allowed, "rm -rf build").action == "allow"
    assert bash(allowed, "cp src/a.py src/b.py").action == "allow"
    assert bash(gate_with(ws, "default"), "rm -rf build").action == "ask"


def test_edits_inside_the_workspace_are_proposals(ws):
    assert edit(gate_with(ws, "default"), ws / "src" / "a.py").action == "allow"
    assert edit(gate_with(ws, "dontAsk"), ws / "src" / "a.py").action == "deny"
    assert edit(gate_with(ws, "dontAsk", allow=["Edit(src/**)"]), ws / "src" / "a.py"
                ).action == "allow"


def test_symlink_out_of_the_workspace_is_outside(ws, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("s")
    (ws / "link.txt").symlink_to(secret)
    gate = gate_with(ws)
    assert read(gate, ws / "link.txt").action == "ask"
    assert bash(gate, "cat link.txt").action == "ask"
    assert read(gate, ws / "src" / ".." / "src" / "a.py").action == "allow"


def test_protected_names_are_case_insensitive(ws):
    assert paths.protected_reason(ws / ".GIT" / "HEAD")
    assert paths.secret_reason(ws / "config" / ".ENV")
    assert paths.protected_reason(ws / "src" / "a.py") is None


def test_additional_directories_are_readable(ws, tmp_path):
    extra = tmp_path / "shared"
    extra.mkdir()
    (extra / "doc.md").write_text("d")
    gate = gate_with(ws, additionalDirectories=[str(extra)])
    assert read(gate, extra / "doc.md").action == "allow"
    assert bash(gate, f"cat {extra}/doc.md").action == "allow"


def test_hook_decisions_take_their_place_in_the_order(ws):
    gate = gate_with(ws, deny=["Bash(npm publish)"])
    assert bash(gate, "npm test", HookOutcome("allow")).action == "allow"
    assert bash(gate, "ls", HookOutcome("deny", "no ls today")).action == "deny"
    assert bash(gate, "npm publish", HookOutcome("allow")).action == "deny"
    assert bash(gate, "rm -rf /", HookOutcome("allow")).action == "deny"
    assert bash(gate, "echo x > ~/.bashrc", HookOutcome("allow")).action == "ask"


def test_remember_session_and_project_scopes(ws):
    gate = gate_with(ws)
    args = BashInput(command="ls && npm test")
    assert gate.remember(Bash(), args) == ["Bash(npm test)"]
    assert bash(gate, "npm test && ls").action == "allow"
    other = gate_with(ws)
    other.remember(Bash(), BashInput(command="make lint"), "project")
    local = json.loads(st.local_settings_path(ws).read_text())
    assert local["permissions"]["allow"] == ["Bash(make lint)"]
    assert (ws / ".lsp-agent" / ".gitignore").read_text() == "settings.local.json\n"
    assert bash(PermissionGate(ws, settings=st.load(ws)), "make lint").action == "allow"


def test_settings_precedence_and_claude_files(ws, tmp_path):
    (ws / ".claude").mkdir()
    (ws / ".claude" / "settings.json").write_text(json.dumps(
        {"permissions": {"deny": ["Bash(curl:*)"], "defaultMode": "acceptEdits"}}))
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"permissions": {"defaultMode": "plan", "allow": ["Bash(make:*)"]}}))
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "lsp-agent" / "settings.json"
    user.parent.mkdir(parents=True)
    user.write_text(json.dumps({"permissions": {"defaultMode": "dontAsk"}}))
    loaded = st.load(ws, {"permissions": {"ask": ["Bash(make deploy)"]}})
    assert loaded.default_mode == "plan"  # the lsp-agent project file outranks .claude and user
    gate = PermissionGate(ws, settings=loaded)
    assert bash(gate, "curl -s x").action == "deny"
    assert bash(gate, "make test").action == "allow"
    assert bash(gate, "make deploy").action == "ask"


def test_project_settings_cannot_turn_on_bypass(ws):
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.json").write_text(json.dumps(
        {"permissions": {"defaultMode": "bypassPermissions"}}))
    loaded = st.load(ws)
    assert loaded.default_mode is None and any("bypassPermissions" in w for w in loaded.warnings)


def test_broken_settings_file_is_reported_not_fatal(ws):
    (ws / ".lsp-agent").mkdir()
    (ws / ".lsp-agent" / "settings.json").write_text("{not json")
    loaded = st.load(ws)
    assert any("unreadable settings" in w for w in loaded.warnings)


# Every interpreter the broadness check knows, spelled out: a rule that lets one of them run
# with any arguments lets the model run any code.
INTERPRETERS = ["python", "python3", "node", "bash", "sh", "zsh", "perl", "ruby", "npx", "sudo",
                "env", "xargs", "eval", "exec", "uv", "pipx", "deno", "php", "docker"]


@pytest.mark.parametrize("form", ["Bash({}:*)", "Bash({}*)", "Bash({} *)", "Bash({})"])
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_an_allow_rule_for_any_interpreter_is_too_broad(interpreter, form):
    why = Rule.parse(form.format(interpreter)).broadness()
    assert why is not None and f"allows {interpreter} to run arbitrary code" in why


def test_an_interpreter_rule_with_fixed_arguments_is_narrow():
    assert Rule.parse("Bash(python -m pytest:*)").broadness() is None
    assert Rule.parse("Bash(pythonista:*)").broadness() is None


def test_an_empty_or_star_pattern_is_the_bare_rule():
    assert Rule.parse("Bash(*)") == Rule.parse("Bash") and str(Rule.parse("Bash(*)")) == "Bash"
    assert Rule.parse("Read()") == Rule.parse("Read") and Rule.parse("Edit( * )").pattern is None


@pytest.mark.parametrize(("rule", "path", "matches"), [
    ("Edit(src/**/x.py)", "src/x.py", True),  # "**/" also matches no folder at all
    ("Edit(src/**/x.py)", "src/a/b/x.py", True),
    ("Edit(src/**/x.py)", "src/a/y.py", False),
    ("Edit(src)", "src/deep/a.py", True),  # a folder covers what is inside it
    ("Edit(src)", "srcx/a.py", False),
    ("Edit(src/*.py)", "src/a/b.py", False),  # "*" stops at a slash
    ("Edit(src/?.py)", "src/a.py", True),
    ("Edit(./src/**)", "src/a.py", True),  # "./x" and "/x" are relative to the rule's root
    ("Edit(/src/**)", "src/a.py", True),
])
def test_path_rule_globs(ws, rule, path, matches):
    assert Rule.parse(rule, "project", ws).matches_path(ws / path, ws) is matches


@pytest.mark.parametrize("folder", [".git", ".ssh", ".gnupg", ".aws", ".kube", ".docker"])
def test_writing_into_or_onto_a_protected_folder_asks(ws, folder):
    assert f"inside {folder}" in paths.protected_reason(ws / folder / "config")
    # The folder itself, as the target of `cp key ~/.aws` or `mv x ~/.ssh`.
    assert f"inside {folder}" in paths.protected_reason(ws / folder)


@pytest.mark.parametrize("folder", [".ssh", ".gnupg", ".aws", ".kube", ".docker"])
def test_anything_in_a_credentials_folder_is_a_secret(ws, folder):
    assert "holds credentials" in paths.secret_reason(ws / folder / "config")
    assert "holds credentials" in paths.secret_reason(ws / folder / "sub" / "config")


@pytest.mark.parametrize("name", [
    ".env", ".env.local", "prod.env", ".netrc", ".npmrc", ".pypirc", ".pgpass",
    ".git-credentials", "id_rsa", "id_rsa.pub", "id_dsa", "id_ecdsa", "id_ed25519", "tls.pem",
    "server.key", "cert.p12", "cert.pfx", "store.jks", "app.keystore", "credentials",
    "credentials.json", "vault.kdbx", "secrets.yaml"])
def test_secret_file_names(ws, name):
    assert "looks like a secret" in paths.secret_reason(ws / "config" / name)


def test_ordinary_files_are_not_secrets(ws):
    for name in ["env.py", "keys.py", "README.md", "secret_santa.txt", "credentials_test.py"]:
        assert paths.secret_reason(ws / name) is None, name


@pytest.mark.parametrize("name", [
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv",
    ".zprofile", ".zlogin", ".cshrc", ".tcshrc", ".kshrc", ".inputrc", ".gitconfig",
    ".gitmodules", ".gitattributes", ".envrc", ".pythonrc", ".curlrc", ".wgetrc"])
def test_start_up_files_that_run_code_are_protected(ws, name):
    assert "runs code" in paths.protected_reason(ws / name)


@pytest.mark.parametrize("folder", [".lsp-agent", ".claude"])
def test_permission_settings_files_are_protected(ws, folder):
    for name in ["settings.json", "settings.local.json"]:
        assert "permission settings" in paths.protected_reason(ws / folder / name)


def test_the_users_own_settings_file_is_protected_and_look_alikes_are_not(tmp_path):
    home_config = tmp_path / "home" / ".config"
    assert "permission settings" in paths.protected_reason(
        home_config / "lsp-agent" / "settings.json")
    assert paths.protected_reason(tmp_path / "config" / "settings.json") is None
    assert paths.protected_reason(tmp_path / "lsp-agent" / "notes.txt") is None
    assert paths.protected_reason(home_config / "other-tool" / "settings.json") is None


@pytest.mark.parametrize("command", [
    "find / -delete", "find / -name '*.log' -delete", "find -L ~ -type f -delete",
    "find /usr -exec rm -rf {} +", "find $HOME -execdir rm {} \\;"])
def test_find_deleting_a_system_or_home_folder_is_catastrophic(ws, command):
    gate = gate_with(ws, "bypassPermissions", allow=["Bash"])
    verdict = bash(gate, command)
    assert verdict.action == "deny" and "find" in verdict.reason


@pytest.mark.parametrize("command", ["find . -name '*.pyc' -delete", "find / -name '*.py'",
                                     "find build -exec rm {} +"])
def test_find_elsewhere_or_without_deleting_is_not_catastrophic(ws, command):
    gate = gate_with(ws, "bypassPermissions", allow=["Bash"])
    assert bash(gate, command).action == "allow"


def test_is_inside_resolves_the_roots_always_and_the_path_unless_told_it_is_real(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws = ws.resolve()
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (ws / "escape.txt").symlink_to(outside)
    (tmp_path / "ws-link").symlink_to(ws)
    roots = [tmp_path / "ws-link"]  # a root reached through a link is compared as its target
    assert paths.is_inside(ws / "a.py", roots, resolved=True)
    assert not paths.is_inside(ws / "escape.txt", roots)  # resolved: the link leads out
    # Told it is real, the path is taken as given (the caller resolved it already).
    assert paths.is_inside(ws / "escape.txt", roots, resolved=True)
    # The gate passes the path it already resolved; resolving it again would change nothing.
    assert paths.is_inside(paths.real(ws / "escape.txt"), roots, resolved=True) is False
