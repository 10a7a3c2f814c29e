"""Which files a shell command names as written: what a checkpoint saves before it runs.

Read from the parsed command (shell_analysis.py), never by running anything: redirect targets,
and the operands of programs known to write their file arguments (a table below). Files the
command changes without naming them (a build, ``git checkout``, a script) are not found here;
docs/sessions.md says so. Computed words (``$f``, globs) cannot be named and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lsp_agent.permissions.shell_analysis import Analysis, Command, analyze

# Devices and descriptors a redirect may name without writing a file.
NOT_FILES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "-"})

Operands = Callable[[list[str]], list[str]]


def _all(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-")]


def _last(args: list[str]) -> list[str]:
    files = _all(args)
    return files[-1:] if len(files) >= 2 else []


def _moved(args: list[str]) -> list[str]:
    return _all(args) if len(_all(args)) >= 2 else []  # sources go, the target changes


def _when_flag(*flags: str) -> Operands:
    """Operands, only when one of ``flags`` (writing in place) is given."""
    def written(args: list[str]) -> list[str]:
        given = any(a in flags or a.startswith(tuple(f + "=" for f in flags)) for a in args)
        return _all(args) if given else []
    return written


def _sed_in_place(args: list[str]) -> list[str]:
    if not any(a == "-i" or a.startswith(("-i", "--in-place")) for a in args):
        return []
    files: list[str] = []
    scripted = False  # a script given with -e/-f: every operand is a file
    skip_next = False
    for a in args:
        if skip_next:
            skip_next = False
        elif a in ("-e", "--expression", "-f", "--file"):
            scripted = skip_next = True
        elif not a.startswith("-"):
            files.append(a)
    return files if scripted else files[1:]  # else the first operand is the script


def _after_subcommand(*subcommands: str) -> Operands:
    def written(args: list[str]) -> list[str]:
        files = _all(args)
        return files[1:] if files and files[0] in subcommands else []
    return written


# Programs that write the files they are given, and which of their operands those are.
WRITERS: dict[str, Operands] = {
    "touch": _all, "rm": _all, "unlink": _all, "shred": _all, "truncate": _all,
    "tee": _all, "dos2unix": _all, "unix2dos": _all,
    "cp": _last, "install": _last, "mv": _moved,
    "sed": _sed_in_place, "perl": _when_flag("-i"),
    "black": _all, "isort": _all, "autopep8": _when_flag("-i", "--in-place"),
    "yapf": _when_flag("-i", "--in-place"), "rustfmt": _all, "gofmt": _when_flag("-w"),
    "clang-format": _when_flag("-i"), "prettier": _when_flag("--write", "-w"),
    "ruff": _after_subcommand("format", "check"),
}


def written_by(command: Command) -> list[str]:
    name = command.name
    operands = WRITERS.get(name or "")
    if operands is None:
        return []
    args = command.static_args()
    if args is None:  # a computed argument: which files is known only at run time
        args = [w.value for w in command.args if w.value is not None]
    return operands(args)


def written_paths(source: str, cwd: Path) -> list[Path]:
    """The regular files (existing or not) ``source`` names as written, absolute, in order."""
    analysis: Analysis = analyze(source)
    named: list[str] = [r.target.value for r in analysis.redirects
                        if r.writes and r.target.value and r.target.value not in NOT_FILES]
    for command in analysis.commands:
        named.extend(written_by(command))
    found: dict[Path, None] = {}
    for raw in named:
        path = Path(os.path.normpath(cwd / os.path.expanduser(raw)))
        if not path.is_dir():  # a folder (``black .``): its files are not named
            found.setdefault(path, None)
    return list(found)
