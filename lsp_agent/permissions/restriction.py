"""A turn limited to some tools: while a command such as ``/commit`` runs, calls that change
something must match one of its rules (``Bash(git add:*)``, ...), else they are refused.
Read-only calls stay possible. Unlike ``allowed-tools``, which pre-approves, a restriction
forbids everything else; it never allows anything the rest of the gate would not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.rules import Rule
from lsp_agent.permissions.shell_analysis import analyze
from lsp_agent.types.permissions import Subject

UNRESTRICTED_ACCESS = frozenset({"read", "session"})

# Flags a restricted turn never uses, whatever its rules allow (the /commit safety protocol:
# history is never rewritten, the repository's hooks never skipped, ignored files never forced
# in). Keyed by the command and its subcommand.
FORBIDDEN_FLAGS: dict[tuple[str, str], dict[str, str]] = {
    ("git", "commit"): {"--amend": "rewrites the last commit",
                        "--no-verify": "skips the repository's hooks",
                        "-n": "skips the repository's hooks"},
    ("git", "add"): {"-f": "adds files .gitignore excludes (secrets among them)",
                     "--force": "adds files .gitignore excludes (secrets among them)"},
}


@dataclass(frozen=True)
class Restriction:
    label: str  # who restricts, as the model is told (``/commit``)
    rules: tuple[Rule, ...]

    @classmethod
    def parse(cls, label: str, texts: list[str], workspace: Path) -> Restriction:
        return cls(label, tuple(Rule.parse(t, "session", workspace) for t in texts))

    def refusal(self, tool: str, subject: Subject) -> str | None:
        """Why the call is outside the restriction, or None when it may go on to the gate."""
        if subject.access == "shell" and (flag := _forbidden_flag(subject.command or "")):
            return f"while {self.label} runs, {flag}"
        if subject.access in UNRESTRICTED_ACCESS or self._covers(tool, subject):
            return None
        return (f"while {self.label} runs only these may change anything: "
                + ", ".join(str(r) for r in self.rules))

    def _covers(self, tool: str, subject: Subject) -> bool:
        rules = [r for r in self.rules if r.applies_to(tool, subject.access)]
        if subject.access != "shell":
            return any(r.pattern is None for r in rules)
        analysis = analyze(subject.command or "")
        # Every command of the line must be allowed (a pipe or `;` cannot smuggle one in);
        # a line that cannot be judged is refused.
        return analysis.parsed and bool(analysis.commands) and all(
            any(r.matches_command(c.text()) for r in rules) for c in analysis.commands)


def _forbidden_flag(command: str) -> str | None:
    for cmd in analyze(command).commands:
        args = cmd.static_args() or [w.value or "" for w in cmd.args]
        flags = FORBIDDEN_FLAGS.get((cmd.name or "", args[0] if args else ""), {})
        for arg in args[1:]:
            # -n also hides in a cluster of short flags (-anm "msg")
            short = {f"-{c}" for c in arg[1:]} if arg[:1] == "-" and arg[1:2] != "-" else set()
            for flag in ({arg} | short) & flags.keys():
                return f"{cmd.name} {args[0]} {flag} is refused: it {flags[flag]}"
    return None
