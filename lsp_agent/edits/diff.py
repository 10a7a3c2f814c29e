"""Whole-file changes as unified diffs split into hunks the user can accept one by one.

Lines are split after each ``\\n`` only and keep their endings, so CRLF files and a missing
final newline survive every round trip byte for byte. A hunk remembers the difflib opcode
ranges it covers; applying a subset of hunks replaces exactly those ranges of the old text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.untrusted import shown

NO_NEWLINE_MARKER = "\\ No newline at end of file\n"

# (i1, i2, j1, j2): old_lines[i1:i2] becomes new_lines[j1:j2], 0-based, end-exclusive.
LineSpan = tuple[int, int, int, int]


@dataclass(frozen=True)
class Hunk:
    id: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header: str
    diff: str
    spans: tuple[LineSpan, ...] = ()


@dataclass(frozen=True)
class FileChange:
    path: Path
    uri: str
    old_text: str | None  # None: the file does not exist yet
    new_text: str
    version: int | None  # editor version of ``old_text``; None when it came from disk
    hunks: tuple[Hunk, ...]
    diff: str
    display: str = ""  # the path relative to the root, as shown in diff headers
    deleted: bool = False  # accepting it deletes the file (its one hunk removes every line)

    @property
    def is_new(self) -> bool:
        return self.old_text is None

    def hunk(self, hunk_id: str) -> Hunk:
        for h in self.hunks:
            if h.id == hunk_id:
                return h
        raise KeyError(f"{self.display or self.path} has no hunk {hunk_id!r}")


def split_lines(text: str) -> list[str]:
    """Split after each ``\\n`` only, keeping endings; a final unterminated line is kept.

    Unlike ``str.splitlines`` this never breaks on ``\\r``, form feeds or Unicode separators,
    which unified diffs treat as ordinary characters.
    """
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def diff_path_label(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or its absolute form when outside it;
    escaped when the name is not printable (a name must not forge lines of the outcome)."""
    try:
        return shown(path.relative_to(root).as_posix())
    except ValueError:
        return shown(path.as_posix().lstrip("/"))


def make_file_change(
    path: Path,
    old_text: str | None,
    new_text: str,
    version: int | None,
    root: Path,
    context: int = 3,
    deleted: bool = False,
) -> FileChange:
    """Diff ``old_text`` (None for a new file) against ``new_text`` into hunks ``h1``, ``h2``...
    With ``deleted`` the change deletes the file: one hunk removing all of ``old_text``."""
    label = diff_path_label(path, root)
    to_label = f"b/{label}"
    if old_text is None:
        hunks: tuple[Hunk, ...] = (_new_file_hunk(new_text),)
        from_label = "/dev/null"
    elif deleted:
        new_text, to_label, from_label = "", "/dev/null", f"a/{label}"
        hunks = (_deleted_file_hunk(old_text),)
    else:
        hunks = _hunks_between(split_lines(old_text), split_lines(new_text), context)
        from_label = f"a/{label}"
    body = "".join(h.diff for h in hunks)
    diff = f"--- {from_label}\n+++ {to_label}\n{body}" if hunks else ""
    return FileChange(
        path=path,
        uri=Path(path).absolute().as_uri(),
        old_text=old_text,
        new_text=new_text,
        version=version,
        hunks=hunks,
        diff=diff,
        display=label,
        deleted=deleted and old_text is not None,
    )


def _new_file_hunk(text: str) -> Hunk:
    """A new file is one hunk, even when empty, so that creating it can be accepted."""
    lines = split_lines(text)
    return _build_hunk("h1", (0, 0, 0, len(lines)), [(0, 0, 0, len(lines))], [], lines)


def _deleted_file_hunk(text: str) -> Hunk:
    """Deleting a file is one hunk, even when it is empty, so that it can be accepted."""
    lines = split_lines(text)
    return _build_hunk("h1", (0, len(lines), 0, 0), [(0, len(lines), 0, 0)], lines, [])


# Beyond this many differing lines, let difflib ignore very frequent lines ("autojunk"): the
# diff may be coarser, but exact matching on repetitive text is quadratic (seconds at 20k lines).
EXACT_MATCH_LIMIT = 3000

Opcode = tuple[str, int, int, int, int]


def line_opcodes(old: Sequence[str], new: Sequence[str]) -> list[Opcode]:
    """difflib opcodes between two line lists, with the common prefix and suffix taken out first."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    old_mid, new_mid = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    autojunk = max(len(old_mid), len(new_mid)) > EXACT_MATCH_LIMIT
    matcher = difflib.SequenceMatcher(None, old_mid, new_mid, autojunk=autojunk)
    codes: list[Opcode] = []
    if prefix:
        codes.append(("equal", 0, prefix, 0, prefix))
    if old_mid or new_mid:
        codes.extend(
            (tag, i1 + prefix, i2 + prefix, j1 + prefix, j2 + prefix)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        )
    if suffix:
        codes.append(("equal", len(old) - suffix, len(old), len(new) - suffix, len(new)))
    return codes


def group_opcodes(codes: list[Opcode], context: int) -> list[list[Opcode]]:
    """Changes with up to ``context`` equal lines around them; nearby changes share a group."""
    groups: list[list[Opcode]] = []
    group: list[Opcode] = []
    for index, (tag, i1, i2, j1, j2) in enumerate(codes):
        if tag != "equal":
            group.append((tag, i1, i2, j1, j2))
            continue
        leading, trailing = index == 0, index == len(codes) - 1
        if not leading and (trailing or i2 - i1 > 2 * context):
            group.append((tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)))
            groups.append(group)
            group = []
        if not trailing and (leading or i2 - i1 > 2 * context):
            group = [(tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2)]
        elif not trailing:
            group.append((tag, i1, i2, j1, j2))
    if group:
        groups.append(group)
    return [g for g in groups if any(op[0] != "equal" for op in g)]


def _hunks_between(old: list[str], new: list[str], context: int) -> tuple[Hunk, ...]:
    groups = group_opcodes(line_opcodes(old, new), context)
    hunks = []
    for number, group in enumerate(groups, start=1):
        first, last = group[0], group[-1]
        extent = (first[1], last[2], first[3], last[4])
        spans = [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in group if tag != "equal"]
        hunks.append(_build_hunk(f"h{number}", extent, spans, old, new))
    return tuple(hunks)


def _build_hunk(
    hunk_id: str,
    extent: LineSpan,
    spans: Sequence[LineSpan],
    old: Sequence[str],
    new: Sequence[str],
) -> Hunk:
    i1, i2, j1, j2 = extent
    old_start, old_count = _header_range(i1, i2)
    new_start, new_count = _header_range(j1, j2)
    header = f"@@ -{old_start},{old_count} +{new_start},{new_count} @@"
    body = _hunk_body(extent, spans, old, new)
    return Hunk(
        id=hunk_id,
        old_start=old_start,
        old_count=old_count,
        new_start=new_start,
        new_count=new_count,
        header=header,
        diff=f"{header}\n{body}",
        spans=tuple(spans),
    )


def _header_range(start: int, end: int) -> tuple[int, int]:
    # Unified diff convention: an empty range names the line *before* it (0 at the top).
    count = end - start
    return (start + 1 if count else start), count


def _hunk_body(
    extent: LineSpan, spans: Sequence[LineSpan], old: Sequence[str], new: Sequence[str]
) -> str:
    out: list[str] = []
    i, i_end = extent[0], extent[1]
    for s1, s2, t1, t2 in spans:
        out.extend(_prefixed(" ", old[i:s1]))
        out.extend(_prefixed("-", old[s1:s2]))
        out.extend(_prefixed("+", new[t1:t2]))
        i = s2
    out.extend(_prefixed(" ", old[i:i_end]))
    return "".join(out)


def _prefixed(prefix: str, lines: Iterable[str]) -> list[str]:
    out = []
    for line in lines:
        if line.endswith("\n"):
            out.append(prefix + line)
        else:
            out.append(f"{prefix}{line}\n{NO_NEWLINE_MARKER}")
    return out


def target_text(change: FileChange, accepted: Iterable[str]) -> str | None:
    """The text after applying only the ``accepted`` hunk ids; None for a new file not accepted."""
    chosen = set(accepted)
    unknown = chosen - {h.id for h in change.hunks}
    if unknown:
        valid = ", ".join(h.id for h in change.hunks) or "none"
        raise ValueError(
            f"unknown hunk ids {sorted(unknown)} for {change.display}; valid ids: {valid}"
        )
    if change.old_text is None:
        return change.new_text if chosen else None
    old, new = split_lines(change.old_text), split_lines(change.new_text)
    out: list[str] = []
    i = 0
    for hunk in change.hunks:
        if hunk.id not in chosen:
            continue
        for s1, s2, t1, t2 in hunk.spans:
            out.extend(old[i:s1])
            out.extend(new[t1:t2])
            i = s2
    out.extend(old[i:])
    return "".join(out)


def apply_selected(change: FileChange, accepted: set[str]) -> str:
    """The old text with only the ``accepted`` hunks applied.

    A new file has one hunk: accepting it gives the whole content; rejecting it gives ``""``
    (there is no file; use ``target_text`` to tell "no file" from "empty file").
    """
    return target_text(change, accepted) or ""


__all__ = [
    "NO_NEWLINE_MARKER",
    "FileChange",
    "Hunk",
    "LineSpan",
    "apply_selected",
    "diff_path_label",
    "group_opcodes",
    "line_opcodes",
    "make_file_change",
    "split_lines",
    "target_text",
]
