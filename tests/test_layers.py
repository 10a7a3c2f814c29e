"""The packages form layers along the data path, and imports only point down.

A package may import itself and any package listed after it; never one listed before it. That
rules out import cycles between packages. Imports under ``if TYPE_CHECKING:`` count too: a type
that an upper layer owns is a type the lower layer should not need.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lsp_agent"

# Top to bottom: front ends, sessions, the loop, its services, their parts, plain types.
LAYERS = [
    "cli",  # lsp_agent/cli.py and __main__.py
    "client",  # the headless `run` and the demo: an LSP client of our own server
    "server",  # LSP front end: thin handlers
    "acp",  # ACP front end (lsp-agent acp): thin handlers, same sessions
    "sessions",
    "extensions",  # MCP servers, skills, commands, plugins: what users add without code
    "agent",
    "tools",
    "context",
    "model",
    "store",  # transcripts, checkpoints and their blobs (what makes sessions last)
    "edits",
    "permissions",
    "code_intel",
    "workspace",
    "procs",  # subprocesses: their environment, and that none outlives the server
    "scripted",  # the offline Messages-API server (a program of its own)
    "types",
    "",  # the root package: version constants only
]
RANK = {name: rank for rank, name in enumerate(LAYERS)}
IGNORED = {"demo_project"}  # sample files copied by the demo, not code of ours


def _layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] in {"__init__"}:
        return ""
    return "cli" if parts[0] in {"cli", "__main__"} else parts[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    module = _module_name(path)
    is_pkg = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("lsp_agent")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("lsp_agent"):
                if target == "lsp_agent":
                    # `from lsp_agent import x`: x may be a subpackage
                    found += [(node.lineno, f"lsp_agent.{a.name}") if a.name in RANK
                              else (node.lineno, "lsp_agent") for a in node.names]
                else:
                    found.append((node.lineno, target))
    return found


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not IGNORED.intersection(p.relative_to(PACKAGE).parts))


def upward_imports() -> list[str]:
    problems = []
    for path in _sources():
        here = _layer_of(_module_name(path))
        for line, target in _imports(path):
            there = _layer_of(target)
            if there == here:
                continue
            if there not in RANK or here not in RANK:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: "
                                f"package {there or here!r} has no place in LAYERS")
            elif RANK[there] < RANK[here]:
                problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports "
                                f"{target}, a layer above it")
    return problems


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - IGNORED <= set(RANK), sorted(packages - IGNORED - set(RANK))


def test_imports_only_point_down():
    problems = upward_imports()
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


@pytest.mark.parametrize(("source", "expected"), [
    ("from lsp_agent.server import protocol\n", "server"),
    ("from ..server.protocol import plain\n", "server"),
    ("import lsp_agent.sessions.session\n", "sessions"),
])
def test_the_check_sees_every_import_form(tmp_path, monkeypatch, source, expected):
    """The checker itself: an upward import in any form is reported."""
    fake = tmp_path / "lsp_agent"
    (fake / "types").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "types" / "__init__.py").write_text("")
    (fake / "types" / "bad.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    problems = upward_imports()
    assert len(problems) == 1 and expected in problems[0], problems
