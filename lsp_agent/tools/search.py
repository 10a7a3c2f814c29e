"""Grep: regex search over file contents.

Uses ripgrep when it is on PATH and a pure-Python search otherwise. Both feed the same
collector in the same file order (sorted by path), so they give the same output: which engine
ran is invisible to the model. Both skip ignored folders, binary files and, inside a git
repository, files ignored by .gitignore; both search hidden files.

Secret files (``permissions.secrets``) are never searched: ripgrep is told to skip them, the
Python engine never opens them, and a line at the end of the result names the ones that were
left out (whatever the pattern: which secret files matched would leak their content). A single
file named as ``path`` is searched even when it is a secret: the permission gate asked first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lsp_agent.permissions.secrets import PathRules
from lsp_agent.procs.lifetime import child_options
from lsp_agent.tools.base import Tool, ToolContext, ToolError
from lsp_agent.tools.files import IGNORED_DIRS, glob_regex, list_files, path_sort_key
from lsp_agent.workspace.documents import kind_of

OutputMode = Literal["files_with_matches", "content", "count"]

SEARCH_TIMEOUT = 30.0
DEFAULT_MAX_ENTRIES = 1000  # output lines (content) or files (other modes) without head_limit
MAX_CONTENT_LINE_CHARS = 500
MAX_RG_OUTPUT_BYTES = 64 * 1024 * 1024
MAX_RG_RECORD_BYTES = 8 * 1024 * 1024
MAX_FALLBACK_FILE_BYTES = 20 * 1024 * 1024
BINARY_SNIFF_BYTES = 8192
MAX_SECRETS_NAMED = 5


class GrepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1, description="Regular expression to search for.")
    path: str | None = Field(
        default=None, description="File or folder to search (default: the workspace root)."
    )
    glob: str | None = Field(
        default=None,
        description="Only search files matching this glob, e.g. '*.py' or 'src/**/*.{ts,tsx}'. "
        "Without '/', it matches file names at any depth. Prefix with '!' to exclude.",
    )
    case_insensitive: bool = Field(default=False, description="Ignore letter case.")
    output_mode: OutputMode = Field(
        default="files_with_matches",
        description="'files_with_matches': paths of matching files (default); 'content': "
        "matching lines as path:line:text; 'count': matching lines per file.",
    )
    context: int | None = Field(
        default=None,
        ge=0,
        le=50,
        description="Lines of context around each match (content mode only).",
    )
    head_limit: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Return at most this many output lines or files "
        f"(default {DEFAULT_MAX_ENTRIES}).",
    )


@dataclass
class _FileHits:
    rel: str  # '/'-separated, relative to the search root
    lines: list[tuple[int, str, bool]] = field(default_factory=list)  # (number, text, is_match)
    matches: int = 0


class _Collector:
    """Gathers results from either engine and says when there are more than will be shown."""

    def __init__(self, mode: OutputMode, cap: int, hidden: Any = None):
        self.mode = mode
        self.cap = cap
        self.hidden = hidden or (lambda rel: False)  # files whose lines must never be kept
        self.files: list[_FileHits] = []
        self.entries = 0
        self.full = False  # more than ``cap`` entries gathered: stop searching
        self._current: _FileHits | None = None

    def begin(self, rel: str) -> None:
        self._current = None if self.hidden(rel) else _FileHits(rel)

    def line(self, number: int, text: str, is_match: bool) -> None:
        current = self._current
        if current is None:
            return
        current.matches += is_match
        if self.mode == "content":
            current.lines.append((number, text, is_match))
            self._count_entry()

    def end(self) -> None:
        current, self._current = self._current, None
        if current is None or current.matches == 0:
            return
        self.files.append(current)
        if self.mode != "content":
            self._count_entry()

    def _count_entry(self) -> None:
        self.entries += 1
        self.full = self.entries > self.cap


@dataclass
class _SearchRequest:
    pattern: str
    root: Path  # folder the search runs in; result paths are relative to it
    target: str | None  # a single file (relative to root), or None for the whole folder
    glob: str | None
    case_insensitive: bool
    mode: OutputMode
    context: int
    secrets: PathRules | None = None  # files to leave out of a folder search

    def is_secret(self, rel: str) -> bool:
        return self.secrets is not None and \
            self.secrets.match(os.path.join(self.root, rel)) is not None


class Grep(Tool):
    name = "Grep"
    description = (
        "Search file contents with a regular expression (ripgrep syntax). Default output is "
        "the list of matching files; output_mode 'content' gives matching lines with line "
        "numbers (add context for surrounding lines), 'count' gives matches per file. Narrow "
        "with path and glob. Skips .git, node_modules, __pycache__, .venv, binary files, "
        ".gitignore'd files and secret files (.env, keys; the result names them). Searches the "
        "files on disk, not unsaved editor changes. Use it instead of running grep or rg "
        "through Bash."
    )
    input_model = GrepInput
    access = "read"

    def __init__(self, use_ripgrep: bool = True):
        """``use_ripgrep=False`` forces the pure-Python engine even when rg is installed."""
        self.use_ripgrep = use_ripgrep

    async def call(self, args: GrepInput, ctx: ToolContext) -> str:
        base = ctx.resolve(args.path) if args.path else ctx.workspace
        where = ctx.display(base)
        request = _request_for(args, base, where)
        if request.target is None and not ctx.file_rules.is_secret(base):
            request.secrets = ctx.file_rules.secret  # a secret folder was asked about: search it
        cap = args.head_limit or DEFAULT_MAX_ENTRIES
        collector = _Collector(args.output_mode, cap, request.is_secret)
        rg = shutil.which("rg") if self.use_ripgrep else None
        if rg:
            timed_out = await _search_with_ripgrep(rg, request, collector)
            left_out = await _secret_files(request)
        else:
            regex = _compile(args.pattern, args.case_insensitive)
            listed = await _listed(request)
            left_out = await _secret_files(request, listed)
            files = [rel for rel in listed if rel not in left_out]
            timed_out = await asyncio.to_thread(_search_in_python, regex, request, files, collector)
        note = _left_out_note(left_out, ctx, request)
        if not collector.files:
            if timed_out:
                raise ToolError(f"Search timed out after {SEARCH_TIMEOUT:g} s with no matches "
                                "yet; narrow the path or glob." + note)  # fmt: skip
            scope = "the workspace" if base == ctx.workspace else where
            if args.glob:
                scope += f" (glob {args.glob!r})"
            return f"No matches for {args.pattern!r} in {scope}." + note
        lines = _format(collector, request, ctx)
        if timed_out:
            lines.append(f"(Search timed out after {SEARCH_TIMEOUT:g} s; results are partial. "
                         "Narrow the path or glob.)")  # fmt: skip
        return "\n".join(lines) + note


async def _listed(request: _SearchRequest) -> list[str]:
    """The files a search covers (as the Python engine searches them), in search order."""
    return [request.target] if request.target else await _candidate_files(request)


async def _secret_files(request: _SearchRequest, listed: list[str] | None = None) -> list[str]:
    """The secret files the search covers: whatever the pattern, they are not searched."""
    if request.secrets is None:
        return []
    if listed is None:
        listed = await _listed(request)
    return [rel for rel in listed if request.is_secret(rel)]


def _left_out_note(left_out: list[str], ctx: ToolContext, request: _SearchRequest) -> str:
    if not left_out:
        return ""
    names = ", ".join(ctx.display(request.root / rel) for rel in left_out[:MAX_SECRETS_NAMED])
    more = f" and {len(left_out) - MAX_SECRETS_NAMED} more" if len(left_out) > \
        MAX_SECRETS_NAMED else ""
    count = f"{len(left_out)} secret file{'s' if len(left_out) != 1 else ''}"
    return (f"\n({count} not searched: {names}{more}. Read one to ask the user for its "
            "content.)")


def _request_for(args: GrepInput, base: Path, where: str) -> _SearchRequest:
    if not base.exists():
        raise ToolError(f"Path not found: {where}")
    target = None
    root = base
    if not base.is_dir():
        root, target = base.parent, base.name
        if (kind := kind_of(base.stat().st_mode)) is not None:  # a FIFO would block the read
            raise ToolError(f"{where} is {kind}, not a regular file; Grep searches text files.")
        if _is_binary(base):
            raise ToolError(f"{where} is a binary file; Grep searches text files.")
    return _SearchRequest(
        pattern=args.pattern,
        root=root,
        target=target,
        glob=args.glob,
        case_insensitive=args.case_insensitive,
        mode=args.output_mode,
        context=(args.context or 0) if args.output_mode == "content" else 0,
    )


def _compile(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE if case_insensitive else 0)
    except re.error as exc:
        raise ToolError(f"Invalid regular expression {pattern!r}: {exc}") from None


def _is_binary(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return b"\x00" in f.read(BINARY_SNIFF_BYTES)
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def _format(collector: _Collector, request: _SearchRequest, ctx: ToolContext) -> list[str]:
    def show(rel: str) -> str:
        return ctx.display(request.root / rel)

    files = collector.files
    cap = collector.cap
    if request.mode == "files_with_matches":
        out = [show(hits.rel) for hits in files[:cap]]
        unit = "files"
    elif request.mode == "count":
        out = [f"{show(hits.rel)}:{hits.matches}" for hits in files[:cap]]
        if not collector.full:
            total = sum(hits.matches for hits in files)
            out.append(f"(Total: {total} matching lines in {len(files)} files)")
        unit = "files"
    else:
        out = _content_lines(files, request.context > 0, cap, show)
        unit = "lines"
    if collector.full:
        out.append(f"(Results truncated to the first {cap} {unit}; narrow the search or raise "
                   "head_limit.)")  # fmt: skip
    return out


def _content_lines(files: list[_FileHits], separate: bool, cap: int, show: Any) -> list[str]:
    """grep-style lines: ``path:N:text`` for matches, ``path-N-text`` for context, ``--``
    between groups that are not adjacent (only when context was asked for)."""
    out: list[str] = []
    emitted = 0
    for hits in files:
        path = show(hits.rel)
        previous = None
        for number, text, is_match in hits.lines:
            if emitted == cap:
                return out
            if separate and out and (previous is None or number != previous + 1):
                out.append("--")
            mark = ":" if is_match else "-"
            out.append(f"{path}{mark}{number}{mark}{_clip(text)}")
            previous = number
            emitted += 1
    return out


def _clip(text: str) -> str:
    if len(text) <= MAX_CONTENT_LINE_CHARS:
        return text
    return f"{text[:MAX_CONTENT_LINE_CHARS]}... [{len(text) - MAX_CONTENT_LINE_CHARS:,} more chars]"


# ---------------------------------------------------------------------------
# ripgrep engine
# ---------------------------------------------------------------------------


def _ripgrep_command(rg: str, request: _SearchRequest) -> list[str]:
    cmd = [rg, "--json", "--no-config", "--hidden", "--no-ignore-dot", "--crlf"]
    cmd += ["--sort", "path"]  # deterministic order, the same as the Python engine's
    if request.case_insensitive:
        cmd.append("--ignore-case")
    if request.mode == "files_with_matches":
        cmd += ["--max-count", "1"]
    if request.context:
        cmd += ["--context", str(request.context)]
    for name in sorted(IGNORED_DIRS):
        cmd += ["--glob", f"!{name}"]
    if request.glob:
        cmd += ["--glob", request.glob]
    if request.secrets is not None:  # after the user's glob: later globs win
        for exclude in request.secrets.rg_excludes():
            cmd += ["--iglob", exclude]
    cmd += ["--regexp", request.pattern]
    if request.target:
        cmd += ["--", request.target]
    return cmd


async def _search_with_ripgrep(rg: str, request: _SearchRequest, collector: _Collector) -> bool:
    """Run rg, feeding the collector; returns True when the search timed out."""
    proc = await asyncio.create_subprocess_exec(
        *_ripgrep_command(rg, request),
        cwd=request.root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **child_options(),  # cleaned environment, dies with the server
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.create_task(_read_capped(proc.stderr, 4096))
    timed_out = reached_end = False
    try:
        reached_end = await asyncio.wait_for(_feed_records(proc.stdout, collector), SEARCH_TIMEOUT)
    except TimeoutError:
        timed_out = True
    finally:
        if not reached_end:  # enough results, timed out or cancelled: stop rg
            _kill_unless_exited(proc)
        await proc.wait()
        errors = await stderr_task
    # "No files were searched": every file was filtered out (a glob, secret files): no match,
    # as the Python engine says.
    if proc.returncode == 2 and not collector.files and not timed_out \
            and not errors.startswith("No files were searched"):
        raise ToolError(f"Search failed: {errors.strip() or 'ripgrep exited with status 2'}")
    return timed_out


def _kill_unless_exited(proc: asyncio.subprocess.Process) -> None:
    # Not proc.kill(): Popen.send_signal polls first, which can reap the child behind the
    # asyncio child watcher's back and turn its exit status into 255.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


async def _feed_records(stream: asyncio.StreamReader, collector: _Collector) -> bool:
    """Feed rg's records to the collector; returns whether rg's output was read to the end."""
    async with contextlib.aclosing(_json_lines(stream)) as records:
        async for record in records:
            _handle_record(record, collector)
            if collector.full:
                break
    collector.end()  # keeps a file cut short by the cap, as the Python engine does
    if not stream.at_eof() and not collector.full:
        collector.full = True  # stopped by the output byte cap
    return stream.at_eof()


async def _json_lines(stream: asyncio.StreamReader):
    """Decoded JSON records, with bounded memory: oversized records are skipped."""
    buffer = bytearray()
    total = 0
    skipping = False
    while chunk := await stream.read(65536):
        total += len(chunk)
        if total > MAX_RG_OUTPUT_BYTES:
            return
        buffer += chunk
        while (newline := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            if skipping:
                skipping = False  # this was the tail of an oversized record
                continue
            yield json.loads(line)
        if len(buffer) > MAX_RG_RECORD_BYTES:
            buffer.clear()
            skipping = True


def _handle_record(record: dict[str, Any], collector: _Collector) -> None:
    kind, data = record.get("type"), record.get("data", {})
    if kind == "begin":
        collector.begin(_rg_text(data["path"]))
    elif kind in ("match", "context"):
        text = _rg_text(data["lines"]).removesuffix("\n").removesuffix("\r")
        collector.line(data["line_number"], text, kind == "match")
    elif kind == "end":
        collector.end()


def _rg_text(value: dict[str, str]) -> str:
    """rg sends valid UTF-8 as ``text`` and anything else base64-encoded as ``bytes``."""
    if "text" in value:
        return value["text"]
    return base64.b64decode(value["bytes"]).decode("utf-8", "replace")


async def _read_capped(stream: asyncio.StreamReader, keep: int) -> str:
    """Drain a stream so the writer never blocks, keeping only its beginning."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk[: max(0, keep - len(kept))]
    return kept.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Python engine
# ---------------------------------------------------------------------------


async def _candidate_files(request: _SearchRequest) -> list[str]:
    keep = _glob_filter(request.glob)
    listed = await list_files(request.root)
    # rg does not follow symbolic links while walking; neither does this engine.
    return sorted(
        (rel for rel in listed if keep(rel) and not (request.root / rel).is_symlink()),
        key=path_sort_key,
    )


def _glob_filter(glob: str | None):
    if not glob:
        return lambda rel: True
    negate = glob.startswith("!")
    pattern = glob[1:] if negate else glob
    regex = glob_regex(pattern.lstrip("/"))
    by_name = "/" not in pattern  # like rg: a glob without '/' matches names at any depth

    def keep(rel: str) -> bool:
        subject = rel.rsplit("/", 1)[-1] if by_name else rel
        return bool(regex.fullmatch(subject)) != negate

    return keep


def _search_in_python(
    regex: re.Pattern[str], request: _SearchRequest, files: list[str], collector: _Collector
) -> bool:
    """Search ``files`` in order, feeding the collector; returns True on timeout."""
    deadline = time.monotonic() + SEARCH_TIMEOUT
    for rel in files:
        if time.monotonic() > deadline:
            return True
        lines = _text_lines(request.root / rel)
        if lines is not None:
            _search_file(regex, rel, lines, request, collector)
        if collector.full:
            break
    return False


def _text_lines(path: Path) -> list[str] | None:
    """The file's lines without terminators, or None for binary, huge or unreadable files."""
    try:
        info = path.stat()
        if info.st_size > MAX_FALLBACK_FILE_BYTES or not stat.S_ISREG(info.st_mode):
            return None  # huge, or a FIFO/device that could block the read forever
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [raw.removesuffix(b"\r").decode("utf-8", "replace") for raw in lines]


def _search_file(
    regex: re.Pattern[str],
    rel: str,
    lines: list[str],
    request: _SearchRequest,
    collector: _Collector,
) -> None:
    if request.mode == "files_with_matches":
        hit = next((i for i, text in enumerate(lines) if regex.search(text)), None)
        if hit is not None:
            collector.begin(rel)
            collector.line(hit + 1, lines[hit], True)
            collector.end()
        return
    matches = [i for i, text in enumerate(lines) if regex.search(text)]
    if not matches:
        return
    collector.begin(rel)
    if request.mode == "count":
        for i in matches:
            collector.line(i + 1, lines[i], True)
    else:
        _emit_with_context(lines, matches, request.context, collector)
    collector.end()  # also when stopped early: the partial file's lines are kept


def _emit_with_context(
    lines: list[str], matches: list[int], context: int, collector: _Collector
) -> None:
    """Matches with ``context`` lines around them, overlapping windows merged, in order."""
    matched = set(matches)
    last = -1
    for i in matches:
        for j in range(max(i - context, last + 1), min(i + context, len(lines) - 1) + 1):
            collector.line(j + 1, lines[j], j in matched)
            last = j
            if collector.full:
                return


SEARCH_TOOLS: list[type[Tool]] = [Grep]
