"""What the server does before it answers initialize, made cheaper without changing what it
answers: the initialization options' defaults without building their validator, attrs's
generated code from a cache (lsp_agent/server/generated_code_cache.py), and the cyclic garbage
collector paused until the first message is answered (lsp_agent/server/start_gc.py)."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import attr._make
import pytest
from lsprotocol import types as lsp

from lsp_agent.server import generated_code_cache as gcc
from lsp_agent.server import protocol as p
from lsp_agent.server import start_gc
from lsp_agent.server.app import create_server

WAIT = 120.0


def initialize(options: object) -> lsp.InitializeParams:
    return lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                initialization_options=options)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("options", [None, {}, []])
def test_no_options_give_exactly_the_validated_defaults(options):
    server = create_server()
    server.configure(initialize(options))

    validated = p.InitializationOptions.model_validate({})
    assert server.options.model_dump() == validated.model_dump()
    assert server.options == validated  # every field, the defaults without pydantic
    assert server.permissions.timeout == validated.permission_timeout_seconds
    assert server.applier.timeout == validated.apply_edit_timeout_seconds


def test_given_options_are_validated_and_applied():
    server = create_server()
    server.configure(initialize({"permissionTimeoutSeconds": 5, "pythonLanguageFeatures": False,
                                 "editorSavesAppliedEdits": True}))
    assert server.options.permission_timeout_seconds == 5
    assert server.options.python_language_features is False
    assert server.permissions.timeout == 5 and server.applier.editor_saves is True


def test_options_validate_as_a_wire_model_did():
    # A dataclass validated by pydantic: camelCase or snake_case names, lax coercion, unknown
    # names ignored, the positive limits enforced (server/init_options.py).
    options = p.InitializationOptions.model_validate(
        {"permissionTimeoutSeconds": "7", "apply_edit_timeout_seconds": 2, "mode": "plan",
         "enabledMcpjsonServers": ["a"], "noSuchOption": 1})
    assert options.permission_timeout_seconds == 7.0 and options.apply_edit_timeout_seconds == 2
    assert options.mode == "plan" and options.safety_options() == {"enabledMcpjsonServers": ["a"]}
    for bad in ({"permissionTimeoutSeconds": 0}, {"mode": "bogus"}, {"persistSessions": "maybe"},
                "options", [1]):
        with pytest.raises(ValueError):
            p.InitializationOptions.model_validate(bad)


def test_invalid_options_are_ignored_with_a_warning(caplog):
    server = create_server()
    with caplog.at_level(logging.WARNING, logger="lsp_agent.server.app"):
        server.configure(initialize({"permissionTimeoutSeconds": -1}))
    assert "ignoring invalid initializationOptions" in caplog.text
    assert server.options.model_dump() == p.InitializationOptions.model_validate({}).model_dump()


# --------------------------------------------------------------------------- code cache

@pytest.fixture(autouse=True)
def python_writes_bytecode(monkeypatch):
    """As a user's Python does (this machine's tests run with PYTHONDONTWRITEBYTECODE)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


SCRIPT = "def make(x: Undefined = 1) -> Undefined:\n    return x + 1\n"
ANNOTATIONS = __import__("__future__").annotations.compiler_flag


def run(code: object, name: str = "make") -> object:
    scope: dict[str, object] = {}
    exec(code, scope)  # our own test source
    return scope[name]


def test_attrs_compiles_with_future_annotations_and_the_cache_uses_the_same_flags():
    assert gcc.future_flags(vars(attr._make)) & ANNOTATIONS


def test_a_saved_entry_is_the_same_code_and_is_not_compiled_again(tmp_path):
    path = tmp_path / "pycache" / "_make.generated"
    first = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    compiled = first.code(SCRIPT, "<generated make>")
    assert first.save() and path.exists()

    second = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    second.load()
    cached = second.code(SCRIPT, "<generated make>")
    assert cached == compiled and cached.co_filename == "<generated make>"
    assert second.save() is False  # nothing new: the file stays as it is
    make = run(cached)
    assert make() == 2  # type: ignore[operator]
    # Under the annotations future, as attrs's own compile: never evaluated.
    assert make.__annotations__ == {"x": "Undefined", "return": "Undefined"}  # type: ignore[attr-defined]


def test_another_source_or_file_name_is_compiled_not_taken_from_the_cache(tmp_path):
    path = tmp_path / "c.generated"
    cache = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    cache.code(SCRIPT, "<a>")
    cache.save()
    again = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    again.load()
    other = again.code(SCRIPT.replace("+ 1", "+ 2"), "<a>")
    renamed = again.code(SCRIPT, "<b>")
    assert run(other)() == 3  # type: ignore[operator]
    assert renamed.co_filename == "<b>"
    assert again.save()  # it compiled all it used: saved


@pytest.mark.parametrize("content", [b"", b"not marshal data", None])
def test_an_unreadable_or_foreign_file_is_ignored(tmp_path, content):
    path = tmp_path / "c.generated"
    if content is None:  # valid marshal data of another format
        import marshal

        path.write_bytes(marshal.dumps((b"other", b"xxxx", {b"k": compile("1", "x", "eval")})))
    else:
        path.write_bytes(content)
    cache = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    cache.load()
    assert run(cache.code(SCRIPT, "<a>"))() == 2  # type: ignore[operator]
    assert cache.save()  # replaced by a good one
    fresh = gcc.GeneratedCodeCache(path, ANNOTATIONS)
    fresh.load()
    fresh.code(SCRIPT, "<a>")
    assert fresh.save() is False


def test_nothing_is_written_when_python_writes_no_bytecode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = gcc.GeneratedCodeCache(tmp_path / "c.generated", ANNOTATIONS)
    cache.code(SCRIPT, "<a>")
    assert cache.save() is False and not (tmp_path / "c.generated").exists()


def test_the_cache_lives_with_the_module_bytecode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "prefix"))
    path = gcc.cache_path(Path("/somewhere/attr/_make.py"))
    assert path.parent == tmp_path / "prefix" / "somewhere" / "attr"
    assert path.name == f"_make.{sys.implementation.cache_tag}.generated"


def test_install_does_nothing_on_an_attrs_without_the_step(monkeypatch):
    monkeypatch.setattr(gcc, "_installed", None)
    monkeypatch.delattr(attr._make, "_compile_and_eval")
    assert gcc.install() is None


PROGRAM = r"""
import json, sys
from lsp_agent.server import generated_code_cache
cache = generated_code_cache.install()
from lsprotocol import types
from pygls.protocol import default_converter
params = default_converter().structure(json.loads(sys.argv[1]), types.InitializeParams)
compiled = cache._compiled
saved = cache.save()
print(json.dumps({"compiled": compiled, "saved": saved, "path": str(cache.path),
                  "params": repr(params)}))
"""


def test_a_second_start_takes_lsprotocols_generated_code_from_the_cache(tmp_path):
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    message = json.dumps({"processId": 1, "rootUri": "file:///tmp/x", "capabilities": {
        "general": {"positionEncodings": ["utf-8", "utf-16"]},
        "textDocument": {"hover": {"contentFormat": ["markdown"]}}}})

    def start() -> dict:
        done = subprocess.run([sys.executable, "-c", PROGRAM, message], capture_output=True,
                              text=True, timeout=WAIT, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first, second = start(), start()
    assert first["compiled"] > 500 and first["saved"]  # lsprotocol's ~570 classes
    assert Path(first["path"]).is_relative_to(tmp_path / "pycache")
    # One class's source holds a per-process hash seed (cattrs's AttributeOverride.__hash__):
    # compiled every time, and no reason to rewrite the file.
    assert second["compiled"] <= 2 and not second["saved"]
    assert second["params"] == first["params"]  # the classes work the same from the cache


# --------------------------------------------------------------------------- collector


@pytest.fixture
def collector_on():
    gc.enable()
    yield
    start_gc.resume()
    gc.enable()


def test_pause_and_resume_the_collector(collector_on):
    start_gc.pause()
    assert not gc.isenabled()
    start_gc.resume()
    assert gc.isenabled()


def test_resume_leaves_a_collector_someone_else_turned_off_alone(collector_on):
    gc.disable()
    start_gc.pause()  # already off: not ours to turn on again
    start_gc.resume()
    assert not gc.isenabled()


async def test_resume_soon_waits_for_what_the_loop_has_ready(collector_on):
    start_gc.pause()
    seen: list[bool] = []
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: seen.append(gc.isenabled()))  # as the writer's flush
    start_gc.resume_soon()
    assert not gc.isenabled()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen == [False] and gc.isenabled()


def test_the_server_resumes_the_collector_after_the_first_message(collector_on, tmp_path):
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}},
                {"jsonrpc": "2.0", "method": "exit"}]
    data = b"".join(b"Content-Length: %d\r\n\r\n" % len(m) + m
                    for m in (json.dumps(x).encode() for x in messages))
    out = io.BytesIO()
    start_gc.pause()
    create_server().start_io(io.BytesIO(data), out)
    assert b'"capabilities"' in out.getvalue()
    assert gc.isenabled()
