"""Hunk splitting, unified diff text and selective application (lsp_agent.edits.diff)."""

from __future__ import annotations

import difflib
import itertools
import random
from pathlib import Path

import pytest
import unidiff

from lsp_agent.edits import diff as diff_module
from lsp_agent.edits.diff import (
    FileChange,
    apply_selected,
    group_opcodes,
    line_opcodes,
    make_file_change,
    split_lines,
    target_text,
)

ROOT = Path("/work/project")
PATH = ROOT / "pkg" / "mod.py"


def numbered(n: int, eol: str = "\n") -> str:
    return "".join(f"line{i}{eol}" for i in range(1, n + 1))


def change(old: str | None, new: str, context: int = 3) -> FileChange:
    return make_file_change(PATH, old, new, 4, ROOT, context)


def apply_unidiff(old: str, diff: str) -> str:
    """Apply a unified diff using only what unidiff parsed: proves the diff text is exact."""
    if not diff:
        return old
    patch = unidiff.PatchSet(diff)
    assert len(patch) == 1
    old_lines, out, pos = split_lines(old), [], 0
    for hunk in patch[0]:
        start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        out.extend(old_lines[pos:start])
        pos = start
        previous = None
        for line in hunk:
            kind = line.line_type
            if kind == "\\":
                if previous in (" ", "+"):  # the line just written has no newline
                    out[-1] = out[-1].removesuffix("\n")
                continue
            if kind in (" ", "-"):
                assert old_lines[pos].removesuffix("\n") == line.value.removesuffix("\n")
                pos += 1
            if kind in (" ", "+"):
                out.append(line.value)
            previous = kind
    out.extend(old_lines[pos:])
    return "".join(out)


CASES = [
    # (name, old, new, context, expected headers)
    (
        "three separated hunks",
        numbered(20),
        numbered(20)
        .replace("line2\n", "LINE2\n")
        .replace("line10\n", "line10\nextra\n")
        .replace("line20\n", "LAST\n"),
        3,
        ["@@ -1,5 +1,5 @@", "@@ -8,6 +8,7 @@", "@@ -17,4 +18,4 @@"],
    ),
    (
        "adjacent changes share one hunk",
        numbered(12),
        numbered(12).replace("line5\n", "five\n").replace("line7\n", "seven\n"),
        3,
        ["@@ -2,9 +2,9 @@"],
    ),
    ("insert at top", numbered(5), "new\n" + numbered(5), 3, ["@@ -1,3 +1,4 @@"]),
    ("insert at top, no context", numbered(5), "new\n" + numbered(5), 0, ["@@ -0,0 +1,1 @@"]),
    ("insert at end", numbered(5), numbered(5) + "tail\n", 3, ["@@ -3,3 +3,4 @@"]),
    ("insert at end, no context", numbered(5), numbered(5) + "tail\n", 0, ["@@ -5,0 +6,1 @@"]),
    ("delete all", numbered(3), "", 3, ["@@ -1,3 +0,0 @@"]),
    ("empty file gets content", "", "a\nb\n", 3, ["@@ -0,0 +1,2 @@"]),
    ("old lacks final newline", "a\nb", "a\nb\n", 3, ["@@ -1,2 +1,2 @@"]),
    ("new lacks final newline", "a\nb\n", "a\nb", 3, ["@@ -1,2 +1,2 @@"]),
    ("neither has final newline", "a\nb", "a\nc", 3, ["@@ -1,2 +1,2 @@"]),
    (
        "crlf line changed",
        numbered(4, "\r\n"),
        numbered(4, "\r\n").replace("line2", "two"),
        3,
        ["@@ -1,4 +1,4 @@"],
    ),
    ("crlf to lf on one line", "a\r\nb\r\n", "a\nb\r\n", 3, ["@@ -1,2 +1,2 @@"]),
    ("identical texts", numbered(3), numbered(3), 3, []),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "context", "headers"), CASES, ids=[c[0] for c in CASES]
)
def test_hunk_headers_and_unidiff_structure(name, old, new, context, headers):
    c = change(old, new, context)
    assert [h.header for h in c.hunks] == headers
    assert [h.id for h in c.hunks] == [f"h{i}" for i in range(1, len(headers) + 1)]
    if not headers:
        assert c.diff == ""
        return
    assert c.diff.startswith("--- a/pkg/mod.py\n+++ b/pkg/mod.py\n")
    parsed = unidiff.PatchSet(c.diff)[0]
    assert len(parsed) == len(c.hunks)
    for ours, theirs in zip(c.hunks, parsed, strict=True):
        assert (theirs.source_start, theirs.source_length) == (ours.old_start, ours.old_count)
        assert (theirs.target_start, theirs.target_length) == (ours.new_start, ours.new_count)
        assert str(theirs) == ours.diff
    assert apply_unidiff(old, c.diff) == new


def test_no_newline_marker_follows_the_unterminated_line_on_each_side():
    c = change("a\nb", "a\nc")
    assert c.hunks[0].diff == (
        "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    )


def test_crlf_endings_stay_in_the_diff_lines():
    c = change("a\r\nb\r\n", "a\r\nB\r\n")
    assert "-b\r\n+B\r\n" in c.diff


def test_new_file_diff_is_one_hunk_against_dev_null():
    c = change(None, "x = 1\ny = 2\n")
    assert c.is_new and c.old_text is None
    assert c.diff == "--- /dev/null\n+++ b/pkg/mod.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n"
    parsed = unidiff.PatchSet(c.diff)[0]
    assert parsed.is_added_file
    assert [h.id for h in c.hunks] == ["h1"]


def test_new_empty_file_still_has_one_acceptable_hunk():
    c = change(None, "")
    assert [h.header for h in c.hunks] == ["@@ -0,0 +0,0 @@"]
    assert len(unidiff.PatchSet(c.diff)[0]) == 1
    assert target_text(c, {"h1"}) == ""
    assert target_text(c, set()) is None


def test_new_file_acceptance_is_all_or_nothing():
    c = change(None, "a\nb")
    assert apply_selected(c, {"h1"}) == "a\nb"
    assert apply_selected(c, set()) == ""
    assert target_text(c, set()) is None


def test_path_outside_root_and_uri():
    c = make_file_change(Path("/elsewhere/x y.py"), "a\n", "b\n", None, ROOT)
    assert c.diff.startswith("--- a/elsewhere/x y.py\n+++ b/elsewhere/x y.py\n")
    assert c.uri == "file:///elsewhere/x%20y.py"
    assert c.display == "elsewhere/x y.py"


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("a", ["a"]),
        ("a\n", ["a\n"]),
        ("a\r\nb", ["a\r\n", "b"]),
        ("a\rb\n", ["a\rb\n"]),  # a lone CR is not a line break in a diff
        ("a\x0cb\u2028c\n\n", ["a\x0cb\u2028c\n", "\n"]),
    ],
)
def test_split_lines_breaks_only_after_newline(text, lines):
    assert split_lines(text) == lines
    assert "".join(lines) == text


def test_unknown_hunk_id_is_rejected_with_valid_ids():
    c = change("a\n", "b\n")
    with pytest.raises(ValueError, match=r"h7.*valid ids: h1"):
        apply_selected(c, {"h7"})
    two = change(numbered(30), numbered(30).replace("line3\n", "X\n").replace("line28\n", "Y\n"))
    with pytest.raises(ValueError, match=r"valid ids: h1, h2$"):  # the model retries from these
        target_text(two, {"h9"})


# Three well-separated one-line changes: every subset of hunks has an obvious expected text.
THREE_OLD = numbered(30)
THREE_REPLACEMENTS = {
    "h1": ("line3\n", "THREE\n"),
    "h2": ("line15\n", ""),
    "h3": ("line28\n", "line28\nafter28\n"),
}


@pytest.mark.parametrize(
    "subset",
    [set(s) for r in range(4) for s in itertools.combinations(sorted(THREE_REPLACEMENTS), r)],
    ids=lambda s: "+".join(sorted(s)) or "none",
)
def test_apply_selected_every_subset_of_three_hunks(subset):
    new = THREE_OLD
    for old_line, new_line in THREE_REPLACEMENTS.values():
        new = new.replace(old_line, new_line)
    c = change(THREE_OLD, new)
    assert [h.id for h in c.hunks] == ["h1", "h2", "h3"]
    expected = THREE_OLD
    for hunk_id in subset:
        old_line, new_line = THREE_REPLACEMENTS[hunk_id]
        expected = expected.replace(old_line, new_line)
    assert apply_selected(c, subset) == expected


def random_text(rng: random.Random, eols: tuple[str, ...]) -> list[str]:
    lines = [
        rng.choice("abcde") * rng.randint(0, 2) + rng.choice(eols)
        for _ in range(rng.randint(0, 12))
    ]
    if lines and rng.random() < 0.3:
        lines[-1] = lines[-1].rstrip("\r\n") or "z"  # no final newline
    return lines


def random_edit(rng: random.Random, lines: list[str], eols: tuple[str, ...]) -> list[str]:
    out = list(lines)
    for _ in range(rng.randint(0, 4)):
        op = rng.choice(["insert", "delete", "replace", "eol"])
        at = rng.randint(0, len(out))
        if op == "insert":
            out.insert(at, rng.choice("xyz") + rng.choice(eols))
        elif out and at < len(out):
            if op == "delete":
                del out[at]
            elif op == "replace":
                out[at] = rng.choice("xyz") * 2 + rng.choice(eols)
            else:
                out[at] = out[at].rstrip("\r\n") + rng.choice(eols)
    if out and not out[-1].endswith("\n") and rng.random() < 0.5:
        out[-1] += "\n"
    # A line without a newline may only be the last one: join what earlier edits separated.
    return split_lines("".join(out))


@pytest.mark.parametrize("seed", range(300))
def test_random_edits_round_trip(seed):
    rng = random.Random(seed)
    eols = ("\n", "\r\n") if seed % 2 else ("\n",)
    old = "".join(random_text(rng, eols))
    new = "".join(random_edit(rng, split_lines(old), eols))
    c = change(old, new, context=rng.randint(0, 3))
    ids = {h.id for h in c.hunks}
    assert apply_selected(c, ids) == new
    assert apply_selected(c, set()) == old
    assert apply_unidiff(old, c.diff) == new
    if c.hunks:
        assert len(unidiff.PatchSet(c.diff)[0]) == len(c.hunks)


@pytest.mark.parametrize("seed", range(100))
def test_group_opcodes_matches_difflib_grouping(seed):
    rng = random.Random(seed)
    old = [rng.choice("abc") for _ in range(rng.randint(0, 30))]
    new = [rng.choice("abc") if rng.random() < 0.3 else ch for ch in old]
    context = rng.randint(0, 3)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    codes = list(matcher.get_opcodes())  # difflib's grouping mutates its cached opcodes
    assert group_opcodes(codes, context) == [list(g) for g in matcher.get_grouped_opcodes(context)]


@pytest.mark.parametrize("seed", range(20))
def test_large_middles_use_the_fast_matcher_and_still_round_trip(seed, monkeypatch):
    # difflib only junks popular lines in sequences of 200+ items: use 300 repetitive lines.
    monkeypatch.setattr(diff_module, "EXACT_MATCH_LIMIT", 4)
    rng = random.Random(seed)
    old_lines = [rng.choice(["x\n", "y\r\n", "\n"]) for _ in range(300)]
    new_lines = list(old_lines)
    for _ in range(10):
        new_lines.insert(rng.randrange(len(new_lines)), rng.choice(["z\n", "x\n"]))
        del new_lines[rng.randrange(len(new_lines))]
    old, new = "".join(old_lines), "".join(new_lines) + "end"
    c = change(old, new, context=1)
    assert apply_selected(c, {h.id for h in c.hunks}) == new
    assert apply_selected(c, set()) == old
    assert apply_unidiff(old, c.diff) == new


def test_common_prefix_and_suffix_are_never_part_of_a_change():
    old = "x\n" * 50 + "a\n" + "x\n" * 50
    new = "x\n" * 50 + "b\n" + "x\n" * 50
    assert line_opcodes(split_lines(old), split_lines(new)) == [
        ("equal", 0, 50, 0, 50),
        ("replace", 50, 51, 50, 51),
        ("equal", 51, 101, 51, 101),
    ]
