"""Outlines from parso's tree (code_intel/outline.py) and the memos that keep them.

The tree walk must answer exactly what the jedi-names path answered (the reference, kept as
``JediEngine.document_symbols_by_jedi``): same entries, kinds, details and ranges, on real
files and on the corner cases of jedi's scoping rules. Runs jedi in this process.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from lsp_agent.code_intel import outline
from lsp_agent.code_intel.jedi_intel import JediEngine, JediIntel, _definition_end
from lsp_agent.code_intel.text_memo import TextMemo
from lsp_agent.workspace.documents import DocumentSnapshot

REPO = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])

# The corners of jedi's scoping that decide whether and where a name shows.
CORNERS = '''\
"""Module doc."""
from __future__ import annotations
import os.path, json as j
from .sibling import (a, b as c)
from . import *

TOTAL, (first, *rest) = 1, (2, 3)
squares = [n * n for n in range(3)]
pairs = {k: v for k, v in [(1, 2)]}
if (found := os.getcwd()):
    pass
for index in range(2):
    pass
with open(__file__) as handle, open(__file__) as (other):
    pass
try:
    pass
except ValueError as error:
    pass
lam = lambda x, y=(z := 3): x
GLOBAL: int


def outer(p, q=(w := 1), *args, **kwargs):
    global TOTAL
    TOTAL = 2
    inner_value = [m for m in range(2)]

    def inner():
        nonlocal inner_value
        import sys
        return sys

    class Local:
        attr = 1

    return inner


class Base:
    x: int = 0
    y = z2 = 1
    names = [letter for letter in "ab"]

    class Nested:
        deep = True

        def method(self):
            self.deeper = 1

    def __init__(self, owner):
        self.owner = owner
        self.owner = None
        (self.a, self.b) = (1, 2)
        self.items[0] = 1
        other.attr = 3

    @property
    def size(self):
        return 1

    @size.setter
    def size(self, value):
        self._size = value

    @staticmethod
    async def fetch():
        async with open(__file__) as stream:
            return [item async for item in stream]

    @classmethod
    def build(cls):
        cls.registry = {}


class Child(Base, metaclass=type):
    def method(self): return 1
    def one_liner(self): self.quick = 1
'''

BROKEN = (CORNERS[: CORNERS.index("    @property")]
          + "    def half(self, \n\nclass After:\n    x = (\n")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> JediEngine:
    return JediEngine(REPO, cache_dir=tmp_path_factory.mktemp("jedi-cache"))


def dumped(result) -> dict:
    return result.model_dump(mode="json")


def tree_outline(engine: JediEngine, path: Path, text: str):
    return outline.OutlineCache().outline(engine._grammar(path), path, text, engine.max_results)


@pytest.mark.parametrize("text", [CORNERS, BROKEN, "", "\n\n", "x = (", "def f(:\n  pass\n"],
                         ids=["corners", "half-typed", "empty", "blank", "open-paren", "bad-def"])
def test_tree_outline_equals_the_jedi_outline(engine, tmp_path, text):
    path = tmp_path / "corners.py"
    path.write_text(text)

    assert dumped(tree_outline(engine, path, text)) == dumped(
        engine.document_symbols_by_jedi(path, text))


REAL_FILES = [
    REPO / "lsp_agent" / "code_intel" / "jedi_intel.py",
    REPO / "lsp_agent" / "code_intel" / "jedi_worker.py",
    REPO / "lsp_agent" / "server" / "language_features.py",
    STDLIB / "argparse.py",
    STDLIB / "dataclasses.py",
    STDLIB / "asyncio" / "base_events.py",
]


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_tree_outline_equals_the_jedi_outline_on_real_files(engine, path):
    text = path.read_text(encoding="utf-8")

    tree = tree_outline(engine, path, text)

    assert dumped(tree) == dumped(engine.document_symbols_by_jedi(path, text))
    assert len(list(symbol for item in tree.items for symbol in item.walk())) > 20


def test_corner_outline_says_what_it_shows(engine, tmp_path):
    path = tmp_path / "corners.py"

    result = tree_outline(engine, path, CORNERS)

    top = {symbol.name: symbol.kind for symbol in result.items}
    assert top["j"] == "import" and top["c"] == "import" and top["os"] == "import"
    assert top["TOTAL"] == "constant" and top["rest"] == "variable"
    assert top["n"] == "variable"  # a module-level comprehension variable, as jedi lists it
    assert top["found"] == "variable" and top["error"] == "variable"
    assert "z" not in top  # one in a lambda's default: jedi puts it in the lambda
    base = next(symbol for symbol in result.items if symbol.name == "Base")
    members = [(child.name, child.kind) for child in base.children]
    assert ("size", "property") in members and ("fetch", "method") in members
    assert ("owner", "attribute") in members and ("registry", "attribute") in members
    assert [name for name, _ in members].count("owner") == 1
    assert base.detail == "class Base"
    outer = next(symbol for symbol in result.items if symbol.name == "outer")
    # a walrus in a default is the module's (a variable), shown where it is written
    assert [(child.name, child.kind) for child in outer.children] == [
        ("w", "variable"), ("inner", "function"), ("Local", "class")]
    assert [child.name for child in outer.children[1].children] == ["sys"]


def test_definition_end_needs_no_inference_and_agrees_with_jedi(engine, tmp_path):
    path = tmp_path / "ends.py"
    text = "from os import path\nimport json\n\n\ndef f():\n    return 1\n\n\nclass C:\n    x = 1\n"
    path.write_text(text)
    names = engine._script(path, text).get_names(all_scopes=True, definitions=True)

    ends = [_definition_end(name) for name in names]

    assert ends == [name.get_definition_end_position() for name in names]
    assert ends[0] == (1, 19) and ends[2] == (6, 12)  # the import, the function


def test_outline_is_kept_for_its_text_and_redone_after_an_edit(engine, tmp_path):
    path = tmp_path / "kept.py"
    cache = outline.OutlineCache()
    grammar = engine._grammar(path)
    before = "def a():\n    pass\n"
    after = before + "\n\ndef b():\n    pass\n"

    first = cache.outline(grammar, path, before, None)
    again = cache.outline(grammar, path, "".join([before]), None)  # equal text, another object
    edited = cache.outline(grammar, path, after, None)  # parso diff-parses the same tree
    back = cache.outline(grammar, path, before, None)

    assert again is first
    assert [s.name for s in edited.items] == ["a", "b"]
    assert dumped(edited) == dumped(engine.document_symbols_by_jedi(path, after))
    assert [s.name for s in back.items] == ["a"] and back is not first


@pytest.mark.parametrize("text", [
    "\x00\x01\x02 def \x00 class",  # binary read as text
    "x = '\ufffd\ufffd'\ndef \ufffd(): pass\n",  # undecodable bytes, replaced
    "é = 1\nclass Ünïcode:\n    ß = 2\n",
    "\r\n".join(f"v{n} = {n}" for n in range(3)) + "\r\n",
    "(" * 500 + ")" * 500,  # deep nesting
], ids=["binary", "replacement-chars", "unicode-names", "crlf", "deep"])
def test_odd_buffers_get_an_answer_not_an_error(engine, tmp_path, text):
    path = tmp_path / "odd.py"

    result = engine.document_symbols(path, text)

    assert not result.timed_out and result.skipped is None
    assert dumped(result) == dumped(engine.document_symbols_by_jedi(path, text))


def test_a_walk_that_fails_falls_back_to_jedi(engine, tmp_path, monkeypatch):
    path = tmp_path / "fallback.py"

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected tree")

    monkeypatch.setattr(outline, "outline_of", broken)
    result = JediEngine(REPO, cache_dir=tmp_path / "cache").document_symbols(
        path, "def only():\n    pass\n")

    assert [symbol.name for symbol in result.items] == ["only"]


def test_stub_files_parse_with_jedis_stub_grammar(engine, tmp_path):
    path = tmp_path / "types.pyi"
    text = "type Alias = int\ndef f[T](x: T) -> T: ...\n"

    result = engine.document_symbols(path, text)

    assert dumped(result) == dumped(engine.document_symbols_by_jedi(path, text))
    assert "f" in [symbol.name for symbol in result.items]


# --------------------------------------------------------------------------- the memo


def test_memo_answers_only_for_the_same_text():
    memo: TextMemo[str] = TextMemo()
    memo.put("a.py", "x = 1\n", "outline 1")

    assert memo.get("a.py", "x = 1\n") == "outline 1"
    assert memo.get("a.py", "x = 2\n") is None
    assert memo.get("b.py", "x = 1\n") is None


def test_memo_drops_the_least_recently_used_by_count_and_by_characters():
    memo: TextMemo[int] = TextMemo(max_entries=2, max_chars=10)
    memo.put("a", "aaaa", 1)
    memo.put("b", "bbbb", 2)
    memo.get("a", "aaaa")  # a is used: b goes first
    memo.put("c", "cc", 3)
    assert memo.get("b", "bbbb") is None and memo.get("a", "aaaa") == 1
    memo.put("d", "dddddd", 4)  # 2 + 4 + 6 characters, 3 entries: the oldest (c) goes
    assert len(memo) == 2 and memo.get("c", "cc") is None and memo.get("a", "aaaa") == 1
    memo.put("huge", "x" * 11, 5)  # never fits: not kept, nothing else lost
    assert memo.get("huge", "x" * 11) is None and len(memo) == 2
    memo.put("c", "cccccccccc", 6)  # replacing an entry counts its new text only
    assert memo.get("c", "cccccccccc") == 6 and len(memo) == 1


# --------------------------------------------------------------------------- the server side


class Buffers:
    def __init__(self, texts: dict[Path, str]):
        self.texts = texts
        self.version = 1

    def snapshot(self, path: Path) -> DocumentSnapshot:
        return DocumentSnapshot(path=path, text=self.texts[path], version=self.version)


class CountingIntel(JediIntel):
    """Counts what reaches the worker."""

    asked = 0

    async def _ask(self, *args, **kwargs):
        self.asked += 1
        return await super()._ask(*args, **kwargs)


@pytest.fixture
def counting(tmp_path):
    made: list[JediIntel] = []

    def make(buffers: Buffers, **kwargs) -> CountingIntel:
        intel = CountingIntel(tmp_path, buffers, cache_dir=tmp_path / "cache", **kwargs)
        made.append(intel)
        return intel

    yield make
    for intel in made:
        intel.close()


async def test_unchanged_buffer_skips_the_worker_and_an_edit_does_not(counting, tmp_path):
    path = tmp_path / "live.py"
    buffers = Buffers({path: "def a():\n    pass\n"})
    intel = counting(buffers)

    first = await intel.document_symbols(path)
    buffers.version = 2  # a new version, the same text: still the same outline
    second = await intel.document_symbols(path)
    buffers.texts[path] += "\n\nclass B:\n    pass\n"
    edited = await intel.document_symbols(path)

    assert second is first and intel.asked == 2
    assert [symbol.name for symbol in edited.items] == ["a", "B"]


async def test_too_large_buffers_are_skipped_and_not_kept(counting, tmp_path):
    path = tmp_path / "huge.py"
    buffers = Buffers({path: "x = 1\n" * 100})
    intel = counting(buffers, max_chars=50)

    first = await intel.document_symbols(path)
    second = await intel.document_symbols(path)

    assert first.skipped and second.skipped and intel.asked == 2
