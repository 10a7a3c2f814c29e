"""Every command a shell line would run, found with a real parser (tree-sitter-bash).

The analysis is static and conservative: a word whose value depends on the run time
(``$VAR``, ``$(...)``, globs aside) is *dynamic*; a command whose name is dynamic, or a line
that does not parse, cannot be judged and must be asked about. Wrappers that run another
command (``env``, ``sudo``, ``xargs``, ``find -exec``, ``sh -c``, ``eval``, ...) are unwrapped
so that the inner command is judged on its own.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field

MAX_DEPTH = 6  # nested ``sh -c``/``eval`` strings; deeper nesting is refused as unparseable
SYSTEM_BIN_DIRS = ("/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin")
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "busybox"})
WRITE_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})


@dataclass
class Word:
    text: str  # the source text as written
    value: str | None  # the static value after quote removal; None when dynamic


@dataclass
class Redirect:
    op: str
    target: Word
    writes: bool


@dataclass
class Command:
    """One simple command that would execute."""

    argv: list[Word]
    env: list[str] = field(default_factory=list)  # names assigned in front of the command
    via: str = ""  # the wrapper it was found in (``xargs``, ``find -exec``, ``sh -c``, ...)
    args_from_input: bool = False  # xargs: more arguments arrive at run time

    @property
    def name(self) -> str | None:
        """The program name, or None when it is computed at run time."""
        if not self.argv or self.argv[0].value is None:
            return None
        return program_name(self.argv[0].value)

    @property
    def args(self) -> list[Word]:
        return self.argv[1:]

    def static_args(self) -> list[str] | None:
        values = [w.value for w in self.args]
        static = [v for v in values if v is not None]
        return static if len(static) == len(values) else None

    def text(self) -> str:
        """The command as rules match it: static words joined by single spaces."""
        return " ".join(w.value if w.value is not None else w.text for w in self.argv)


@dataclass
class Analysis:
    source: str
    commands: list[Command] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why (part of) it cannot be judged

    @property
    def parsed(self) -> bool:
        return not self.problems


def program_name(word: str) -> str:
    """``/usr/bin/rm`` is ``rm``; ``./rm`` stays ``./rm`` (a local program, not the system's)."""
    head, base = os.path.split(word)
    return base if head in SYSTEM_BIN_DIRS else word


_local = threading.local()  # a parser is not safe to share between threads


def _parser():
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _new_parser():
    from tree_sitter import Parser

    return Parser(_language())


@functools.cache
def _language():
    import tree_sitter_bash
    from tree_sitter import Language

    return Language(tree_sitter_bash.language())


def analyze(source: str) -> Analysis:
    result = Analysis(source)
    _analyze_into(source, result, depth=0, via="")
    return result


def _analyze_into(source: str, result: Analysis, depth: int, via: str) -> None:
    if depth > MAX_DEPTH:
        result.problems.append("commands nested too deeply in sh -c / eval strings")
        return
    tree = _parser().parse(source.encode())
    if tree.root_node.has_error:
        result.problems.append(f"the command line does not parse: {source[:80]!r}")
        return
    _Walker(result, depth, via).visit(tree.root_node)


class _Walker:
    def __init__(self, result: Analysis, depth: int, via: str):
        self.result, self.depth, self.via = result, depth, via

    def visit(self, node) -> None:
        kind = node.type
        if kind == "command":
            self._command(node)
        elif kind == "file_redirect":
            self._redirect(node)
            self._children(node)
        elif kind == "herestring_redirect" or kind == "heredoc_redirect":
            self._children(node)
        elif kind in {"function_definition"}:
            # The body runs whenever the function is called: judge it as if it ran.
            self._children(node)
        else:
            self._children(node)

    def _children(self, node) -> None:
        for child in node.children:
            self.visit(child)

    def _redirect(self, node) -> None:
        op = next((c.type for c in node.children if not c.is_named), "")
        targets = [c for c in node.children if c.is_named and c.type != "file_descriptor"]
        if not targets:
            return
        target = word_of(targets[-1])
        if op in {">&", "<&"} and target.value is not None and target.value.isdigit():
            return  # duplicating a descriptor, not a file
        self.result.redirects.append(Redirect(op, target, op in WRITE_REDIRECTS))

    def _command(self, node) -> None:
        env: list[str] = []
        argv: list[Word] = []
        for child in node.children:
            if child.type == "variable_assignment":
                name = child.child_by_field_name("name")
                env.append(name.text.decode() if name is not None else "?")
                self._children(child)
            elif child.type == "file_redirect":
                self._redirect(child)
                self._children(child)
            elif child.type == "command_name":
                argv.append(word_of(child))
                self._children(child)
            elif child.is_named:
                argv.append(word_of(child))
                self._children(child)  # substitutions inside arguments run too
        if argv:
            self.add(Command(argv, env, self.via))

    def add(self, command: Command) -> None:
        self.result.commands.append(command)
        _unwrap(command, self.result, self.depth)


# -- static word values ----------------------------------------------------------------------


def word_of(node) -> Word:
    return Word(node.text.decode(errors="replace"), _value(node))


def _value(node) -> str | None:
    kind = node.type
    if kind == "command_name":
        return _join(node.named_children)
    if kind in {"word", "number"}:
        return _unescape(node.text.decode(errors="replace"))
    if kind == "raw_string":
        return node.text.decode(errors="replace")[1:-1]
    if kind == "string":
        return _join([c for c in node.children if c.is_named])
    if kind == "string_content":
        return _unescape_in_quotes(node.text.decode(errors="replace"))
    if kind == "concatenation":
        return _join(node.named_children)
    if kind == "ansi_c_string":
        return None  # $'..' escapes can spell anything: treat as computed
    return None  # expansions, substitutions, arithmetic: known only at run time


def _join(nodes: list) -> str | None:  # tree-sitter nodes
    parts = []
    for child in nodes:
        value = _value(child)
        if value is None:
            return None
        parts.append(value)
    return "".join(parts)


def _unescape(text: str, escapable: str | None = None) -> str:
    """Drop the backslashes bash would drop: before any character unquoted, and only before
    ``escapable`` ones inside double quotes. A backslash-newline joins lines."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and (escapable is None
                                                       or text[i + 1] in escapable):
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _unescape_in_quotes(text: str) -> str:
    return _unescape(text, '$`"\\\n')


# -- wrappers: commands that run other commands ------------------------------------------------

# Wrapper -> options that take a value (so the inner command starts after them).
_PREFIX_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"}),
    "doas": frozenset({"-u", "-C"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "chroot": frozenset(),
    "unbuffer": frozenset(),
    "setsid": frozenset(),
    "strace": frozenset({"-o", "-e", "-p", "-s"}),
    "watch": frozenset({"-n", "--interval", "-d"}),
    "xargs": frozenset({"-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s",
                        "--arg-file", "--delimiter", "--max-args", "--max-procs",
                        "--max-chars", "--replace", "--max-lines", "--eof"}),
}
_POSITIONAL_BEFORE_COMMAND = {"timeout": 1, "chroot": 1}


def _unwrap(command: Command, result: Analysis, depth: int) -> None:
    name = command.name
    if name is None:
        return
    if name in SHELLS:
        _unwrap_shell(command, result, depth)
    elif name == "eval":
        _unwrap_eval(command, result, depth)
    elif name == "find":
        _unwrap_find_exec(command, result, depth)
    elif name == "alias":
        for word in command.args:  # the alias body runs wherever the alias is used
            if word.value and "=" in word.value:
                _analyze_into(word.value.split("=", 1)[1], result, depth + 1, "alias")
    elif name in _PREFIX_WRAPPERS:
        inner = _inner_command(command, name)
        if inner:
            before = command.args[: len(command.args) - len(inner)]
            env = [w.value.split("=", 1)[0] for w in before
                   if name == "env" and w.value and "=" in w.value and not w.value.startswith("-")]
            nested = Command(inner, env, name, args_from_input=name == "xargs")
            result.commands.append(nested)
            _unwrap(nested, result, depth)


def _inner_command(command: Command, name: str) -> list[Word]:
    takes_value = _PREFIX_WRAPPERS[name]
    words = command.args
    i = 0
    positional = _POSITIONAL_BEFORE_COMMAND.get(name, 0)
    while i < len(words):
        value = words[i].value
        if value is None:
            return words[i:]  # computed: judged as a command with a computed name
        if name == "env" and "=" in value and not value.startswith("-"):
            i += 1
            continue
        if value == "--":
            return words[i + 1:]
        if value.startswith("-") and len(value) > 1:
            i += 2 if value in takes_value else 1
            continue
        if positional:
            positional -= 1
            i += 1
            continue
        return words[i:]
    return []


def _unwrap_shell(command: Command, result: Analysis, depth: int) -> None:
    args = command.args
    for i, word in enumerate(args):
        value = word.value
        if value is None:
            result.problems.append(f"{command.name} runs a computed script: {word.text}")
            return
        if value == "-c" or (value.startswith("-") and not value.startswith("--")
                             and "c" in value[1:]):
            if i + 1 >= len(args):
                return
            script = args[i + 1].value
            if script is None:
                result.problems.append(f"{command.name} -c runs a computed string")
                return
            _analyze_into(script, result, depth + 1, f"{command.name} -c")
            return
        if value in {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}:
            continue  # takes a value; the value is skipped as a non-option below
        if not value.startswith("-") and not _is_option_value(args, i):
            return  # `bash script.sh`: a script file, judged as the shell command itself


def _is_option_value(args: list[Word], i: int) -> bool:
    return i > 0 and args[i - 1].value in {"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}


def _unwrap_eval(command: Command, result: Analysis, depth: int) -> None:
    values = command.static_args()
    if values is None:
        result.problems.append("eval runs a string computed at run time")
        return
    _analyze_into(" ".join(values), result, depth + 1, "eval")


FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _unwrap_find_exec(command: Command, result: Analysis, depth: int) -> None:
    args = command.args
    i = 0
    while i < len(args):
        if args[i].value in FIND_EXEC:
            end = i + 1
            while end < len(args) and args[end].value not in {";", "+"}:
                end += 1
            inner = args[i + 1:end]
            if inner:
                nested = Command(inner, [], f"find {args[i].value}")
                result.commands.append(nested)
                _unwrap(nested, result, depth)
            i = end
        i += 1
