"""File tools: Read, Write, Edit and Glob.

Read and Edit see the editor's unsaved buffer when the file is open (``ctx.documents``), so the
model works on what the user sees. Write and Edit never touch the disk themselves: they hand a
whole-file change to ``ctx.proposals``, which shows it to the user and reports the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import re
import shutil
import signal
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lsp_agent.permissions.safe_write import WriteRefused, existing_mode, real_path
from lsp_agent.procs.lifetime import child_options
from lsp_agent.tools.base import FileEdit, Tool, ToolContext, ToolError
from lsp_agent.types.globs import glob_to_regex
from lsp_agent.workspace.documents import (
    INLINE_READ_BYTES,
    DocumentSnapshot,
    FileReadError,
    FileTooLarge,
    snapshot_async,
)
from lsp_agent.workspace.encoding import UnencodableText, count_escaped_bytes, printable

# Folders no tool should wander into: VCS internals, dependencies and caches.
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 2000
GLOB_MAX_RESULTS = 200
GIT_LIST_TIMEOUT = 10.0
MAX_WALK_FILES = 200_000
MAX_SUGGESTION_DIRS = 5_000
MAX_CANDIDATE_LINES = 40


# ---------------------------------------------------------------------------
# Shared helpers (also used by the Grep tool)
# ---------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines as editors and grep count them: split on \\n, no terminators, no phantom last line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def number_lines(lines: list[str], first: int) -> str:
    """Lines in Read's format: right-aligned 1-based number, a tab, the (clipped) text."""
    return "\n".join(f"{n:>6}\t{_clip_line(line)}" for n, line in enumerate(lines, first))


def _clip_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return f"{line[:MAX_LINE_CHARS]}... [line cut: {len(line) - MAX_LINE_CHARS:,} more chars]"


def path_sort_key(relative: str) -> tuple[str, ...]:
    """Order paths folder by folder (``a/b`` before ``a.txt``), as a sorted tree walk does."""
    return tuple(relative.split("/"))


def is_ignored(relative: str) -> bool:
    return any(part in IGNORED_DIRS for part in relative.split("/")[:-1])


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob over ``/``-separated relative paths.

    ``*`` and ``?`` stay within one path segment, ``**`` crosses segments (``**/`` also matches
    zero folders), ``[abc]``/``[!abc]`` are character classes and ``{a,b}`` alternatives.
    """
    if pattern.startswith("./"):
        pattern = pattern[2:]
    return re.compile(glob_to_regex(pattern, braces=True), re.DOTALL)


async def list_files(base: Path) -> list[str]:
    """Files under ``base`` as ``/``-separated relative paths, minus ignored folders.

    Inside a git work tree this honours .gitignore (tracked plus untracked-but-not-ignored
    files); otherwise, or when git is missing or slow, it walks the tree.
    """
    listed = await _git_listed_files(base)
    if not listed:  # not a repo, git unavailable, or everything here is ignored: walk
        listed = await asyncio.to_thread(_walk_files, base)
    return [rel for rel in listed if not is_ignored(rel)]


async def _git_listed_files(base: Path) -> list[str] | None:
    if shutil.which("git") is None:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            cwd=base,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            **child_options(),  # cleaned environment, dies with the server
        )
    except OSError:
        return None
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), GIT_LIST_TIMEOUT)
    except TimeoutError:
        if proc.returncode is None:  # os.kill, not proc.kill(): see search._kill_unless_exited
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        return None
    if proc.returncode != 0:
        return None
    names = dict.fromkeys(stdout.decode("utf-8", "surrogateescape").split("\0"))  # dedupe
    return [name for name in names if name and (base / name).is_file()]


def _walk_files(base: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS]
        rel_root = Path(root).relative_to(base).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        found.extend(prefix + name for name in files)
        if len(found) >= MAX_WALK_FILES:
            break
    return found


# ---------------------------------------------------------------------------
# Read
# ---------------------------------------------------------------------------


class ReadInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File to read: relative to the workspace root, or absolute.")
    offset: int | None = Field(
        default=None, ge=1, description="1-based line number to start at (default: 1)."
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        description=f"Maximum number of lines to return (default: {DEFAULT_READ_LIMIT}).",
    )


class Read(Tool):
    name = "Read"
    description = (
        "Read a text file. Returns numbered lines ('<line number><TAB><text>'); the numbers "
        "are not part of the file, so never copy them into Edit. Shows the editor's unsaved "
        f"text when the file is open. Reads up to {DEFAULT_READ_LIMIT} lines by default; use "
        "offset and limit for long files (the result says how to continue). Lines over "
        f"{MAX_LINE_CHARS} characters are cut. Use Glob to list folders and Grep to search."
    )
    input_model = ReadInput
    access = "read"

    async def call(self, args: ReadInput, ctx: ToolContext) -> str:
        path = ctx.resolve(args.path)
        rel = ctx.display(path)
        if path.is_dir():
            raise ToolError(f"{rel} is a directory, not a file; use Glob to list its files.")
        first = args.offset or 1
        limit = args.limit or DEFAULT_READ_LIMIT
        try:
            snapshot = await snapshot_async(ctx.documents, path)
        except FileNotFoundError:
            raise ToolError(await asyncio.to_thread(not_found_message, ctx, path)) from None
        except FileTooLarge as exc:
            ranged = args.offset is not None or args.limit is not None
            if not ranged or not await asyncio.to_thread(_looks_like_text, path):
                raise ToolError(_display_paths(str(exc), path, rel)) from None
            # Too large to load whole, but a line range can still be streamed from disk.
            shown, total = await asyncio.to_thread(_read_line_range, path, first, limit)
            return _format_read(rel, shown, first, total)
        except FileReadError as exc:
            raise ToolError(_display_paths(str(exc), path, rel)) from None
        except OSError as exc:
            raise ToolError(f"Cannot read {rel}: {exc.strerror or exc}") from None
        text = snapshot.text
        # An open buffer may be huge: split those in a worker, the rest here (a hop costs more).
        lines = (split_lines(text) if len(text) <= INLINE_READ_BYTES
                 else await asyncio.to_thread(split_lines, text))
        if not lines:
            return f"{rel} is empty (0 lines)."
        body = _format_read(rel, lines[first - 1 : first - 1 + limit], first, len(lines))
        return printable(body) + _encoding_note(rel, snapshot)


def _encoding_note(rel: str, snapshot: DocumentSnapshot) -> str:
    """What the model must know to edit a file that is not plain UTF-8 (nothing otherwise)."""
    encoding = snapshot.encoding
    if encoding is None or encoding.is_utf8:
        return ""
    if encoding.errors == "surrogateescape":
        count = count_escaped_bytes(snapshot.text)
        return (f"\n\n(Note: {rel} has {count} byte(s) that are not valid UTF-8, shown as "
                "\N{REPLACEMENT CHARACTER}. Edits keep them as they are, but old_string cannot "
                "contain them: choose text around them.)")
    if encoding.is_single_byte:
        return (f"\n\n(Note: {rel} is stored as {encoding.label}, not UTF-8. Edits are saved "
                "in that encoding, so new text may only use characters it has.)")
    return ""


def _format_read(rel: str, shown: list[str], first: int, total: int) -> str:
    if first > total:
        raise ToolError(f"offset {first} is past the end of {rel}, which has {total} lines.")
    body = number_lines(shown, first)
    last = first + len(shown) - 1
    if last < total:
        body += (
            f"\n\n({total - last:,} more lines not shown; {rel} has {total:,} lines. "
            f"Continue with offset={last + 1}.)"
        )
    return body


def _looks_like_text(path: Path) -> bool:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # never open a FIFO or a device
            return False
        with path.open("rb") as f:
            return b"\x00" not in f.read(8192)
    except OSError:
        return False


def _read_line_range(path: Path, first: int, limit: int) -> tuple[list[str], int]:
    """Stream a file, keeping only the requested lines; returns them and the line count."""
    shown: list[str] = []
    total = 0
    with path.open("rb") as f:
        for total, raw in enumerate(f, 1):
            if first <= total < first + limit:
                shown.append(raw.decode("utf-8", "replace").rstrip("\n").removesuffix("\r"))
    return shown, total


def _display_paths(message: str, path: Path, rel: str) -> str:
    return message.replace(str(path), rel)


def not_found_message(ctx: ToolContext, path: Path) -> str:
    """'File not found', plus the closest existing names when there are some."""
    message = f"File not found: {ctx.display(path)}"
    suggestions = [ctx.display(p) for p in _similar_paths(ctx.workspace, path)]
    if suggestions:
        message += f". Did you mean {' or '.join(suggestions)}?"
    return message


def _similar_paths(workspace: Path, missing: Path) -> list[Path]:
    folder = missing.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    found = _close_names_in(folder, missing.name)
    if folder.is_relative_to(workspace):
        found += [p for p in _same_name_elsewhere(workspace, missing.name) if p not in found]
    return found[:3]


def _close_names_in(folder: Path, name: str) -> list[Path]:
    try:
        entries = {entry.lower(): entry for entry in os.listdir(folder)}
    except OSError:
        return []
    close = difflib.get_close_matches(name.lower(), list(entries), n=3, cutoff=0.7)
    return [folder / entries[match] for match in close]


def _same_name_elsewhere(workspace: Path, name: str) -> list[Path]:
    """Files with exactly this name anywhere in the workspace (a wrong folder is common)."""
    found: list[Path] = []
    for visited, (root, dirs, files) in enumerate(os.walk(workspace)):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        if name in files:
            found.append(Path(root) / name)
        if len(found) >= 3 or visited >= MAX_SUGGESTION_DIRS:
            break
    return found


# ---------------------------------------------------------------------------
# Snapshots for Edit and Write
# ---------------------------------------------------------------------------


async def _snapshot_for_change(ctx: ToolContext, path: Path) -> DocumentSnapshot | None:
    """The text a change is based on; None when the file does not exist."""
    rel = ctx.display(path)
    if await asyncio.to_thread(path.is_dir):
        raise ToolError(f"{rel} is a directory, not a file.")
    try:
        snapshot = await snapshot_async(ctx.documents, path)
    except FileNotFoundError:
        return None
    except FileReadError as exc:
        raise ToolError(
            f"Cannot change {rel}: {_display_paths(str(exc), path, rel)}. "
            "Only text files within the read limit can be changed."
        ) from None
    except OSError as exc:
        raise ToolError(f"Cannot read {rel}: {exc.strerror or exc}") from None
    try:  # the file a link leads to is what would be replaced
        await asyncio.to_thread(lambda: existing_mode(real_path(path)))
    except WriteRefused as exc:  # a read-only file: say so now, not after the review
        raise ToolError(f"Cannot change {rel}: {_display_paths(str(exc), path, rel)}.") from None
    return snapshot


def _check_encodable(ctx: ToolContext, snapshot: DocumentSnapshot, new_text: str) -> None:
    """Refuse text the file's encoding cannot store before the user reviews it."""
    if snapshot.encoding is None:  # an editor buffer: checked again when written
        return
    try:
        snapshot.encoding.encode(new_text)
    except UnencodableText as exc:
        raise ToolError(
            f"Cannot change {ctx.display(snapshot.path)}: it is stored as "
            f"{snapshot.encoding.label} and {exc}. Use characters that encoding has."
        ) from None


def _uses_crlf(text: str) -> bool:
    """Every line ends in \\r\\n (Read hides the \\r, so the model writes plain \\n)."""
    return "\r\n" in text and text.count("\r\n") == text.count("\n")


def _to_crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# ---------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------


class WriteInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File to create or overwrite, relative to the workspace root.")
    content: str = Field(description="The complete new content of the file.")


class Write(Tool):
    name = "Write"
    description = (
        "Create a new file, or replace an existing file's whole content. For changes to an "
        "existing file prefer Edit, which sends only the changed part; if you do overwrite an "
        "existing file, Read it first. Missing parent folders are created. The change is "
        "shown to the user, who may accept or reject it; the result says which."
    )
    input_model = WriteInput
    access = "write"
    time_limit = None  # waits for the user's review; its own file work is bounded

    async def call(self, args: WriteInput, ctx: ToolContext) -> str:
        path = ctx.resolve(args.path)
        snapshot = await _snapshot_for_change(ctx, path)
        content = args.content
        if snapshot is None:
            change = FileEdit(path=path, old_text=None, new_text=content, version=None)
        else:
            if _uses_crlf(snapshot.text):
                content = _to_crlf(content)
            if content == snapshot.text:
                return f"{ctx.display(path)} already has exactly this content; nothing to change."
            _check_encodable(ctx, snapshot, content)
            change = FileEdit(path, snapshot.text, content, snapshot.version)
        return await ctx.proposals.propose(ctx.tool_use_id, [change])


# ---------------------------------------------------------------------------
# Edit
# ---------------------------------------------------------------------------


class StringEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_string: str = Field(description="Exact text to replace, including indentation.")
    new_string: str = Field(description="Replacement text (must differ from old_string).")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of requiring one."
    )


class EditInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File to edit, relative to the workspace root.")
    edits: list[StringEdit] | None = Field(
        default=None,
        min_length=1,
        description="Several replacements, applied in order (each sees the result of the "
        "previous ones); all succeed or none is applied. Use instead of old_string/new_string.",
    )
    old_string: str | None = Field(
        default=None, description="For a single replacement: exact text to replace."
    )
    new_string: str | None = Field(
        default=None, description="For a single replacement: the replacement text."
    )
    replace_all: bool | None = Field(
        default=None, description="For a single replacement: replace every occurrence."
    )

    @model_validator(mode="after")
    def _one_form(self) -> EditInput:
        single = (self.old_string, self.new_string, self.replace_all)
        if self.edits is not None:
            if any(value is not None for value in single):
                raise ValueError(
                    "give either 'edits' or 'old_string'/'new_string'/'replace_all', not both"
                )
        elif self.old_string is None or self.new_string is None:
            raise ValueError("give 'old_string' and 'new_string', or a non-empty 'edits' list")
        return self

    def edit_list(self) -> list[StringEdit]:
        if self.edits is not None:
            return self.edits
        assert self.old_string is not None and self.new_string is not None
        return [StringEdit(old_string=self.old_string, new_string=self.new_string,
                           replace_all=bool(self.replace_all))]  # fmt: skip


class Edit(Tool):
    name = "Edit"
    description = (
        "Replace exact text in an existing file. Read the file first and copy old_string "
        "exactly as it appears, with its indentation, without Read's line-number prefix. "
        "old_string must occur exactly once: include enough surrounding lines to make it "
        "unique, or set replace_all to change every occurrence. Keep the file's indentation "
        "style in new_string. For several changes to one file pass 'edits' (applied in order, "
        "all or nothing). To create a file use Write. The change is shown to the user, who "
        "may accept or reject it; the result says which."
    )
    input_model = EditInput
    access = "write"
    time_limit = None  # waits for the user's review; its own file work is bounded

    def api_schema(self) -> dict[str, Any]:
        schema = super().api_schema()
        schema["input_schema"] = _inline_definitions(schema["input_schema"])
        return schema

    async def call(self, args: EditInput, ctx: ToolContext) -> str:
        path = ctx.resolve(args.path)
        rel = ctx.display(path)
        snapshot = await _snapshot_for_change(ctx, path)
        if snapshot is None:
            raise ToolError(
                f"File not found: {rel}. Edit changes existing files; use Write to create one."
            )
        new_text = await asyncio.to_thread(_apply_edits, snapshot.text, args, rel)
        _check_encodable(ctx, snapshot, new_text)
        change = FileEdit(path, snapshot.text, new_text, snapshot.version)
        return await ctx.proposals.propose(ctx.tool_use_id, [change])


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref``s to ``$defs`` with the definitions themselves, minus pydantic's titles,
    so the model sees the nested edit shape in place."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {
                key: inline(value)
                for key, value in node.items()
                if not (key == "title" and isinstance(value, str))  # a title, not a field
            }
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def _apply_edits(original: str, args: EditInput, rel: str) -> str:
    crlf = _uses_crlf(original)
    text = original.replace("\r\n", "\n") if crlf else original
    edits = args.edit_list()
    for index, edit in enumerate(edits):
        label = f"edits[{index}]" if args.edits is not None else "Edit"
        old, new = edit.old_string, edit.new_string
        if crlf:
            old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
        text = _apply_one(text, old, new, edit.replace_all, f"{label} of {rel}", index)
    result = _to_crlf(text) if crlf else text
    if result == original:
        raise ToolError(f"The edits leave {rel} unchanged; nothing to apply.")
    return result


def _apply_one(text: str, old: str, new: str, replace_all: bool, where: str, index: int) -> str:
    if old == "":
        raise ToolError(f"{where}: old_string is empty. To create or overwrite a file use Write.")
    if old == new:
        raise ToolError(f"{where}: old_string and new_string are identical; nothing to change.")
    starts = _match_starts(text, old)
    if not starts:
        earlier = " (after applying the edits before it)" if index else ""
        raise ToolError(f"{where}: old_string was not found{earlier}.\n{_nearest_hint(text, old)}")
    if len(starts) > 1 and not replace_all:
        lines = [str(text.count("\n", 0, start) + 1) for start in starts]
        shown = ", ".join(lines[:20]) + (", ..." if len(lines) > 20 else "")
        raise ToolError(
            f"{where}: old_string occurs {len(starts)} times (at lines {shown}). Include more "
            "surrounding lines to make it unique, or set replace_all to change every occurrence."
        )
    return text.replace(old, new) if replace_all else text.replace(old, new, 1)


def _match_starts(text: str, needle: str) -> list[int]:
    """Start offsets of non-overlapping occurrences, as str.replace would find them."""
    starts, position = [], text.find(needle)
    while position >= 0:
        starts.append(position)
        position = text.find(needle, position + len(needle))
    return starts


def _nearest_hint(text: str, old: str) -> str:
    hints = []
    if re.match(r"\s*\d+\t", old):
        hints.append("old_string seems to start with a line-number prefix from Read; leave it out.")
    lines = split_lines(text)
    needle = old.strip("\n")
    window = _most_similar_window(lines, needle)
    if window is None:
        return "\n".join([*hints, "The file is empty."])
    start, count, ratio = window
    candidate = lines[start : start + count]
    shown = number_lines(candidate[:MAX_CANDIDATE_LINES], start + 1)
    parts = [f"The most similar lines in the file ({ratio:.0%} similar):", shown]
    if "".join("\n".join(candidate).split()) == "".join(needle.split()):
        parts.append(
            "These differ from old_string only in whitespace/indentation: copy the exact "
            "whitespace (tabs vs spaces, indentation depth, trailing spaces)."
        )
    parts += hints
    parts.append("Re-read the file and copy old_string exactly.")
    return "\n".join(parts)


def _most_similar_window(lines: list[str], needle: str) -> tuple[int, int, float] | None:
    """The run of lines, as long as ``needle``, that difflib rates most similar to it."""
    if not lines:
        return None
    count = min(len(needle.split("\n")), len(lines))
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(needle)  # seq2 is the cached side; only the window changes
    best = (0, count, -1.0)
    for start in range(len(lines) - count + 1):
        matcher.set_seq1("\n".join(lines[start : start + count]))
        # The cheap upper bounds skip most windows without the quadratic ratio().
        if matcher.real_quick_ratio() <= best[2] or matcher.quick_ratio() <= best[2]:
            continue
        ratio = matcher.ratio()
        if ratio > best[2]:
            best = (start, count, ratio)
    return best


# ---------------------------------------------------------------------------
# Glob
# ---------------------------------------------------------------------------


class GlobInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(
        min_length=1,
        description="Glob relative to the folder, e.g. '**/*.py' or 'src/**/test_*.{js,ts}'. "
        "'*' stays within one folder level; '**' spans any number of levels.",
    )
    path: str | None = Field(
        default=None, description="Folder to search in (default: the workspace root)."
    )


class Glob(Tool):
    name = "Glob"
    description = (
        "Find files by name pattern. Returns matching file paths, most recently modified "
        f"first, at most {GLOB_MAX_RESULTS}. Skips .git, node_modules, __pycache__, .venv "
        "and, in a git repository, files ignored by .gitignore. Use it to locate files; use "
        "Grep to search file contents."
    )
    input_model = GlobInput
    access = "read"

    async def call(self, args: GlobInput, ctx: ToolContext) -> str:
        base = ctx.resolve(args.path) if args.path else ctx.workspace
        rel_base = ctx.display(base)
        if not base.exists():
            raise ToolError(f"Folder not found: {rel_base}")
        if not base.is_dir():
            raise ToolError(f"{rel_base} is a file, not a folder; pass its folder as path.")
        regex = glob_regex(_pattern_relative_to(args.pattern, base))
        matches = [rel for rel in await list_files(base) if regex.fullmatch(rel)]
        newest_first = await asyncio.to_thread(_by_mtime_newest_first, base, matches)
        if not newest_first:
            return f"No files match {args.pattern!r} in {rel_base}."
        shown = [ctx.display(base / rel) for rel in newest_first[:GLOB_MAX_RESULTS]]
        if len(newest_first) > GLOB_MAX_RESULTS:
            shown.append(
                f"(Results truncated: showing the {GLOB_MAX_RESULTS} most recently modified "
                f"of {len(newest_first):,} matches. Narrow the pattern or path.)"
            )
        secrets = [ctx.display(base / rel) for rel in newest_first[:GLOB_MAX_RESULTS]
                   if ctx.file_rules.is_secret(base / rel)]
        if secrets:  # names only; saying so spares a Read the user will be asked about
            listed = ", ".join(secrets[:5]) + (", ..." if len(secrets) > 5 else "")
            shown.append(f"({listed} look{'s' if len(secrets) == 1 else ''} like secret "
                         "files: reading them asks the user first.)")
        return "\n".join(shown)


def _pattern_relative_to(pattern: str, base: Path) -> str:
    if not pattern.startswith("/"):
        return pattern
    prefix = base.as_posix().rstrip("/") + "/"
    if not pattern.startswith(prefix):
        raise ToolError(
            f"The absolute pattern {pattern!r} is outside the search folder; pass the folder "
            "as path and a relative pattern."
        )
    return pattern[len(prefix) :]


def _by_mtime_newest_first(base: Path, relatives: list[str]) -> list[str]:
    stamped = []
    for rel in relatives:
        try:
            stamped.append((-(base / rel).stat().st_mtime_ns, path_sort_key(rel), rel))
        except OSError:
            continue  # vanished since it was listed
    return [rel for *_, rel in sorted(stamped)]


FILE_TOOLS: list[type[Tool]] = [Read, Write, Edit, Glob]
