"""What a single analysed command means for safety: read-only, dangerous, or catastrophic.

* **catastrophic** patterns are denied in every mode (bypass-immune): wiping the root or home
  folder, formatting disks, fork bombs, powering the machine off.
* **dangerous** patterns ask, with their reason shown to the user, even when a broad allow rule
  matches (only ``bypassPermissions`` lets them run without asking).
* **read-only** commands run without asking in every mode but plan, provided every path they
  touch is inside the workspace roots and none looks like a secret.
"""

from __future__ import annotations

import glob as globlib
import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from lsp_agent.permissions import paths
from lsp_agent.permissions.secrets import DEFAULT_RULES, FileRules
from lsp_agent.permissions.shell_analysis import SHELLS, Analysis, Command, Redirect
from lsp_agent.permissions.shell_writes import written_by

SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
    "/root", "/sbin", "/srv", "/sys", "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/local",
})
RISKY_ENV = frozenset({
    "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PATH", "BASH_ENV", "ENV", "PROMPT_COMMAND",
    "IFS", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL", "GIT_DIR", "PYTHONPATH",
    "PYTHONSTARTUP", "NODE_OPTIONS", "PERL5OPT", "SHELLOPTS",
})
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https"})
INTERPRETERS_READING_STDIN = SHELLS | {"python", "python3", "perl", "ruby", "node", "php"}
HARMLESS_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})
_FORK_BOMB = re.compile(r"([\w:]+)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1")
# Interpreters' inline-code flags, and what in such code starts other programs: a command
# hidden in a string is out of the shell analysis' sight.
INLINE_CODE_FLAGS = {"python": {"-c"}, "python3": {"-c"}, "perl": {"-e", "-E"},
                     "ruby": {"-e"}, "node": {"-e", "--eval", "-p"}, "php": {"-r"}}
_STARTS_PROGRAMS = re.compile(
    r"os\.(system|popen|exec\w*|spawn\w*)|subprocess|pty\.spawn|child_process|"
    r"\b(system|exec|spawn|popen)\s*\(|`[^`]+`|%x[{(\[]|\bIO\.popen")


# -- read-only commands ----------------------------------------------------------------------

def _no_flags(*bad: str) -> Callable[[list[str]], bool]:
    def check(args: list[str]) -> bool:
        return not any(a in bad or any(a.startswith(b + "=") for b in bad if b.startswith("--"))
                       for a in args)
    return check


def _always(args: list[str]) -> bool:
    return True


def _no_args(args: list[str]) -> bool:
    return not args


def _uniq(args: list[str]) -> bool:
    return len([a for a in args if not a.startswith("-")]) <= 1


def _xxd(args: list[str]) -> bool:
    return "-r" not in args and "-revert" not in args and _uniq(args)


def _fd(args: list[str]) -> bool:
    """fd -x/-X (--exec/--exec-batch) runs a command on every file it finds."""
    return not any(a.startswith("--exec") or (a[:1] == "-" and a[:2] != "--"
                                              and set(a[1:]) & {"x", "X"}) for a in args)


# name -> whether these (static) arguments keep it read-only
READ_ONLY: dict[str, Callable[[list[str]], bool]] = {
    **{name: _always for name in (
        "ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "pwd", "echo", "printf",
        "which", "type", "stat", "du", "df", "diff", "cmp", "basename", "dirname",
        "realpath", "readlink", "whoami", "id", "uname", "true", "false", "test", "[", "nl",
        "od", "hexdump", "md5sum", "sha1sum", "sha256sum", "sha512sum", "cksum", "column",
        "jq", "seq", "cd", "ps", "printenv", "nproc", "free", "uptime", "comm", "cut", "tr",
        "rev", "fold", "paste", "strings", "zcat", "ag", "sleep", "tac", "wc", "locale",
    )},
    "fd": _fd,
    "rg": _no_flags("--pre", "--pre-glob"),
    "find": _no_flags("-delete", "-fprint", "-fprint0", "-fprintf", "-fls"),
    "sort": _no_flags("-o", "--output", "--compress-program"),
    "date": _no_flags("-s", "--set"),
    "tree": _no_flags("-o"),
    "file": _no_flags("-C", "--compile"),
    "uniq": _uniq,
    "xxd": _xxd,
    "hostname": _no_args,
    "env": _no_args,
}
_GIT_READ_ONLY = frozenset({
    "status", "log", "diff", "show", "blame", "rev-parse", "ls-files", "ls-tree", "grep",
    "describe", "shortlog", "cat-file", "count-objects", "merge-base", "name-rev", "rev-list",
    "show-ref", "whatchanged", "version", "help",
})
_GIT_LISTING = {  # subcommands that only read when given these arguments
    "branch": {"-a", "-r", "-v", "-vv", "--list", "--show-current", "--all", "--remotes",
               "--merged", "--no-merged", "--contains"},
    "remote": {"-v", "--verbose", "show", "get-url"},
    "tag": {"-l", "--list", "-n"},
    "stash": {"list", "show"},
    "worktree": {"list"},
    "reflog": {"show"},
    "config": {"--get", "--get-all", "--list", "-l", "--get-regexp"},
}
_GIT_WRITING_FLAGS = ("--output", "-o", "--ext-diff", "-O", "--open-files-in-pager", "--exec")


def _git_read_only(args: list[str]) -> bool:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "-C":
            i += 2  # the folder is checked with the other paths
        elif args[i] in {"--no-pager", "--no-optional-locks", "-P"}:
            i += 1
        else:
            return False  # -c, --git-dir, --exec-path=...: could run or redirect anything
    if i >= len(args):
        return False
    sub, rest = args[i], args[i + 1:]
    if any(a.split("=")[0] in _GIT_WRITING_FLAGS for a in rest):
        return False
    if sub in _GIT_READ_ONLY:
        return True
    if sub in _GIT_LISTING:
        allowed = _GIT_LISTING[sub]
        if sub in {"stash", "worktree", "reflog", "remote", "config"}:
            return not rest or rest[0] in allowed
        return all(a in allowed for a in rest)
    return False


def is_read_only(cmd: Command) -> bool:
    """Whether the program and its arguments only read (paths are checked separately)."""
    name, args = cmd.name, cmd.static_args()
    if name is None or cmd.env or cmd.args_from_input:
        return False
    if args is None:
        args = [w.value or "" for w in cmd.args]  # flags are static even if a path is not
    if name == "git":
        return _git_read_only(args)
    check = READ_ONLY.get(name)
    return check is not None and check(args)


# Arguments that are never paths (so `grep /api/ src` does not ask about "/api/").
_NOT_PATHS = frozenset({"echo", "printf", "which", "type", "basename", "dirname", "true",
                        "false", "test", "[", "seq", "sleep", "date", "id", "whoami", "uname",
                        "printenv", "tr", "ps", "jq"})
_PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag"})


def path_arguments(cmd: Command) -> list[tuple[str | None, str]]:
    """(static value or None, source text) of the arguments that may name files."""
    name = cmd.name or ""
    if name in _NOT_PATHS:
        return []
    words = list(cmd.args)
    if name == "git":
        return [(w.value, w.text) for i, w in enumerate(words)
                if i > 0 and words[i - 1].value == "-C"]
    out: list[tuple[str | None, str]] = []
    pattern_pending = name in _PATTERN_FIRST and not any(
        w.value in {"-e", "-f", "--regexp", "--file"} for w in words)
    for word in words:
        value = word.value
        if value is not None and value.startswith("-"):
            if "=" in value:
                out.append((value.split("=", 1)[1], word.text))
            continue
        if pattern_pending:
            pattern_pending = False
            continue
        out.append((value, word.text))
    return out


def path_concerns(cmd: Command, workspace: Path, roots: list[Path]) -> list[str]:
    """Why the files this read-only command touches need the user's consent."""
    concerns = []
    for value, text in path_arguments(cmd):
        if value is None:
            concerns.append(f"{cmd.name}: argument {text} is computed at run time")
            continue
        for target in _expand(value, workspace):
            reason = _read_concern(target, roots)
            if reason:
                concerns.append(f"{cmd.name}: {reason}")
                break
    return concerns


def expand_argument(value: str, workspace: Path) -> list[Path]:
    """The real paths an argument names: itself, or what its glob matches on the disk."""
    return _expand(value, workspace)


def _expand(value: str, workspace: Path) -> list[Path]:
    candidate = paths.real(value, workspace) if not value.startswith("~") else paths.real(value)
    if not any(ch in value for ch in "*?["):
        return [candidate]
    base = Path(value).expanduser()
    pattern = str(base if base.is_absolute() else workspace / base)
    matches = [Path(m) for m in globlib.iglob(pattern, recursive=True, include_hidden=True)]
    return [paths.real(m) for m in matches[:2000]] or [candidate]


def _read_concern(target: Path, roots: list[Path],
                  rules: FileRules = DEFAULT_RULES) -> str | None:
    if str(target) in HARMLESS_DEVICES:
        return None
    if why := paths.process_secret_reason(str(target)):
        return why
    if not paths.is_inside(target, roots):
        return f"{target} is outside the workspace"
    return paths.secret_reason(target, rules)


# -- redirections ----------------------------------------------------------------------------

def redirect_concerns(redirect: Redirect, workspace: Path, roots: list[Path],
                      rules: FileRules = DEFAULT_RULES) -> list[str]:
    """(immune) reasons a redirection needs consent; writes inside the workspace are fine."""
    value = redirect.target.value
    if value is None:
        return [f"redirection to a computed target {redirect.target.text}"]
    if value.startswith(("/dev/tcp/", "/dev/udp/")):
        return [f"redirection opens a network connection ({value})"]
    target = paths.real(value, workspace)
    if str(target) in HARMLESS_DEVICES:
        return []
    if not redirect.writes:
        reason = _read_concern(target, roots, rules)
        return [f"reads {reason}"] if reason else []
    if not paths.is_inside(target, [workspace]):
        return [f"writes {target}, outside the workspace"]
    protected = paths.protected_reason(target, rules)
    return [f"writes a protected file: {protected}"] if protected else []


def named_write_concerns(cmd: Command, workspace: Path, write_roots: list[Path],
                         rules: FileRules = DEFAULT_RULES) -> list[str]:
    """(immune) reasons the files this command names as written (``rm``, ``cp``, ``sed -i``:
    the table in shell_writes.py) need consent: outside the workspace or protected. Asked of
    the user in every mode, never settled by auto mode's classifier, as for a redirection."""
    concerns = []
    for value in written_by(cmd):
        for target in _expand(value, workspace):
            if not paths.is_inside(target, write_roots):
                concerns.append(f"{cmd.name} writes {target}, outside the workspace")
                break
            if protected := paths.protected_reason(target, rules):
                concerns.append(f"{cmd.name} writes a protected file: {protected}")
                break
    return concerns


def process_secret_reads(analysis: Analysis) -> list[str]:
    """(immune) reasons a line reads another process's environment or memory: it names
    ``/proc/<pid>/environ`` or ``mem`` anywhere (also inside strings), or runs ``ps e``. The
    sandbox's own /proc shows no host process, but unsandboxed commands could read them."""
    texts = [analysis.source, *(w.value for c in analysis.commands for w in c.argv if w.value),
             *(r.target.value for r in analysis.redirects if r.target.value)]
    found = [why for text in texts if (why := paths.process_secret_reason(text))]
    for cmd in analysis.commands:
        if cmd.name == "ps" and any(not a.startswith("-") and "e" in a
                                    for a in (w.value or "" for w in cmd.args)):
            found.append("ps e shows the environment of running processes, which can hold "
                         "credentials (the language server's holds its API key)")
    return list(dict.fromkeys(found))


def writes_inside_workspace(analysis: Analysis) -> bool:
    return any(r.writes and r.target.value not in HARMLESS_DEVICES for r in analysis.redirects)


# -- danger ----------------------------------------------------------------------------------

def _flags(args: list[str]) -> set[str]:
    out: set[str] = set()
    for a in args:
        if a.startswith("--"):
            out.add(a)
        elif a.startswith("-") and len(a) > 1:
            out.update("-" + ch for ch in a[1:])
    return out


def _operands(args: list[str]) -> list[str]:
    return [a for a in args if not a.startswith("-") or a == "-"]


def _is_system_target(value: str) -> bool:
    if value in {"~", "~/", "/*", "~/*", "$HOME", "${HOME}", "$HOME/", "$HOME/*"}:
        return True
    expanded = paths.real(value) if value.startswith(("/", "~")) else None
    if expanded is None:
        return False
    return str(expanded) in SYSTEM_DIRS or expanded == Path.home()


def catastrophic(cmd: Command) -> str | None:
    """A reason to deny in every mode, or None."""
    name, args = cmd.name, [w.value if w.value is not None else w.text for w in cmd.args]
    flags = _flags(args)
    if name == "rm" and flags & {"-r", "-R", "--recursive"}:
        if "--no-preserve-root" in flags:
            return "rm --no-preserve-root can delete the whole file system"
        for target in _operands(args):
            if _is_system_target(target):
                return f"rm -r {target} would delete a system or home folder"
    if name == "find" and (reason := _find_deletes_system(args)):
        return reason
    if name in {"chmod", "chown", "chgrp"} and flags & {"-R", "--recursive"}:
        for target in _operands(args)[1:]:
            if _is_system_target(target):
                return f"{name} -R on {target} changes the whole system"
    if name and (name.startswith("mkfs") or name in {"wipefs", "fdisk", "sfdisk", "parted"}):
        return f"{name} rewrites disks or partitions"
    if name == "dd" and any(a.startswith("of=/dev/") and a not in {"of=/dev/null"}
                            for a in args):
        return "dd writing to a device can destroy a disk"
    if name in {"shutdown", "reboot", "halt", "poweroff"} or (name == "init" and args[:1] == ["0"]):
        return f"{name} stops the machine"
    if name == "kill" and "-1" in args[-1:]:
        return "kill -1 signals every process"
    return None


def _find_deletes_system(args: list[str]) -> str | None:
    """find's start points come before its first test or action (``-name``, ``(``, ``!``)."""
    starts = []
    for arg in args:
        if arg.startswith(("-", "(", "!")) and arg not in {"-H", "-L", "-P"}:
            break
        starts.append(arg)
    deletes = "-delete" in args or any(
        action in args and "rm" in args[args.index(action) + 1:args.index(action) + 2]
        for action in ("-exec", "-execdir", "-ok", "-okdir"))
    if not deletes:
        return None
    for start in starts:
        if start not in {"-H", "-L", "-P"} and (start in {"/", "//"} or _is_system_target(start)):
            return f"find {start} ... deleting would wipe a system or home folder"
    return None


def _rm_outside(cmd: Command, args: list[str], workspace: Path) -> str | None:
    for target in _operands(args):
        if not paths.is_inside(paths.real(target, workspace), [workspace]):
            return f"rm deletes {target}, outside the workspace"
    return None


def dangers(cmd: Command, workspace: Path) -> list[str]:
    """Reasons this command needs a careful look; shown in the permission prompt."""
    name = cmd.name
    args = cmd.static_args() or [w.value or "" for w in cmd.args]
    flags = _flags(args)
    found = [f"sets {env} for {name or 'the command'}, changing what actually runs"
             for env in cmd.env if env in RISKY_ENV]
    if name == "rm":
        outside = _rm_outside(cmd, args, workspace)
        if outside:
            found.append(outside)
    if name == "git" and args:
        found += _git_dangers(args, flags)
    if name in {"sudo", "su", "doas", "pkexec"}:
        found.append(f"{name} runs a command with other privileges")
    if name in {"chmod", "chown"} and (flags & {"-R", "--recursive"} or "777" in args
                                       or any("+s" in a for a in args)):
        found.append(f"{name} changes permissions broadly ({' '.join(args)})")
    if name in {"crontab", "systemctl", "launchctl", "at"}:
        found.append(f"{name} schedules or changes system services")
    if name in {"nc", "ncat", "netcat", "socat"} and flags & {"-e", "-c", "--exec"}:
        found.append(f"{name} with -e connects a shell to the network")
    if name == "dd":
        found.append("dd writes raw data")
    if (code := _inline_code(name, args)) and _STARTS_PROGRAMS.search(code):
        found.append(f"{name} runs programs from inline code the shell analysis cannot see into")
    return found


def _inline_code(name: str | None, args: list[str]) -> str | None:
    flags = INLINE_CODE_FLAGS.get(re.sub(r"[\d.]+$", "", name or "")) or set()
    for flag, value in pairwise(args):
        if flag in flags:
            return value
    return None


def _git_dangers(args: list[str], flags: set[str]) -> list[str]:
    sub = next((a for a in args if not a.startswith("-")), "")
    found = []
    if sub == "push" and (flags & {"-f", "--force", "--force-with-lease", "--mirror", "--delete"}
                          or any(a.startswith("+") for a in args)):
        found.append("git push --force rewrites the remote's history")
    if sub == "reset" and "--hard" in flags:
        found.append("git reset --hard discards uncommitted changes")
    if sub == "clean" and flags & {"-f", "--force"}:
        found.append("git clean -f deletes untracked files")
    if sub in {"checkout", "restore"} and ("." in args or "--" in args):
        found.append(f"git {sub} can discard uncommitted changes")
    if sub == "branch" and "-D" in args:
        found.append("git branch -D deletes a branch that may not be merged")
    if sub == "filter-branch" or (sub == "stash" and "clear" in args):
        found.append(f"git {sub} destroys history or stashes")
    return found


def analysis_dangers(analysis: Analysis) -> list[str]:
    """Patterns across the whole line: a download piped into a shell, fork bombs."""
    found = []
    names = {c.name for c in analysis.commands}
    if names & DOWNLOADERS and any(_reads_script_from_stdin(c) for c in analysis.commands):
        found.append("pipes a download into a shell: it runs code nobody has read")
    return found


def is_fork_bomb(source: str) -> bool:
    return _FORK_BOMB.search(source) is not None


def _reads_script_from_stdin(cmd: Command) -> bool:
    if cmd.name not in INTERPRETERS_READING_STDIN:
        return False
    operands = [w for w in cmd.args if not (w.value or "").startswith("-")]
    return not operands or operands[0].value in {None, "-", "/dev/stdin"}
