"""Keep secrets out of everything the store writes.

Two sources: values the caller registers (the API key, env values of hooks and MCP servers,
secret-looking variables of our own environment) and well-known token shapes. Detection runs on
the serialised line (a few substring checks, one regex); only a line that contains something is
parsed and rebuilt with each string redacted, so a replacement can never break the JSON.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LEN = 8  # shorter values ("1", "true", "debug") would wreck transcripts

# Token shapes that are secrets wherever they appear.
SECRET_PATTERNS: dict[str, str] = {
    "anthropic key": r"sk-ant-[A-Za-z0-9_-]{20,}",
    "openai key": r"sk-(?:proj-)?[A-Za-z0-9_-]{32,}",
    "aws access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "github token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    "slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\n)*?"
                   r"-----END [A-Z ]*PRIVATE KEY-----",
}
# Our own environment variables whose values are secrets (names compared upper-case).
SECRET_ENV_NAMES = ("*API_KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*",
                    "*CREDENTIAL*", "*PRIVATE_KEY*")

_PATTERN = re.compile("|".join(f"(?:{p})" for p in SECRET_PATTERNS.values()))


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self._values: list[str] = []
        self._needles: list[str] = []  # the values as they appear inside a JSON string
        self.add(secrets)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor that knows the secret-looking variables of ``environ`` (default: ours)."""
        env = os.environ if environ is None else environ
        names = [n for n in env if any(fnmatch.fnmatchcase(n.upper(), p)
                                       for p in SECRET_ENV_NAMES)]
        return cls(env[n] for n in names)

    def add(self, secrets: Iterable[str]) -> None:
        for value in secrets:
            if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
                continue
            if value in self._values:
                continue
            self._values.append(value)
            self._needles.append(json.dumps(value, ensure_ascii=False)[1:-1])
        # Longest first: a secret that contains another is masked whole.
        order = sorted(range(len(self._values)), key=lambda i: -len(self._values[i]))
        self._values = [self._values[i] for i in order]
        self._needles = [self._needles[i] for i in order]

    def add_env(self, *envs: Mapping[str, str] | None) -> None:
        """Every value of hook / MCP server ``env`` maps, whatever the variable's name."""
        for env in envs:
            if env:
                self.add(str(v) for v in env.values())

    def contains_secret(self, line: str) -> bool:
        return any(n in line for n in self._needles) or _PATTERN.search(line) is not None

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, MASK)
        return _PATTERN.sub(MASK, value)

    def line(self, line: str) -> str:
        """A serialised JSON line with every secret masked (the same object when clean)."""
        if not self.contains_secret(line):
            return line
        try:
            value = json.loads(line)
        except ValueError:
            return self.text(line)  # not JSON: plain text, masked as text
        return json.dumps(self._walk(value), ensure_ascii=False, separators=(",", ":"))

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        return value
