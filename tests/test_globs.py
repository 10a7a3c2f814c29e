"""The one glob language shared by the Glob tool, permission rules and the secret tables."""

from __future__ import annotations

import re

import pytest

from lsp_agent.types.globs import glob_to_regex


def matches(glob: str, path: str, **switches: bool) -> bool:
    return re.fullmatch(glob_to_regex(glob, **switches), path, re.DOTALL) is not None


@pytest.mark.parametrize(("glob", "path", "expected"), [
    ("*.py", "a.py", True),
    ("*.py", "src/a.py", False),  # * stays in one segment
    ("**/*.py", "a.py", True),  # **/ matches zero folders
    ("**/*.py", "src/deep/a.py", True),
    ("src/**", "src/a/b", True),
    ("src/**", "src", False),  # not the folder itself unless asked
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[!x]y", "zy", True),
    ("[!x]y", "xy", False),
    ("[]]", "]", True),  # a leading ] is a member
    ("a.b", "axb", False),  # the rest is literal
])
def test_the_shared_rules(glob: str, path: str, expected: bool):
    assert matches(glob, path) is expected


def test_braces_are_alternatives_only_when_asked():
    assert matches("*.{ts,tsx}", "a.tsx", braces=True)
    assert not matches("*.{ts,tsx}", "a.tsx")
    assert matches("*.{ts,tsx}", "a.{ts,tsx}")
    assert matches("{src,lib/{a,b}}/x", "lib/b/x", braces=True)


def test_brackets_can_be_literal_for_folders_named_with_them():
    assert matches("app/[id]/page.tsx", "app/[id]/page.tsx", classes=False)
    assert not matches("app/[id]/page.tsx", "app/i/page.tsx", classes=False)
    assert matches("app/[id]/page.tsx", "app/i/page.tsx")


def test_a_trailing_globstar_can_cover_the_folder_itself():
    assert matches("src/**", "src", folder_itself=True)
    assert matches("src/**", "src/a/b", folder_itself=True)
    assert not matches("src/**", "srcx", folder_itself=True)
