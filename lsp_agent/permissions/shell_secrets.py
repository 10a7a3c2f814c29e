"""Shell commands that read secret files, by naming them or by reaching them without a name.

Three checks, each a table rather than a chain of cases:

* **named**: every word of a command that may name a file (``cat .env``, ``git show
  HEAD:.env``, ``scp host:.ssh/id_rsa .``, globs such as ``head .e*`` expanded against the disk);
* **WALKERS**: programs that read whatever they find in folders (``grep -r``, ``rg``, ``ag``,
  ``ack``, ``diff -r``, ``find ... -exec cat {}``, ``fd -x``, ``tar``, ``zip -r``, ``cp -r``,
  ``rsync``, ``scp -r``): the folders they would walk are searched for secret files, honouring
  the flags that decide whether hidden files are read (``rg --hidden``/``-uu``) and the name
  filters that limit what is read (``grep --include``, ``rg -g``, ``find -name``);
* **GIT_READERS**: git subcommands that print file contents (``show``, ``log -p``, ``diff``,
  ``grep``, ``cat-file``, ``blame``, ``stash show``, ``reflog -p``, ``whatchanged -p``): their
  ``REV:path`` operands and pathspecs are checked by name, object ids that are blobs ask (their
  file name is unknown), and git itself is asked which files the command would show (the same
  command with ``--name-only``, bounded in time and size, never with content-dependent options
  such as ``-S``/``-G``, so the answer does not depend on what the secret contains).

The reasons returned say which secret files may be read; the gate asks before such a command
runs, in every mode. Walks and git checks are bounded: a walk over more than
``MAX_WALK_ENTRIES`` entries or a git check that fails or takes too long asks as well.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from lsp_agent.permissions.secrets import FileRules
from lsp_agent.permissions.shell_analysis import SHELLS, Command
from lsp_agent.permissions.shell_safety import expand_argument
from lsp_agent.permissions.untrusted import shown

MAX_WALK_ENTRIES = 50_000
MAX_SHOWN = 3  # secret names quoted in one reason
GIT_CHECK_TIMEOUT = 10.0
MAX_GIT_OUTPUT = 32 * 1024 * 1024


# -- arguments -------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A command's arguments split into options (with their values) and operands."""

    options: list[tuple[str, str | None]] = field(default_factory=list)
    operands: list[str | None] = field(default_factory=list)  # None: computed at run time
    after_dashdash: list[str | None] = field(default_factory=list)
    dynamic: bool = False  # some word is computed at run time

    def has(self, *names: str) -> bool:
        return any(name in names for name, _ in self.options)

    def values(self, *names: str) -> list[str | None]:
        return [value for name, value in self.options if name in names]

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.options if n == name)


def parse(words: list[str | None], takes_value: frozenset[str]) -> Parsed:
    """getopt-style: ``-abc`` is three flags unless one takes a value (the rest of the word or
    the next word); ``--name=value``; ``--`` ends the options."""
    out = Parsed(dynamic=any(w is None for w in words))
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word is None or word == "-" or not word.startswith("-"):
            out.operands.append(word)
        elif word == "--":
            out.after_dashdash = words[i:]
            break
        elif word.startswith("--"):
            name, eq, value = word.partition("=")
            if not eq and name in takes_value and i < len(words):
                value, i = words[i] or "", i + 1
            out.options.append((name, value if eq or name in takes_value else None))
        else:
            for j, char in enumerate(word[1:], 1):
                flag = "-" + char
                if flag in takes_value:
                    rest = word[j + 1:]
                    if not rest and i < len(words):
                        rest, i = words[i] or "", i + 1
                    out.options.append((flag, rest))
                    break
                out.options.append((flag, None))
    return out


def _words(cmd: Command) -> list[str | None]:
    return [w.value for w in cmd.args]


# -- walking folders for secret files --------------------------------------------------------


@dataclass(frozen=True)
class WalkPlan:
    roots: list[str]  # folders (as written) the command would walk
    hidden: bool  # whether hidden files and folders are read
    keep: Callable[[str], bool]  # file-name filter: only these files are read


@dataclass(frozen=True)
class Walk:
    found: list[str]  # secret files (relative to the workspace where possible)
    complete: bool  # False: the walk stopped at MAX_WALK_ENTRIES


def walk_for_secrets(plan: WalkPlan, workspace: Path, rules: FileRules) -> Walk:
    found: list[str] = []
    budget = [MAX_WALK_ENTRIES]
    for root in plan.roots:
        base = Path(os.path.expanduser(root))
        base = base if base.is_absolute() else workspace / base
        if not base.is_dir():
            continue  # files are checked by name; missing folders read nothing
        for path in _walk(base, plan.hidden, budget):
            if plan.keep(path.name) and rules.is_secret(path):
                found.append(_relative(path, workspace))
                if len(found) > MAX_SHOWN:
                    return Walk(found, True)
        if budget[0] <= 0:
            return Walk(found, False)
    return Walk(found, True)


def _walk(base: Path, hidden: bool, budget: list[int]) -> Iterator[Path]:
    """Files under ``base`` (not following linked folders), while the budget lasts."""
    for folder, dirs, files in os.walk(base):
        budget[0] -= len(dirs) + len(files)
        if budget[0] <= 0:
            return
        if not hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            files = [f for f in files if not f.startswith(".")]
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name


def _relative(path: Path, workspace: Path) -> str:
    try:
        return path.relative_to(workspace).as_posix()
    except ValueError:
        return str(path)


def _always(parsed: Parsed) -> bool:
    return True


def _any_of(*flags: str) -> Callable[[Parsed], bool]:
    return lambda parsed: parsed.has(*flags)


def _none_of(*flags: str) -> Callable[[Parsed], bool]:
    return lambda parsed: not parsed.has(*flags)


@dataclass(frozen=True)
class Walker:
    """A program that reads the files it finds in the folders it is given."""

    reads: Callable[[Parsed], bool]  # this invocation walks folders and reads what it finds
    hidden: Callable[[Parsed], bool] = _always  # ... including hidden files
    takes_value: frozenset[str] = frozenset()
    pattern_first: bool = False  # the first operand is a pattern, unless one of -e/-f is given
    include: frozenset[str] = frozenset()  # option values: globs of the names it reads
    exclude: frozenset[str] = frozenset()  # option values: globs of the names it skips
    walks_cwd: bool = True  # with no operand it walks the current folder

    def plan(self, cmd: Command) -> WalkPlan | None:
        parsed = parse(_words(cmd), self.takes_value)
        if not self.reads(parsed):
            return None
        operands = parsed.operands + parsed.after_dashdash
        if self.pattern_first and not parsed.has("-e", "-f", "--regexp", "--file") and operands:
            operands = operands[1:]
        roots = [o for o in operands if o is not None]  # computed ones ask elsewhere
        if not operands and self.walks_cwd:
            roots = ["."]
        includes = [v for v in parsed.values(*self.include) if v]
        excludes = [v for v in parsed.values(*self.exclude) if v]
        return WalkPlan(roots, self.hidden(parsed), _name_filter(includes, excludes))


def _name_filter(includes: list[str], excludes: list[str]) -> Callable[[str], bool]:
    """``include`` globs (``!glob`` excludes, as rg writes it) and ``exclude`` globs."""
    positive = [g for g in includes if not g.startswith("!")]
    negative = [g[1:] for g in includes if g.startswith("!")] + excludes

    def keep(name: str) -> bool:
        base = [g.rsplit("/", 1)[-1] for g in positive]
        if positive and not any(fnmatch(name.lower(), g.lower()) for g in base):
            return False
        return not any(fnmatch(name.lower(), g.rsplit("/", 1)[-1].lower()) for g in negative)

    return keep


def _grep_recurses(parsed: Parsed) -> bool:
    return parsed.has("-r", "-R", "--recursive", "--dereference-recursive") or \
        "recurse" in parsed.values("-d", "--directories")


def _rg_hidden(parsed: Parsed) -> bool:
    # -uu (or --unrestricted twice) is --no-ignore --hidden; -. is --hidden.
    return parsed.has("--hidden", "-.") or parsed.count("-u") + parsed.count("--unrestricted") >= 2


_GREP_VALUES = frozenset({
    "-e", "-f", "-m", "-A", "-B", "-C", "-d", "-D", "--regexp", "--file", "--max-count",
    "--after-context", "--before-context", "--context", "--include", "--exclude",
    "--exclude-dir", "--exclude-from", "--directories", "--devices", "--label",
    "--binary-files", "--group-separator"})
_RG_VALUES = frozenset({
    "-e", "-f", "-g", "-t", "-T", "-A", "-B", "-C", "-m", "-j", "-M", "-E", "-r", "-d",
    "--regexp", "--file", "--glob", "--iglob", "--type", "--type-not", "--type-add",
    "--type-clear", "--after-context", "--before-context", "--context", "--max-count",
    "--threads", "--max-columns", "--encoding", "--replace", "--max-depth", "--max-filesize",
    "--sort", "--sortr", "--ignore-file", "--path-separator", "--colors", "--color",
    "--context-separator", "--field-match-separator", "--field-context-separator",
    "--pre", "--pre-glob", "--dfa-size-limit", "--regex-size-limit", "--engine"})
_AG_VALUES = frozenset({"-A", "-B", "-C", "-G", "-g", "-m", "-p", "--file-search-regex",
                        "--max-count", "--depth", "--path-to-ignore", "--ignore",
                        "--ignore-dir", "--context", "--after", "--before", "--pager"})
_DIFF_VALUES = frozenset({"-x", "-X", "-I", "-S", "-F", "-C", "-U", "-W", "--exclude",
                          "--exclude-from", "--ignore-matching-lines", "--starting-file",
                          "--label", "--from-file", "--to-file", "--horizon-lines"})
_FD_VALUES = frozenset({"-x", "-X", "--exec", "--exec-batch", "-e", "-t", "-E", "-d", "-j",
                        "-S", "-c", "--extension", "--type", "--exclude", "--max-depth",
                        "--threads", "--size", "--changed-within", "--changed-before",
                        "--color", "--base-directory", "--search-path"})
_TAR_VALUES = frozenset({"-f", "-C", "-T", "-X", "-b", "-H", "-V", "--file", "--directory",
                         "--files-from", "--exclude-from", "--format", "--transform"})
_CP_VALUES = frozenset({"-t", "-S", "--target-directory", "--suffix", "--backup"})
_RSYNC_VALUES = frozenset({"-e", "--rsh", "--exclude", "--include", "--filter", "-f",
                           "--exclude-from", "--include-from", "--files-from", "--chmod"})

WALKERS: dict[str, Walker] = {
    **{name: Walker(reads=_grep_recurses, takes_value=_GREP_VALUES, pattern_first=True,
                    include=frozenset({"--include"}), exclude=frozenset({"--exclude"}),
                    walks_cwd=True)
       for name in ("grep", "egrep", "fgrep")},
    "rg": Walker(reads=_none_of("--files", "--type-list"), hidden=_rg_hidden,
                 takes_value=_RG_VALUES, pattern_first=True,
                 include=frozenset({"-g", "--glob", "--iglob"})),
    "ag": Walker(reads=_none_of("-g", "--list-file-types"),
                 hidden=_any_of("--hidden", "-u", "--unrestricted"),
                 takes_value=_AG_VALUES, pattern_first=True),
    "ack": Walker(reads=_none_of("-f", "-g", "--help-types"), takes_value=_AG_VALUES,
                  pattern_first=True),
    "diff": Walker(reads=_any_of("-r", "--recursive"), takes_value=_DIFF_VALUES,
                   exclude=frozenset({"-x", "--exclude"}), walks_cwd=False),
    "fd": Walker(reads=_any_of("-x", "-X", "--exec", "--exec-batch"),
                 hidden=_any_of("-H", "--hidden", "-u", "--unrestricted"),
                 takes_value=_FD_VALUES, pattern_first=True),
    "tar": Walker(reads=_none_of("-x", "--extract", "--get", "-t", "--list"),
                  takes_value=_TAR_VALUES, walks_cwd=False),
    "zip": Walker(reads=_any_of("-r", "--recurse-paths", "-R"), walks_cwd=False,
                  takes_value=frozenset({"-x", "-i", "-b", "-t", "-tt", "-P", "-n"})),
    "cp": Walker(reads=_any_of("-r", "-R", "-a", "--recursive", "--archive"),
                 takes_value=_CP_VALUES, walks_cwd=False),
    "rsync": Walker(reads=_always, takes_value=_RSYNC_VALUES, walks_cwd=False),
    "scp": Walker(reads=_any_of("-r"), walks_cwd=False,
                  takes_value=frozenset({"-P", "-i", "-o", "-F", "-c", "-l", "-S", "-J"})),
}


@dataclass(frozen=True)
class FindWalker:
    """``find ROOTS EXPR -exec PROGRAM ... {} ...``: the program reads every file find selects."""

    execs: frozenset[str] = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
    name_tests: frozenset[str] = frozenset({"-name", "-iname"})
    plain_tests: frozenset[str] = frozenset({"-type", "-maxdepth", "-mindepth", "-newer",
                                             "-mtime", "-mmin", "-size", "-user", "-perm"})

    def plan(self, cmd: Command) -> WalkPlan | None:
        words = _words(cmd)
        if not self._execs_with_file(words):
            return None
        roots = []
        for word in words:
            if word is None or word.startswith(("-", "(", "!")):
                break
            roots.append(word)
        return WalkPlan(roots or ["."], True, self._name_filter(words[len(roots):]))

    def _execs_with_file(self, words: list[str | None]) -> bool:
        inside = False
        for word in words:
            if word in self.execs:
                inside = True
            elif word in {";", "+"}:
                inside = False
            elif inside and (word is None or "{}" in word):
                return True
        return False

    def _name_filter(self, expression: list[str | None]) -> Callable[[str], bool]:
        """A conjunction of -name tests limits what -exec sees; anything else (``-o``, ``!``,
        ``-path``, ``-regex``, parentheses) is not followed: every file may be read."""
        names, i = [], 0
        while i < len(expression):
            word = expression[i]
            if word in self.execs:
                break
            if word in self.name_tests and i + 1 < len(expression):
                value = expression[i + 1]
                if value is None:
                    return lambda name: True
                names.append(value)
                i += 2
            elif word in self.plain_tests:
                i += 2
            elif word in {"-print", "-print0", "-a", "-and"}:
                i += 1
            else:
                return lambda name: True
        return lambda name: all(fnmatch(name.lower(), n.lower()) for n in names)


FIND = FindWalker()


def _walk_concerns(cmd: Command, workspace: Path, rules: FileRules) -> list[str]:
    spec = FIND if cmd.name == "find" else WALKERS.get(cmd.name or "")
    plan = spec.plan(cmd) if spec is not None else None
    if plan is None:
        return []
    walk = walk_for_secrets(plan, workspace, rules)
    if not walk.complete:
        return [f"{cmd.text()} walks more than {MAX_WALK_ENTRIES:,} files and folders; "
                "they may include secret files"]
    if walk.found:
        return [f"{cmd.text()} may read secret files ({_names(walk.found)})"]
    return []


def _names(found: list[str]) -> str:
    more = ", ..." if len(found) > MAX_SHOWN else ""
    return ", ".join(shown(f) for f in found[:MAX_SHOWN]) + more


# -- naming secret files ---------------------------------------------------------------------

# Programs whose words are not file names, or whose inner commands are judged on their own.
_NO_PATH_WORDS = frozenset({"echo", "printf", "which", "type", "true", "false", "test", "[",
                            "seq", "sleep", "date", "id", "whoami", "uname", "printenv", "ps",
                            "eval", "alias", "basename", "dirname"}) | SHELLS
_PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "ack"})


_GREP_NOT_FILES = frozenset({
    "-e", "--regexp", "--include", "--exclude", "--exclude-dir", "-m", "--max-count", "-A",
    "-B", "-C", "--context", "--after-context", "--before-context", "-d", "--directories", "-D",
    "--devices", "--label", "--binary-files", "--color", "--colour", "--group-separator"})
# Options whose value is a pattern, a name filter or a number, not a file that is read.
_NOT_FILES: dict[str, frozenset[str]] = {
    "grep": _GREP_NOT_FILES, "egrep": _GREP_NOT_FILES, "fgrep": _GREP_NOT_FILES,
    "rg": _RG_VALUES - {"-f", "--file", "--ignore-file", "--pre"},
    "ag": _AG_VALUES - {"-p", "--path-to-ignore"},
    "ack": _AG_VALUES - {"-p", "--path-to-ignore"},
    "fd": _FD_VALUES - {"--base-directory", "--search-path"},
    "find": frozenset({
        "-name", "-iname", "-path", "-ipath", "-regex", "-iregex", "-wholename", "-iwholename",
        "-lname", "-ilname", "-type", "-xtype", "-perm", "-user", "-group", "-size", "-mtime",
        "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-maxdepth", "-mindepth", "-printf",
        "-uid", "-gid", "-links", "-inum", "-fstype", "-regextype"}),
    "git": frozenset({"-m", "--message", "--grep", "--author", "--committer", "-S", "-G",
                      "--format", "--pretty", "-e", "--since", "--until", "--after",
                      "--before", "-n", "--max-count", "--date"}),
}


def file_words(cmd: Command) -> list[tuple[str | None, str]]:
    """(static value or None when computed, source text) of the words of ``cmd`` that may
    name a file: not patterns, name filters or other option values."""
    if cmd.name in _NO_PATH_WORDS:
        return []
    not_files = _NOT_FILES.get(cmd.name or "", frozenset())
    pattern_pending = cmd.name in _PATTERN_FIRST and not any(
        w.value in {"-e", "-f", "--regexp", "--file"}
        or (w.value or "").startswith(("--regexp=", "--file=")) for w in cmd.args)
    out: list[tuple[str | None, str]] = []
    skip = False
    for word in cmd.args:
        value = word.value
        if skip or value == "":
            skip = False
            continue
        if value is not None and value.startswith("-") and value != "-":
            name, eq, rest = value.partition("=")
            if name in not_files:
                skip = not eq
            elif eq:
                out.append((rest, word.text))
            continue
        if pattern_pending:
            pattern_pending = False
            continue
        out.append((value, word.text))
    return out


def named_paths(cmd: Command) -> list[str]:
    """The static words that may name a file; ``REV:path`` and ``host:path`` give their path
    part too."""
    out = []
    for value, _ in file_words(cmd):
        if value:
            if ":" in value:
                out.append(value.rsplit(":", 1)[1])
            out.append(value)
    return [v for v in out if v]


# Programs that print (or copy) the content of the files they are given.
CONTENT_READERS = frozenset({
    "cat", "head", "tail", "less", "more", "grep", "egrep", "fgrep", "rg", "ag", "ack",
    "strings", "od", "hexdump", "xxd", "base64", "sort", "uniq", "nl", "tac", "cut", "paste",
    "jq", "cp", "scp", "rsync", "tar", "zip", "diff", "cmp", "comm", "fold", "rev", "column",
    "zcat", "bat", "awk", "sed", "tee", "dd", "python", "python3", "perl", "ruby", "node"})


def _unknown_file_concerns(cmd: Command) -> list[str]:
    """A reader whose files are known only at run time may be given a secret."""
    if cmd.name not in CONTENT_READERS:
        return []
    if cmd.args_from_input:
        return [f"{cmd.text()} reads the files named on its input ({cmd.via}); they may be "
                "secret files"]
    computed = next((text for value, text in file_words(cmd) if value is None), None)
    if computed is not None:
        return [f"{cmd.name}: the argument {computed} is computed at run time and may name a "
                "secret file"]
    return []


# Programs that show only names and metadata of the files they are given (find and fd with
# -exec/-x are walkers, checked below).
NAMES_ONLY = frozenset({"ls", "stat", "du", "realpath", "readlink", "file", "tree", "find",
                        "fd", "basename", "dirname"})


def _named_concerns(cmd: Command, workspace: Path, rules: FileRules) -> list[str]:
    if cmd.name in NAMES_ONLY:
        return []  # `ls .env` shows no content (outside bypassPermissions it still asks)
    for value in named_paths(cmd):
        for target in [workspace / os.path.expanduser(value), *expand_argument(value, workspace)]:
            if reason := rules.secret_reason(target):
                return [f"{cmd.name}: {reason}"]
    return []


# -- git -------------------------------------------------------------------------------------

_LOG_VALUES = frozenset({"-n", "--max-count", "--skip", "--author", "--committer", "--grep",
                         "--since", "--until", "--after", "--before", "-S", "-G", "-L",
                         "--min-parents", "--max-parents", "--encoding"})
_GIT_GREP_VALUES = frozenset({"-e", "-f", "-A", "-B", "-C", "-m", "--max-depth",
                              "--max-count", "--threads", "--context", "--after-context",
                              "--before-context"})
# Options that change how (not which) content is shown, or select commits by their content:
# dropped from the names-only check so that its answer does not depend on secret content.
_FORMAT_OPTIONS = ("-p", "-u", "--patch", "-U", "--unified", "--stat", "--numstat",
                   "--shortstat", "--dirstat", "--summary", "--patch-with-stat",
                   "--patch-with-raw", "--raw", "--name-status", "--name-only",
                   "--compact-summary", "--color", "--no-color", "--format", "--pretty",
                   "--oneline", "-s", "--no-patch", "--word-diff", "--word-diff-regex",
                   "--color-words", "--graph", "-S", "-G", "--pickaxe-all", "--pickaxe-regex",
                   "--find-object", "--notes", "--show-notes", "--show-signature",
                   "--log-size", "--abbrev", "--decorate", "--source", "--binary",
                   "--full-index", "--check", "-z", "--quiet", "--exit-code", "-W",
                   "--function-context", "--line-prefix", "--src-prefix", "--dst-prefix",
                   "--no-prefix", "--output-indicator-new", "--output-indicator-old",
                   "--output-indicator-context", "--textconv", "--ext-diff")
_NO_CONTENT = ("--stat", "--numstat", "--shortstat", "--dirstat", "--summary", "--raw",
               "--name-only", "--name-status", "--compact-summary", "-s", "--no-patch",
               "--quiet")
_PATCH = ("-p", "-u", "--patch", "-U", "--unified", "--word-diff", "--color-words", "--cc",
          "-c", "-L", "-S", "-G", "--patch-with-stat", "--patch-with-raw", "-W",
          "--function-context")


def _shows_patch(parsed: Parsed) -> bool:
    return parsed.has(*_PATCH)


def _shows_unless_names_only(parsed: Parsed) -> bool:
    return not parsed.has(*_NO_CONTENT) or _shows_patch(parsed)


@dataclass(frozen=True)
class GitReader:
    """A git subcommand that may print the contents of files."""

    shows_content: Callable[[Parsed], bool]
    listing: str  # how to ask git which files it would show: log, show, diff, stash, grep,
    #               cat-file, or named (the paths named on the command line are all it reads)
    takes_value: frozenset[str] = _LOG_VALUES


GIT_READERS: dict[str, GitReader] = {
    "show": GitReader(_shows_unless_names_only, "show"),
    "log": GitReader(_shows_patch, "log"),
    "whatchanged": GitReader(_shows_patch, "log"),
    "reflog": GitReader(_shows_patch, "log"),
    "diff": GitReader(_shows_unless_names_only, "diff"),
    "stash": GitReader(_always, "stash"),
    "grep": GitReader(_always, "grep", _GIT_GREP_VALUES),
    "cat-file": GitReader(_always, "cat-file", frozenset()),
    "archive": GitReader(_always, "archive", frozenset({"-o", "--output", "--prefix",
                                                       "--format", "--remote", "--exec"})),
    "blame": GitReader(_always, "named", frozenset({"-L", "-S", "--contents", "-C", "-M"})),
    "annotate": GitReader(_always, "named", frozenset({"-L", "-S", "--contents"})),
}


@dataclass(frozen=True)
class GitCall:
    cwd: Path
    options: list[str]  # before the subcommand (-C is applied to cwd)
    sub: str
    rest: list[str | None]


def _git_call(cmd: Command, workspace: Path) -> GitCall | None:
    words = _words(cmd)
    cwd, i, options = workspace, 0, []
    while i < len(words) and (words[i] or "").startswith("-"):
        if words[i] == "-C" and i + 1 < len(words):
            folder = words[i + 1]
            if folder is None:
                return None
            cwd = cwd / os.path.expanduser(folder)  # an absolute folder replaces cwd
            i += 2
            continue
        if words[i] not in {"--no-pager", "-P"}:
            options.append(words[i] or "")
        i += 1
    if i >= len(words) or words[i] is None:
        return None
    return GitCall(cwd, options, words[i] or "", words[i + 1:])


def _git_concerns(cmd: Command, workspace: Path, rules: FileRules) -> list[str]:
    call = _git_call(cmd, workspace)
    reader = GIT_READERS.get(call.sub) if call is not None else None
    if call is None or reader is None:
        return []
    rest = call.rest
    if call.sub == "stash":
        if not rest or rest[0] != "show":
            return []
        rest = rest[1:]
    if call.sub == "reflog" and rest and rest[0] == "show":
        rest = rest[1:]
    parsed = parse(rest, reader.takes_value)
    label = f"git {call.sub}"
    if not reader.shows_content(parsed):
        return []
    if parsed.dynamic:
        return [f"{label} shows file contents and an argument is computed at run time; "
                "it may show secret files"]
    if not _in_repository(call.cwd):
        return []
    checker = _GitChecker(call, [w or "" for w in rest], parsed, rules, reader)
    try:
        found = checker.secret_files()
    except BlobOperand as exc:
        return [f"{label} prints the object {exc}, a file's content whose name git does not "
                "show; it may be a secret file"]
    except GitCheckFailed as exc:
        return [f"{label}: could not check which files it would show ({exc}); it may show "
                "secret files"]
    if found:
        return [f"{label} may show secret files ({_names(found)})"]
    return []


def _in_repository(folder: Path) -> bool:
    if os.environ.get("GIT_DIR"):
        return True
    current = Path(os.path.abspath(folder))
    return any((candidate / ".git").exists() for candidate in (current, *current.parents))


class GitCheckFailed(Exception):
    """git could not say which files a command would show."""


class BlobOperand(Exception):
    """An operand names a blob: file content whose file name git does not show."""


_FORMAT_LETTERS = frozenset("pusWz")
_ATTACHED_FORMAT = ("-U", "-S", "-G")


def _is_format_option(token: str) -> bool:
    if token.startswith("--"):
        return token.split("=", 1)[0] in _FORMAT_OPTIONS
    if token.startswith(_ATTACHED_FORMAT):
        return True
    return len(token) > 1 and set(token[1:]) <= _FORMAT_LETTERS


@dataclass
class _GitChecker:
    call: GitCall
    words: list[str]  # the arguments after the subcommand, as written
    parsed: Parsed
    rules: FileRules
    reader: GitReader

    def secret_files(self) -> list[str]:
        if self.reader.listing == "cat-file" and self.parsed.has(
                "--batch", "--batch-command", "--batch-all-objects"):
            raise GitCheckFailed("it prints the objects named on its input")
        if self.parsed.has("--no-index"):
            return []  # plain files named on the command line: checked by name
        operands = [o for o in self.parsed.operands if o is not None]
        if self.reader.listing == "grep" and not self.parsed.has("-e", "-f"):
            operands = operands[1:]  # the pattern
        paths = [o for o in operands if (self.call.cwd / o).exists()]
        revs = [o for o in operands if o not in paths]
        pathspecs = paths + [p for p in self.parsed.after_dashdash if p is not None]
        blobs = self._objects([r for r in revs if ":" not in r], "blob")
        if blobs:
            raise BlobOperand(shown(blobs[0]))
        lister = getattr(self, f"_list_{self.reader.listing.replace('-', '_')}")
        return self._secret(lister(revs, pathspecs))

    # -- which files git would show: the same command, names only ----------------------------

    def _list_log(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        if self.parsed.has("-L"):
            return iter(())  # only the -L files, which are named on the command line
        if self.call.sub == "reflog":
            return self._names(["log", "-g", "--format=", *self._kept(), *revs], pathspecs)
        return self._names([self.call.sub, "--format=", *self._kept(), *revs], pathspecs)

    def _list_show(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        commits = [r for r in revs if ":" not in r]
        if revs and not commits:
            return iter(())  # REV:path operands only: checked by name
        trees = set(self._objects(commits, "tree"))
        commits = [c for c in commits if c not in trees] or ([] if commits else ["HEAD"])
        if not commits:
            return iter(())  # tree listings show names only
        return self._names(["log", "--no-walk=unsorted", "--cc", "--format=", *self._kept(),
                            *commits], pathspecs)

    def _list_diff(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        if any(":" in r for r in revs):
            return iter(())  # blob against blob, both named by path
        return self._names(["diff", *self._kept(), *revs], pathspecs)

    def _list_stash(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        untracked = [w for w in self.words if w in {"-u", "--include-untracked",
                                                    "--only-untracked"}]
        kept = [w for w in self._kept() if w not in untracked]
        return self._run(["stash", "show", "--name-only", "-z", "--no-ext-diff",
                          "--no-textconv", *untracked, *kept, *revs])

    def _list_grep(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        if revs:
            return (name for rev in revs for name in
                    self._run(["ls-tree", "-r", "--name-only", "-z", rev, "--", *pathspecs]))
        if self.parsed.has("--untracked"):
            excluded = [] if self.parsed.has("--no-exclude-standard") else ["--exclude-standard"]
            untracked = ["--others", *excluded]
        else:
            untracked = []
        return self._run(["ls-files", "-z", "--cached", *untracked, "--", *pathspecs])

    def _list_archive(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        if self.parsed.has("--remote"):
            raise GitCheckFailed("it reads another repository")
        return self._list_grep(revs, pathspecs)

    def _list_cat_file(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        return iter(())  # REV:path operands are checked by name, blobs above

    def _list_named(self, revs: list[str], pathspecs: list[str]) -> Iterator[str]:
        return iter(())  # blame reads the one file it names

    # -- helpers -----------------------------------------------------------------------------

    def _kept(self) -> list[str]:
        """The user's options as written, minus those that change how content is shown or
        select commits by their content (so the answer does not depend on a secret's
        content); operands and pathspecs are passed separately."""
        out, i = [], 0
        while i < len(self.words):
            token = self.words[i]
            i += 1
            if token == "--":
                break
            if not token.startswith("-") or token == "-":
                continue
            value = []
            if token in self.reader.takes_value and i < len(self.words):
                value, i = [self.words[i]], i + 1
            if not _is_format_option(token):
                out += [token, *value]
        return out

    def _names(self, args: list[str], pathspecs: list[str]) -> Iterator[str]:
        return self._run([args[0], "--name-only", "-z", "--no-ext-diff", "--no-textconv",
                          "--no-color", *args[1:], "--", *pathspecs])

    def _objects(self, revs: list[str], kind: str) -> list[str]:
        """The revisions (ranges split into their ends) that name an object of this kind."""
        parts = []
        for rev in revs:
            for part in rev.replace("...", "..").split(".."):
                part = part.lstrip("^").removesuffix("^!").removesuffix("^@")
                if part:
                    parts.append((rev, part))
        if not parts:
            return []
        answer = b"".join(self._run_raw(["cat-file", "--batch-check"],
                                        "".join(p + "\n" for _, p in parts).encode()))
        lines = answer.decode("utf-8", "replace").splitlines()
        return [rev for (rev, _), line in zip(parts, lines, strict=False)
                if line.split(" ")[1:2] == [kind]]

    def _secret(self, names: Iterator[str]) -> list[str]:
        found: list[str] = []
        for name in names:
            if name and name not in found and \
                    self.rules.secret.match(os.path.join(self.call.cwd, name)):
                found.append(name)
                if len(found) > MAX_SHOWN:
                    break
        return found

    def _run(self, args: list[str]) -> Iterator[str]:
        pending = b""
        for chunk in self._run_raw(args):
            pending += chunk
            *names, pending = pending.split(b"\0")
            for name in names:
                yield name.decode("utf-8", "surrogateescape")
        if pending:
            yield pending.decode("utf-8", "surrogateescape")

    def _run_raw(self, args: list[str], stdin: bytes | None = None) -> Iterator[bytes]:
        argv = ["git", "--no-pager", *self.call.options, "-c", "core.fsmonitor=false", *args]
        return run_bounded(argv, self.call.cwd, stdin)


def run_bounded(argv: list[str], cwd: Path, stdin: bytes | None = None) -> Iterator[bytes]:
    """Run a checking command: its output in chunks; killed after GIT_CHECK_TIMEOUT seconds,
    when the reader stops early, or beyond MAX_GIT_OUTPUT bytes. Raises GitCheckFailed when it
    cannot run, fails or runs out of time or room."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise GitCheckFailed(f"cannot run git: {exc.strerror or exc}") from None
    timer = threading.Timer(GIT_CHECK_TIMEOUT, proc.kill)
    timer.start()
    finished = False
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(stdin or b"")
            proc.stdin.close()
        except BrokenPipeError:
            pass
        size = 0
        while chunk := proc.stdout.read(65536):
            size += len(chunk)
            if size > MAX_GIT_OUTPUT:
                raise GitCheckFailed("too much to check")
            yield chunk
        errors = proc.stderr.read(4096).decode("utf-8", "replace").strip()
        proc.wait()
        finished = True
        if not timer.is_alive() and proc.returncode != 0:
            raise GitCheckFailed(f"no answer within {GIT_CHECK_TIMEOUT:g} s")
        if proc.returncode != 0:
            raise GitCheckFailed(errors.splitlines()[0] if errors else
                                 f"git exited with status {proc.returncode}")
    finally:
        timer.cancel()
        if not finished:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- all together ----------------------------------------------------------------------------


def secret_concerns(cmd: Command, workspace: Path, rules: FileRules) -> list[str]:
    """Why running ``cmd`` may put a secret file's content in front of the model."""
    if cmd.name is None:
        return []  # a computed program asks anyway
    named = _named_concerns(cmd, workspace, rules) or _unknown_file_concerns(cmd)
    if named:
        return named
    if cmd.name == "git":
        return _git_concerns(cmd, workspace, rules)
    return _walk_concerns(cmd, workspace, rules)
