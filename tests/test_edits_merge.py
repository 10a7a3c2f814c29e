"""Rebasing the agent's change onto the user's newer text (lsp_agent.edits.merge)."""

from __future__ import annotations

import pytest

from lsp_agent.edits.merge import Conflict, rebase


def lines(*items: str, eol: str = "\n") -> str:
    return "".join(f"{item}{eol}" for item in items)


BASE = lines(*(f"l{i}" for i in range(1, 13)))


def edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


CLEAN_CASES = [
    (
        "user typed far below the agent's change",
        BASE,
        edit(BASE, "l2\n", "AGENT\n"),
        edit(BASE, "l10\n", "user\n"),
        edit(edit(BASE, "l2\n", "AGENT\n"), "l10\n", "user\n"),
    ),
    (
        "user inserted lines above: agent change lands shifted",
        BASE,
        edit(BASE, "l9\n", "AGENT\n"),
        "new1\nnew2\n" + BASE,
        "new1\nnew2\n" + edit(BASE, "l9\n", "AGENT\n"),
    ),
    (
        "identical change on both sides",
        BASE,
        edit(BASE, "l5\n", "same\n"),
        edit(BASE, "l5\n", "same\n"),
        edit(BASE, "l5\n", "same\n"),
    ),
    (
        "identical change plus user typing elsewhere",
        BASE,
        edit(BASE, "l5\n", "same\n"),
        edit(edit(BASE, "l5\n", "same\n"), "l12\n", "tail\n"),
        edit(edit(BASE, "l5\n", "same\n"), "l12\n", "tail\n"),
    ),
    ("agent changed nothing", BASE, BASE, edit(BASE, "l1\n", "u\n"), edit(BASE, "l1\n", "u\n")),
    (
        "user appended after an unterminated last line",
        "a\nb\nc\nd\ne",
        "A\nb\nc\nd\ne",
        "a\nb\nc\nd\ne\nf",
        "A\nb\nc\nd\ne\nf",
    ),
]


@pytest.mark.parametrize(
    ("name", "base", "ours", "theirs", "expected"), CLEAN_CASES, ids=[c[0] for c in CLEAN_CASES]
)
def test_rebase_clean(name, base, ours, theirs, expected):
    result = rebase(base, ours, theirs)
    assert result.clean
    assert result.conflicts == []
    assert result.text == expected


def test_rebase_preserves_crlf():
    base = lines("a", "b", "c", "d", "e", "f", "g", eol="\r\n")
    ours = edit(base, "b\r\n", "B\r\n")
    theirs = edit(base, "g\r\n", "G\r\n")
    result = rebase(base, ours, theirs)
    assert result.text == lines("a", "B", "c", "d", "e", "f", "G", eol="\r\n")


def test_rebase_conflict_when_both_changed_the_same_lines():
    ours = edit(BASE, "l6\nl7\n", "agent6\nagent7\n")
    theirs = "top\n" + edit(BASE, "l6\nl7\n", "user6\n")
    result = rebase(BASE, ours, theirs)
    assert not result.clean
    assert result.text is None
    [conflict] = result.conflicts
    # Line numbers refer to the user's current text, which has one extra line at the top.
    assert conflict == Conflict(
        start_line=7,
        base_lines=("l6\n", "l7\n"),
        agent_lines=("agent6\n", "agent7\n"),
        user_lines=("user6\n",),
    )
    assert conflict.location() == "line 7"
    described = result.describe()
    assert "line 7" in described
    assert "user6" in described and "agent7" in described


def test_conflict_where_the_user_deleted_the_lines():
    ours = edit(BASE, "l4\n", "agent\n")
    theirs = edit(BASE, "l3\nl4\nl5\n", "")
    [conflict] = rebase(BASE, ours, theirs).conflicts
    assert conflict.user_lines == ()
    assert conflict.location() == "before line 3"
    assert "(nothing)" in conflict.describe()


def test_adjacent_line_changes_conflict_rather_than_guess():
    ours = edit(BASE, "l4\n", "agent\n")
    theirs = edit(BASE, "l5\n", "user\n")
    result = rebase(BASE, ours, theirs)
    assert not result.clean
    assert result.conflicts[0].location() == "lines 4-5"


def test_every_conflict_is_reported_in_order_and_quoted_verbatim():
    ours = edit(edit(BASE, "l2\n", "limit = MAX\n"), "l10\n", "agent10\r\nagent10b\n")
    theirs = edit(edit(BASE, "l2\n", "user2\n"), "l10\n", "user10\n")
    result = rebase(BASE, ours, theirs)
    assert [c.location() for c in result.conflicts] == ["line 2", "line 10"]
    header = "of the current text: the user changed this region after it was read.\n"
    assert result.describe() == (
        f"Conflict at line 2 {header}"
        "User's current text:\n    user2\n"
        "Agent's version:\n    limit = MAX\n"  # only the line ending is dropped
        "\n"
        f"Conflict at line 10 {header}"
        "User's current text:\n    user10\n"
        "Agent's version:\n    agent10\n    agent10b\n"
    )


def test_a_long_conflict_quotes_twenty_lines_and_counts_the_rest():
    user = tuple(f"u{i}\n" for i in range(21))
    text = Conflict(start_line=1, base_lines=(), agent_lines=("a\n",), user_lines=user).describe()
    assert "    u19\n" in text and "u20" not in text
    assert "    ... (1 more lines)\n" in text
