"""The jedi worker's faster references (issue 16): jedi's project search with a per-query walk
and a word cache (jedi_search), and parso's disk cache written between queries
(parse_cache_writer). Both must leave jedi's answers exactly as they were."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import jedi
import parso
import pytest
from jedi.file_io import FolderIO
from jedi.inference import references as jedi_references
from parso import cache as parso_cache

from lsp_agent.code_intel import jedi_search, parse_cache_writer
from lsp_agent.code_intel.jedi_intel import JediEngine, JediIntel
from lsp_agent.code_intel.jedi_worker import close_channel, open_channel
from lsp_agent.workspace.documents import DiskDocuments

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "multimodule"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def engine(project: Path, tmp_path: Path) -> JediEngine:
    return JediEngine(project, cache_dir=tmp_path / "jedi-cache")


@pytest.fixture
def cached_search(monkeypatch) -> jedi_search.ProjectSearch:
    """jedi's search swapped for ProjectSearch in this test only."""
    search = jedi_search.ProjectSearch(jedi_references, jedi_references.search_in_file_ios)
    monkeypatch.setattr(jedi_references, "_find_project_modules", search.find_project_modules)
    monkeypatch.setattr(jedi_references, "search_in_file_ios", search.search_in_file_ios)
    return search


def position(path: Path, line_text: str, symbol: str) -> tuple[int, int]:
    for number, text in enumerate(path.read_text().splitlines()):
        if line_text in text:
            return number, text.index(symbol, text.index(line_text))
    raise AssertionError(f"{line_text!r} not in {path}")


def found(engine: JediEngine, path: Path, line: int, column: int) -> list[tuple[str, int, int]]:
    result = engine.references(path, path.read_text(), line, column)
    return [(str(loc.path), loc.line, loc.column) for loc in result.items]


QUESTIONS = [  # (file, a line with the name, the name): functions, classes, modules
    ("shop/util/money.py", "def round_money(", "round_money"),
    ("shop/pricing.py", "round_money", "round_money"),
    ("shop/models.py", "class Cart:", "Cart"),
    ("shop/orders.py", "from shop.inventory import Inventory", "Inventory"),
    ("shop/orders.py", "import itertools", "itertools"),
]


def questions(project: Path) -> list[tuple[Path, int, int]]:
    return [(project / relative, *position(project / relative, line_text, symbol))
            for relative, line_text, symbol in QUESTIONS]


# --------------------------------------------------------------------------- same answers


def test_cached_search_answers_exactly_what_jedi_answers(project, tmp_path, monkeypatch):
    asked = questions(project)
    plain = JediEngine(project, cache_dir=tmp_path / "plain")
    expected = [found(plain, *q) for q in asked]
    assert all(expected) and len(expected[0]) > 5  # the questions have real answers

    search = jedi_search.ProjectSearch(jedi_references, jedi_references.search_in_file_ios)
    monkeypatch.setattr(jedi_references, "_find_project_modules", search.find_project_modules)
    monkeypatch.setattr(jedi_references, "search_in_file_ios", search.search_in_file_ios)
    cached = JediEngine(project, cache_dir=tmp_path / "cached")

    assert [found(cached, *q) for q in asked] == expected
    assert [found(cached, *q) for q in asked] == expected  # and again from the warm cache
    assert len(search.words) == len(list(project.rglob("*.py")))


@pytest.mark.parametrize("text, name", [
    ("round_money(x)", "round_money"),
    ("x.round_money", "round_money"),
    ("round_moneys = 1", "round_money"),  # longer word: no match
    ("_round_money()", "round_money"),
    ("# see round_money in money.py", "round_money"),  # comments count, as for jedi
    ("'round_money'", "round_money"),
    ("round_money2 = round_money", "round_money"),
    ("prix_é = 1", "prix_é"),  # non-ASCII identifiers
    ("prix_éx = 1", "prix_é"),
    ("a1 = 1", "a1"),
    ("", "a"),
])
def test_word_test_agrees_with_jedis_regex(tmp_path, text, name):
    path = tmp_path / "m.py"
    path.write_text(text, encoding="utf-8")
    words = jedi_search.WordCache().words(str(path), {})
    assert words is not None
    assert (name in words) == bool(re.search(r"\b" + re.escape(name) + r"\b", text))


def test_prefix_searches_are_left_to_jedi(project, engine):
    # A prefix search (``complete``, as jedi's workspace search asks) is jedi's own code.
    search = jedi_search.ProjectSearch(jedi_references, jedi_references.search_in_file_ios)
    money = project / "shop" / "util" / "money.py"
    inference = engine._script(money, money.read_text())._inference_state
    files = list(jedi_references.recurse_find_python_files(FolderIO(str(project))))

    def modules(search_in_file_ios) -> list[str]:
        return [str(m.py__file__()) for m in search_in_file_ios(inference, iter(files),
                                                                "round_", complete=True)]

    expected = modules(jedi_references.search_in_file_ios)
    assert str(money) in expected
    assert modules(search.search_in_file_ios) == expected
    assert len(search.words) == 0  # the word cache was not consulted


# --------------------------------------------------------------------------- freshness


def test_an_edited_file_is_read_again(project, cached_search, engine):
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")
    before = found(engine, money, line, column)

    models = project / "shop" / "models.py"
    models.write_text(models.read_text()
                      + "\nfrom shop.util.money import round_money\nround_money(1)\n")
    after = found(engine, money, line, column)

    added = {entry for entry in after if entry[0] == str(models)}
    assert len(added) == 2 and set(after) - set(before) == added


def test_new_and_deleted_files_are_seen_by_the_next_query(project, cached_search, engine):
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")
    found(engine, money, line, column)

    extra = project / "shop" / "extra.py"
    extra.write_text("from shop.util.money import round_money\nround_money(2)\n")
    assert any(path == str(extra) for path, _, _ in found(engine, money, line, column))

    extra.unlink()
    (project / "tests" / "test_pricing.py").unlink()
    after = found(engine, money, line, column)
    assert after and not any(path.endswith(("extra.py", "test_pricing.py"))
                             for path, _, _ in after)


def test_the_project_is_walked_once_per_query(project, cached_search, engine, monkeypatch):
    walks = []
    walk = jedi_references.recurse_find_python_files

    def counted(*args, **kwargs):
        walks.append(args)
        return walk(*args, **kwargs)

    monkeypatch.setattr(jedi_references, "recurse_find_python_files", counted)
    # ``module`` is a parameter: to follow ``module.round_money`` jedi looks for the calls
    # of ``apply`` in the project, a second search in the same query.
    (project / "shop" / "apply.py").write_text(
        "def apply(module):\n    return module.round_money(1)\n")
    money = project / "shop" / "util" / "money.py"
    line, column = position(money, "def round_money(", "round_money")
    searches = []
    search = jedi_references.search_in_file_ios

    def counted_search(*args, **kwargs):
        searches.append(args[2])
        return search(*args, **kwargs)

    monkeypatch.setattr(jedi_references, "search_in_file_ios", counted_search)

    assert found(engine, money, line, column)
    assert len(searches) > 1  # jedi searched the project more than once (dynamic params) ...
    assert len(walks) == 1  # ... on one walk
    found(engine, money, line, column)
    assert len(walks) == 2  # the next query walks again: files may have come or gone


def test_install_swaps_jedis_search_once(monkeypatch):
    for attr in ("search_in_file_ios", "_find_project_modules"):  # restored after the test
        monkeypatch.setattr(jedi_references, attr, getattr(jedi_references, attr))
    monkeypatch.setattr(jedi_search, "_installed", None)
    installed = jedi_search.install()
    assert installed is not None and jedi_search.install() is installed
    assert jedi_references.search_in_file_ios == installed.search_in_file_ios
    assert jedi_references._find_project_modules == installed.find_project_modules


# --------------------------------------------------------------------------- deferred pickles


@pytest.fixture
def deferred(monkeypatch) -> parse_cache_writer.DeferredPickles:
    pickles = parse_cache_writer.DeferredPickles(
        parso_cache._save_to_file_system,
        lambda grammar, path: parso_cache.parser_cache.get(grammar, {}).get(path))
    monkeypatch.setattr(parso_cache, "_save_to_file_system", pickles)
    return pickles


def pickles_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.pkl"))


def parse(path: Path, cache_dir: Path, code: str | None = None):
    grammar = parso.load_grammar()
    return grammar.parse(code=code, path=path, cache=True, cache_path=cache_dir)


def test_pickles_wait_for_flush_and_then_serve_the_next_process(tmp_path, deferred):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    return 1\n")
    cache_dir = tmp_path / "cache"

    parse(source, cache_dir)
    assert pickles_in(cache_dir) == [] and len(deferred) == 1

    assert deferred.flush() == 1
    assert len(pickles_in(cache_dir)) == 1 and len(deferred) == 0

    # Another process (here: an emptied memory cache) loads the pickle instead of parsing.
    parso_cache.parser_cache.clear()
    grammar = parso.load_grammar()
    loaded = parso_cache.load_module(grammar._hashed, parso.file_io.FileIO(source),
                                     cache_path=cache_dir)
    assert loaded is not None and loaded.get_code() == source.read_text()


def test_a_file_parsed_again_is_pickled_once_with_its_latest_tree(tmp_path, deferred):
    source = tmp_path / "m.py"
    now = source.parent.stat().st_mtime
    source.write_text("a = 1\n")
    os.utime(source, (now - 100, now - 100))
    cache_dir = tmp_path / "cache"
    parse(source, cache_dir)
    source.write_text("b = 2\n")
    os.utime(source, (now - 50, now - 50))  # modified later: parso parses anew
    parse(source, cache_dir)

    assert len(deferred) == 1
    assert deferred.flush() == 1
    parso_cache.parser_cache.clear()
    grammar = parso.load_grammar()
    loaded = parso_cache.load_module(grammar._hashed, parso.file_io.FileIO(source),
                                     cache_path=cache_dir)
    assert loaded is not None and loaded.get_code() == "b = 2\n"


def test_a_tree_parso_no_longer_holds_is_not_pickled(tmp_path, deferred):
    source = tmp_path / "m.py"
    source.write_text("a = 1\n")
    cache_dir = tmp_path / "cache"
    parse(source, cache_dir)
    parso_cache.parser_cache.clear()  # e.g. replaced by an edit's parse not pickled

    assert deferred.flush() == 0
    assert pickles_in(cache_dir) == []


def test_flush_stops_as_soon_as_a_request_waits(tmp_path, deferred):
    cache_dir = tmp_path / "cache"
    for n in range(3):
        source = tmp_path / f"m{n}.py"
        source.write_text(f"x{n} = {n}\n")
        parse(source, cache_dir)
    asked = iter([False, True])

    assert deferred.flush(lambda: next(asked)) == 1
    assert len(deferred) == 2 and len(pickles_in(cache_dir)) == 1


def test_input_waiting_sees_a_request_without_reading_it():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
        waiting = parse_cache_writer.input_waiting(reader)
        assert not waiting()
        writer.write(b'{"op": "hover"}\n')
        writer.flush()
        assert waiting() and waiting()  # still there: nothing was consumed
        assert reader.readline() == b'{"op": "hover"}\n'


async def test_the_worker_writes_the_disk_cache_after_answering(project, tmp_path):
    """The real worker process: parso's pickles land in its cache folder once the answer
    is out (none of them is lost by deferring)."""
    cache_dir = tmp_path / "worker-cache"
    channel = open_channel(cache_dir)
    intel = JediIntel(project, DiskDocuments(), cache_dir=cache_dir)
    try:
        money = project / "shop" / "util" / "money.py"
        line, column = position(money, "def round_money(", "round_money")
        result = await intel.references(money, line, column)
        assert len(result.items) > 5

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60  # a bound against hangs only
        while len(pickles_in(cache_dir)) < 5:
            assert loop.time() < deadline, "the worker wrote no parso cache"
            await asyncio.sleep(0.05)
        again = await intel.references(money, line, column)
        assert [loc.model_dump() for loc in again.items] == [
            loc.model_dump() for loc in result.items]
    finally:
        intel.close()
        close_channel(channel)


def test_jedi_version_is_the_one_the_search_was_written_for():
    # jedi_search mirrors jedi 0.20's search; a newer jedi needs a look before the pin moves.
    assert jedi.__version__.startswith("0.20.")
