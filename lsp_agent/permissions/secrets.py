"""Secret files and protected files: two tables, used by every path that reads or writes.

A **secret** file holds credentials or keys. Its content reaches the model only after the user
said yes: Read asks, the shell asks for any command that names one or may reach one (see
``shell_secrets``), Grep leaves them out and says so, code intelligence withholds their lines,
editor context, memory imports and the re-reads after a compaction leave them out.

A **protected** file makes code run later (git hooks, CI workflows, editor tasks and settings,
dev containers, shell start-up files) or controls this agent's permissions: writing it always
asks, in every mode. Secrets are protected too.

Patterns are globs over ``/``-separated paths, compared case-insensitively with the real path
(symlinks and ``..`` resolved):

* without a ``/`` a pattern matches a file name at any depth (``*.pem``);
* with a ``/`` it matches the end of the path (``.github/workflows/**``, ``.vscode/tasks.json``);
* a leading ``/`` or ``~/`` anchors it to that absolute folder;
* ``*`` and ``?`` stay within one name, ``**`` spans folders, ``[abc]`` is a class; a folder
  pattern ``dir/**`` also matches the folder itself, and a trailing ``/`` means ``/**``.

Settings extend the tables (``permissions.secretFiles``, ``permissions.protectedFiles``); they
cannot shrink them, so a cloned repository cannot switch its own protection off.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.untrusted import shown
from lsp_agent.types.globs import glob_to_regex

LOOKS_SECRET = "looks like a secret (credentials or keys)"


@dataclass(frozen=True)
class PathRule:
    pattern: str
    why: str  # completes "<path> ..." in a permission prompt


def _inside(folder: str, why: str) -> PathRule:
    return PathRule(f"{folder}/**", why)


# -- the tables ----------------------------------------------------------------------------

# SSH keys are named id_<algorithm>; a bare ``id_*`` would also catch id_utils.py.
_SECRET_NAMES = (
    ".env*", "*.env", ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials",
    ".my.cnf", ".htpasswd", ".vault-token", ".boto", ".s3cfg", ".dockercfg",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "id_xmss*",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.ppk",
    "credentials", "credentials.*", "*-credentials.json", "service-account*.json",
    "secrets.*", "*.secret", "*.secrets", "*.tfvars", "*.tfstate", "*.tfstate.*",
)
_CREDENTIAL_FOLDERS = (".ssh", ".gnupg", ".aws", ".kube", ".docker", ".azure",
                       ".password-store", ".config/gcloud", ".config/gh")

SECRET_RULES: tuple[PathRule, ...] = (
    *(PathRule(name, LOOKS_SECRET) for name in _SECRET_NAMES),
    *(_inside(folder, f"is inside {folder}, which holds credentials")
      for folder in _CREDENTIAL_FOLDERS),
)
# Committed templates of .env files hold placeholders by convention: reading them, and git
# commands that show them, would otherwise ask in nearly every web project.
SECRET_EXCEPTIONS = (".env.example", ".env.sample", ".env.template", ".env.dist")

_RUNS_CODE = "changing it can run code or leak secrets"
_EDITOR = "is editor configuration: its tasks and settings can run code when the folder opens"
_CI = "is a CI configuration: it runs code with the repository's secrets"
_HOOKS = "defines git hooks, which run code on commit or push"
_STARTUP = "is a configuration file that runs code (shell, git or package-manager start-up)"
_SETTINGS = "is a permission settings file"

PROTECTED_RULES: tuple[PathRule, ...] = (
    *(_inside(folder, f"is inside {folder}: {_RUNS_CODE}")
      for folder in (".git", ".ssh", ".gnupg", ".aws", ".kube", ".docker")),
    _inside(".vscode", _EDITOR), _inside(".idea", _EDITOR), PathRule("*.code-workspace", _EDITOR),
    _inside(".devcontainer", "configures a dev container, which runs commands when it opens"),
    PathRule(".devcontainer.json", "configures a dev container, which runs commands when it "
             "opens"),
    *(_inside(folder, _CI) for folder in (".github/workflows", ".github/actions", ".circleci",
                                          ".buildkite", ".gitlab")),
    *(PathRule(name, _CI) for name in (".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml",
                                       "bitbucket-pipelines.yml", "Jenkinsfile")),
    _inside(".husky", _HOOKS), _inside(".githooks", _HOOKS),
    *(PathRule(name, _HOOKS) for name in (".pre-commit-config.yaml", "lefthook.yml",
                                          ".lefthook.yml", "lefthook-local.yml")),
    PathRule(".lsp-agent/settings*.json", _SETTINGS),
    PathRule(".claude/settings*.json", _SETTINGS),
    _inside(".config/lsp-agent", _SETTINGS),
    *(PathRule(name, _STARTUP) for name in (
        ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
        ".zshenv", ".zprofile", ".zlogin", ".cshrc", ".tcshrc", ".kshrc", ".inputrc",
        ".gitconfig", ".gitmodules", ".gitattributes", ".envrc", ".pythonrc", ".curlrc",
        ".wgetrc", ".yarnrc", ".yarnrc.yml", ".pnpmfile.cjs")),
)


# -- matching ------------------------------------------------------------------------------


def _translate(glob: str) -> str:
    """A glob (see the module docstring) as a regular expression over a '/'-joined path."""
    if glob.endswith("/"):
        glob += "**"
    return glob_to_regex(glob, folder_itself=True)


def _compile(pattern: str) -> re.Pattern[str]:
    text = pattern.strip()
    if text.startswith("~/"):
        text = os.path.expanduser("~") + text[1:]
    if text.startswith("/"):
        return re.compile(_translate(text.lstrip("/")), re.IGNORECASE | re.DOTALL)
    return re.compile("(?:.*/)?" + _translate(text.removeprefix("./")),
                      re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Match:
    rule: PathRule
    subject: str


class PathRules:
    """An ordered table of path rules; the first rule that matches gives the reason."""

    def __init__(self, rules: Iterable[PathRule], exceptions: Iterable[str] = ()):
        self.rules = tuple(rules)
        self._compiled = [(_compile(r.pattern), r) for r in self.rules]
        self._exceptions = [_compile(e) for e in exceptions]

    def match(self, path: str | os.PathLike[str]) -> PathRule | None:
        """The rule matching ``path`` as written (absolute or relative; nothing resolved)."""
        subject = os.fspath(path).replace(os.sep, "/").lstrip("/")
        if any(e.fullmatch(subject) for e in self._exceptions):
            return None
        return next((rule for regex, rule in self._compiled if regex.fullmatch(subject)), None)

    def reason(self, path: Path) -> str | None:
        """Why ``path`` matches, after resolving it to its real path (symlinks followed)."""
        for candidate in _forms(path):
            rule = self.match(candidate)
            if rule is not None:
                return f"{shown(str(path))} {rule.why}"
        return None

    def rg_excludes(self) -> list[str]:
        """ripgrep ``--iglob`` arguments that keep these files out of a search (relative
        patterns only; anchored ones are filtered after the search)."""
        out = []
        for rule in self.rules:
            pattern = rule.pattern.removeprefix("./")
            if pattern.startswith(("/", "~")):
                continue
            pattern = pattern.removesuffix("/**").removesuffix("/")
            out.append("!" + (pattern if "/" not in pattern else "**/" + pattern))
        return out


def _forms(path: Path) -> list[str]:
    """The path as given (absolute) and its real path: a link named like a secret, or a link
    to a secret, both count."""
    absolute = os.path.abspath(os.path.expanduser(os.fspath(path)))
    real = os.path.realpath(absolute)
    return [real] if real == absolute else [absolute, real]


@dataclass(frozen=True)
class FileRules:
    """The secret and protected tables in force for one session."""

    secret: PathRules
    protected: PathRules

    def secret_reason(self, path: Path) -> str | None:
        """Why reading ``path`` needs the user's consent, or None."""
        return self.secret.reason(path)

    def protected_reason(self, path: Path) -> str | None:
        """Why writing ``path`` always needs the user's consent, or None."""
        return self.protected.reason(path) or self.secret.reason(path)

    def is_secret(self, path: Path) -> bool:
        return self.secret_reason(path) is not None


@functools.lru_cache(maxsize=32)
def file_rules(secret_patterns: tuple[str, ...] = (),
               protected_patterns: tuple[str, ...] = ()) -> FileRules:
    """The default tables extended with patterns from the settings."""
    extra_secret = [PathRule(p, f"matches the secret-file pattern {p!r} (settings)")
                    for p in secret_patterns]
    extra_protected = [PathRule(p, f"matches the protected-file pattern {p!r} (settings)")
                       for p in protected_patterns]
    return FileRules(PathRules([*SECRET_RULES, *extra_secret], SECRET_EXCEPTIONS),
                     PathRules([*PROTECTED_RULES, *extra_protected]))


DEFAULT_RULES = file_rules()


def pattern_problem(pattern: str) -> str | None:
    """Why a settings pattern cannot be used, or None."""
    if not pattern.strip() or pattern.strip() in {"/", "~", "~/"}:
        return "an empty pattern would match nothing useful"
    if "\0" in pattern:
        return "a pattern cannot contain NUL"
    return None
