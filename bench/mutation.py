"""Mutation check: does any test notice when a line of the safety-critical code changes?

Small, deliberate changes (mutants) are made to one module at a time with the ``ast`` module --
an operator or comparison flipped, a constant changed, a call or return value dropped, an
entry removed from a rule table -- and the focused tests of the module's package are run
against each. A mutant the tests do not notice *survives*: either no test pins that behaviour
down (worth a test) or the change does not alter behaviour (equivalent). docs/testing.md keeps
the verdicts.

Each run works in a temporary copy of the repository (never in the checkout), put first on
``PYTHONPATH`` so that servers started by the tests import the mutant too. Every test run is
a killable process group with a time limit; a mutant that hangs the tests counts as caught.

    python bench/mutation.py                          # the default sample (see SAMPLE)
    python bench/mutation.py --module rules.py --max-mutants 20
    python bench/mutation.py --module lsp_agent/edits/ --max-mutants 0   # 0: every mutant
    python bench/mutation.py --only 'lsp_agent/edits/merge.py::rebase:cmp:Eq->NotEq#0'
    python bench/mutation.py --module paths.py --list  # show the mutants, run nothing

Results: bench/results/mutation.json and a summary on stdout.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import datetime as dt
import fnmatch
import json
import os
import platform
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "mutation.json"

# Which tests judge a package's mutants: the focused files, not the whole suite. They run in
# this order and stop at the first failure, so the quick, in-process files come first.
FOCUSED_TESTS = {
    "lsp_agent/permissions/": ["tests/test_permissions_policy.py", "tests/test_shell_corpus.py",
                               "tests/test_permissions_hooks_sandbox.py"],
    "lsp_agent/edits/": ["tests/test_edits_*.py"],
    "lsp_agent/sessions/": ["tests/test_sessions_*.py", "tests/test_context_session.py",
                            "tests/test_todos.py", "tests/test_stop_hooks.py"],
}
# The default run: a bounded sample the shared two-core machine can afford.
SAMPLE = ["lsp_agent/permissions/rules.py", "lsp_agent/permissions/paths.py",
          "lsp_agent/edits/merge.py", "lsp_agent/edits/diff.py",
          "lsp_agent/sessions/proposals.py"]
COPIED = ["lsp_agent", "tests", "fixtures", "docs", "pyproject.toml"]
PYTEST_ARGS = ["-x", "-q", "--no-header", "-p", "no:randomly", "-p", "no:cacheprovider"]
NO_MUTATE = "pragma: no mutate"
SHORT_STRING = 12  # longer strings are messages; mutating them only tests wording

BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift,
}
CMP_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
    ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
BOOLOP_SWAPS: dict[type[ast.boolop], type[ast.boolop]] = {ast.And: ast.Or, ast.Or: ast.And}
LOOP_JUMPS: dict[type[ast.stmt], type[ast.stmt]] = {ast.Break: ast.Continue,
                                                    ast.Continue: ast.Break}


# -- finding mutants ---------------------------------------------------------------------------

@dataclass
class Site:
    """One mutant: where it is and what it changes. ``path`` locates the node in a fresh parse."""

    id: str
    line: int
    kind: str
    before: str
    after: str
    path: tuple[int, ...] = field(repr=False)


@dataclass
class Outcome:
    id: str
    line: int
    kind: str
    before: str
    after: str
    status: str  # killed | survived | timeout
    seconds: float
    failed_test: str = ""


# A mutator takes a node (in a tree it may change) and returns the replacement node, or None
# when it does not apply; `_mutators` lists those that apply to a node.
Mutate = Callable[[ast.AST], ast.AST | None]


def _swap_op(table: dict, attr: str) -> Mutate:
    def mutate(node: ast.AST) -> ast.AST | None:
        op = getattr(node, attr, None)
        if type(op) not in table:
            return None
        setattr(node, attr, table[type(op)]())
        return node
    return mutate


def _swap_compare(index: int) -> Mutate:
    def mutate(node: ast.AST) -> ast.AST:
        node.ops[index] = CMP_SWAPS[type(node.ops[index])]()  # type: ignore[attr-defined]
        return node
    return mutate


def _change_constant(node: ast.AST) -> ast.AST | None:
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool):
        return ast.Constant(not value)
    if isinstance(value, int):
        return ast.Constant(value + 1)
    if isinstance(value, str) and len(value) <= SHORT_STRING:
        return ast.Constant(f"X{value}X")
    return None


def _drop_not(node: ast.AST) -> ast.AST | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return node.operand
    return None


def _negate_condition(node: ast.AST) -> ast.AST | None:
    """``if x:`` -> ``if not x:`` where the test is a plain value (comparisons flip above)."""
    if isinstance(node, ast.If | ast.While | ast.IfExp) and isinstance(
            node.test, ast.Name | ast.Attribute | ast.Call | ast.Subscript):
        node.test = ast.UnaryOp(ast.Not(), node.test)
        return node
    return None


def _return_none(node: ast.AST) -> ast.AST | None:
    """``return x`` -> ``return None``; not for constants, which ``const`` changes already."""
    if isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and (node.value.value is None
                                                      or isinstance(node.value.value, bool))):
        node.value = ast.Constant(None)
        return node
    return None


def _drop_call(node: ast.AST) -> ast.AST | None:
    """A call made for its effect (``emit(...)``, ``await apply(...)``) becomes ``None``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        return ast.Expr(ast.Constant(None))
    return None


def _jump(node: ast.AST) -> ast.AST | None:
    return LOOP_JUMPS[type(node)]() if type(node) in LOOP_JUMPS else None


def _drop_element(index: int) -> Mutate:
    """Remove one entry of a literal table (a tuple, list, set or dict of constants)."""
    def mutate(node: ast.AST) -> ast.AST | None:
        if isinstance(node, ast.Dict):
            del node.keys[index], node.values[index]
        else:
            del node.elts[index]  # type: ignore[attr-defined]
        return node
    return mutate


def _table_entries(node: ast.AST) -> list[ast.AST]:
    """The entries of a literal table of two or more constants, else nothing."""
    if isinstance(node, ast.Dict):
        entries: list[ast.AST] = [k for k in node.keys if k is not None]
        if len(entries) < len(node.keys):  # a ``**spread``
            return []
    elif isinstance(node, ast.Set) or (
            isinstance(node, ast.Tuple | ast.List) and isinstance(node.ctx, ast.Load)):
        entries = list(node.elts)  # type: ignore[attr-defined]
    else:
        return []
    if len(entries) < 2 or not all(isinstance(e, ast.Constant) for e in entries):
        return []
    return entries


def _mutators(node: ast.AST) -> Iterator[tuple[str, str, Mutate]]:
    """The mutations that apply to ``node``: (kind, label, mutate); an empty label means
    "describe it by the node's operator or type"."""
    if isinstance(node, ast.BinOp | ast.AugAssign):
        yield "binop", "", _swap_op(BINOP_SWAPS, "op")
    if isinstance(node, ast.BoolOp):
        yield "boolop", "", _swap_op(BOOLOP_SWAPS, "op")
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAPS:
                yield "cmp", f"{type(op).__name__}->{CMP_SWAPS[type(op)].__name__}", \
                    _swap_compare(i)
    for i, entry in enumerate(_table_entries(node)):
        yield "drop-entry", _label(entry.value), _drop_element(i)  # type: ignore[attr-defined]
    if isinstance(node, ast.Constant):
        yield "const", _label(node.value), _change_constant
    simple = (("not", _drop_not), ("negate", _negate_condition), ("return", _return_none),
              ("call", _drop_call), ("jump", _jump))
    for kind, mutate in simple:
        yield kind, "", mutate


def _label(value: object) -> str:
    return re.sub(r"[^\w.*/~:-]", "_", repr(value))[:24]


def _children(node: ast.AST) -> Iterator[tuple[int, ast.AST]]:
    """Child nodes numbered as ``_slots`` numbers them, without what is not worth mutating."""
    for index, (name, _position, child) in enumerate(_slots(node)):
        if not _skipped(name, child):
            yield index, child


def _skipped(field_name: str, child: ast.AST) -> bool:
    if field_name in {"annotation", "returns", "decorator_list", "type_comment"}:
        return True
    if isinstance(child, ast.JoinedStr | ast.ImportFrom | ast.Import):
        return True
    if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant) and isinstance(
            child.value.value, str):
        return True  # a docstring
    if isinstance(child, ast.Expr) and _is_log_call(child.value):
        return True  # what is logged is not behaviour
    if isinstance(child, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in child.targets):
        return True  # the export list; test_layers and imports check it
    return isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING"


def _is_log_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id in {"log", "logger"})


def _walk(node: ast.AST, path: tuple[int, ...] = (), scope: str = "<module>",
          ) -> Iterator[tuple[ast.AST, tuple[int, ...], str]]:
    yield node, path, scope
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        scope = node.name if scope == "<module>" else f"{scope}.{node.name}"
    for index, child in _children(node):
        yield from _walk(child, (*path, index), scope)


def _slots(node: ast.AST) -> Iterator[tuple[str, int | None, ast.AST]]:
    """Child nodes in a stable order: (field, position in a list field or None, child)."""
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            yield from ((name, i, item) for i, item in enumerate(value)
                        if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            yield name, None, value


def _node_at(tree: ast.AST, path: tuple[int, ...]) -> tuple[ast.AST, ast.AST | None, int]:
    """The node at ``path``, its parent and its index there."""
    node, parent, last = tree, None, -1
    for step in path:
        parent, last = node, step
        node = list(_slots(node))[step][2]
    return node, parent, last


def _replace_child(parent: ast.AST, wanted: int, new: ast.AST) -> None:
    name, position, _old = list(_slots(parent))[wanted]
    if position is None:
        setattr(parent, name, new)
    else:
        getattr(parent, name)[position] = new


def _short(node: ast.AST, limit: int = 90) -> str:
    if isinstance(node, ast.If | ast.While):  # the condition, not the whole block
        keyword = "if" if isinstance(node, ast.If) else "while"
        return _short(ast.Expr(ast.Name(f"{keyword} {ast.unparse(node.test)}:")), limit)
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_sites(rel: str, source: str) -> list[Site]:
    tree = ast.parse(source)
    lines = source.splitlines()
    sites: list[Site] = []
    seen: dict[str, int] = {}
    table_entries: set[int] = set()  # dropping an entry already tests it; no second mutant
    for node, path, scope in _walk(tree):
        table_entries.update(id(entry) for entry in _table_entries(node))
        line = getattr(node, "lineno", 0)
        if not path or (line and NO_MUTATE in lines[line - 1]):
            continue
        for kind, label, mutate in _mutators(node):
            if kind == "const" and id(node) in table_entries:
                continue
            mutated = mutate(copy.deepcopy(node))
            if mutated is None:
                continue
            before, after = _short(node), _short(mutated)
            if before == after:
                continue
            detail = label or _op_name(mutated if kind in {"binop", "boolop"} else node)
            # Named by scope and operator, not line number, so that ids survive edits elsewhere.
            key = f"{rel}::{scope}:{kind}:{detail}"
            n = seen.get(key, 0)
            seen[key] = n + 1
            sites.append(Site(f"{key}#{n}", line, kind, before, after, path))
    return sites


def _op_name(node: ast.AST) -> str:
    op = getattr(node, "op", None)
    return type(op).__name__ if op is not None else type(node).__name__


def mutant_source(source: str, site: Site) -> str:
    """The module's source with ``site`` applied (re-found in a fresh parse by its path)."""
    tree = ast.parse(source)
    node, parent, index = _node_at(tree, site.path)
    for kind, _label, mutate in _mutators(node):
        if kind != site.kind:
            continue
        candidate = mutate(copy.deepcopy(node))
        if candidate is not None and _short(candidate) == site.after:
            break
    else:
        raise LookupError(site.id)
    assert parent is not None
    _replace_child(parent, index, candidate)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


# -- running the tests -------------------------------------------------------------------------

def focused_tests(rel: str, root: Path = REPO) -> list[str]:
    for prefix, patterns in FOCUSED_TESTS.items():
        if rel.startswith(prefix):  # in the order given, but the module's own file first
            found = [str(p.relative_to(root)) for pattern in patterns
                     for p in sorted(root.glob(pattern))]
            own = [t for t in found if t.endswith(f"_{Path(rel).stem}.py")]
            return list(dict.fromkeys(own + found))
    raise SystemExit(f"no focused tests configured for {rel}")


def make_copy() -> Path:
    root = Path(tempfile.mkdtemp(prefix="lsp-agent-mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, root / name)
    return root


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def check_copy_is_imported(root: Path) -> None:
    out = subprocess.run([sys.executable, "-c", "import lsp_agent; print(lsp_agent.__file__)"],
                         cwd=root, env=_env(root), capture_output=True, text=True, timeout=60)
    if not out.stdout.strip().startswith(str(root)):
        raise SystemExit(f"the copy is not what Python imports: {out.stdout or out.stderr}")


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """(passed | failed | timeout, seconds, first failing test)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests], cwd=root,
                            env=_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return "timeout", time.monotonic() - started, ""
    finally:
        _kill_group(proc.pid)  # servers or hooks a test left behind go with it
    seconds = time.monotonic() - started
    if proc.returncode == 0:
        return "passed", seconds, ""
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return "failed", seconds, failed.group(1) if failed else f"exit {proc.returncode}"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class ModuleReport:
    module: str
    tests: list[str]
    mutants_total: int
    sampled: int
    baseline_seconds: float
    seconds: float = 0.0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    not_run: int = 0
    survivors: list[Outcome] = field(default_factory=list)
    killed_mutants: list[Outcome] = field(default_factory=list)


def check_module(rel: str, source: str, sites: list[Site], copies: queue.Queue[Path], jobs: int,
                 deadline: float) -> ModuleReport:
    root = copies.get()
    tests = focused_tests(rel, root)  # as copied: the checkout may change during a long run
    try:
        # The baseline runs the unparsed (unmutated) module: proves the round trip is faithful.
        _write(root, rel, ast.unparse(ast.parse(source)) + "\n")
        status, baseline, failed = run_tests(root, tests, timeout=600)
        _write(root, rel, source)
    finally:
        copies.put(root)
    if status != "passed":
        raise SystemExit(f"{rel}: the focused tests fail without a mutant ({failed or status})")
    report = ModuleReport(rel, tests, 0, len(sites), round(baseline, 1))
    timeout = 3 * baseline + 30
    started = time.monotonic()

    def one(site: Site) -> Outcome | None:
        if time.monotonic() > deadline:
            return None
        root = copies.get()
        try:
            _write(root, rel, mutant_source(source, site))
            status, seconds, failed = run_tests(root, tests, timeout)
        finally:
            _write(root, rel, source)
            copies.put(root)
        verdict = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[status]
        print(f"  {verdict:8} {site.id}  line {site.line}: {site.before} -> {site.after}",
              file=sys.stderr, flush=True)
        return Outcome(site.id, site.line, site.kind, site.before, site.after, verdict,
                       round(seconds, 1), failed)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for outcome in pool.map(one, sites):
            if outcome is None:
                report.not_run += 1
                continue
            setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            target = report.survivors if outcome.status == "survived" else report.killed_mutants
            target.append(outcome)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _write(root: Path, rel: str, text: str) -> None:
    target = root / rel
    target.write_text(text, encoding="utf-8")
    # .pyc files are checked by mtime and size, which two mutants can share: never reuse one.
    for stale in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
        stale.unlink()


# -- the command line --------------------------------------------------------------------------

def modules_for(filters: list[str]) -> list[str]:
    everything = sorted(str(p.relative_to(REPO)) for prefix in FOCUSED_TESTS
                        for p in (REPO / prefix).glob("*.py") if p.name != "__init__.py")
    if not filters:
        return SAMPLE
    chosen = [m for m in everything
              if any(f in m or fnmatch.fnmatch(m, f) or m.endswith("/" + f) for f in filters)]
    if not chosen:
        raise SystemExit(f"no module matches {filters}; choose from {everything}")
    return chosen


def sample(sites: list[Site], rel: str, limit: int, seed: int) -> list[Site]:
    if limit <= 0 or len(sites) <= limit:
        return sites
    picked = random.Random(f"{seed}:{rel}").sample(sites, limit)
    return sorted(picked, key=lambda s: (s.line, s.id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", action="append", default=[],
                        help="a module path, file name, folder or glob (repeatable); "
                             "default: " + ", ".join(SAMPLE))
    parser.add_argument("--max-mutants", type=int, default=40,
                        help="a seeded random sample of at most N mutants per module (0: all)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--only", action="append", default=[], help="run these mutant ids only")
    parser.add_argument("--budget", type=float, default=3600,
                        help="seconds; no new mutant starts after this")
    parser.add_argument("--jobs", type=int, default=1, help="parallel test runs (shared cores!)")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    modules = modules_for(args.module or sorted({i.split("::")[0] for i in args.only}))
    plan: dict[str, tuple[str, int, list[Site]]] = {}
    for rel in modules:
        source = (REPO / rel).read_text(encoding="utf-8")  # what the mutants are made from
        sites = find_sites(rel, source)
        chosen = ([s for s in sites if s.id in args.only] if args.only
                  else sample(sites, rel, args.max_mutants, args.seed))
        plan[rel] = (source, len(sites), chosen)
    if args.list:
        for rel, (_source, total, chosen) in plan.items():
            print(f"{rel}: {len(chosen)} of {total} mutants")
            for s in chosen:
                print(f"  {s.id}  line {s.line}: {s.before} -> {s.after}")
        return 0

    started = time.monotonic()
    deadline = started + args.budget
    copies: queue.Queue[Path] = queue.Queue()
    roots = [make_copy() for _ in range(max(1, args.jobs))]
    for root in roots:
        copies.put(root)
    reports: list[ModuleReport] = []
    try:
        check_copy_is_imported(roots[0])
        for rel, (source, total, chosen) in plan.items():
            print(f"{rel}: {len(chosen)} of {total} mutants", file=sys.stderr, flush=True)
            report = check_module(rel, source, chosen, copies, max(1, args.jobs), deadline)
            report.mutants_total = total
            reports.append(report)
            write_results(args, reports, round(time.monotonic() - started, 1))  # so far
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = round(time.monotonic() - started, 1)
    write_results(args, reports, elapsed)
    print(summary(reports, elapsed))
    return 0


def write_results(args: argparse.Namespace, reports: list[ModuleReport], elapsed: float) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "settings": {"max_mutants": args.max_mutants, "seed": args.seed, "jobs": args.jobs,
                     "budget_seconds": args.budget, "only": args.only},
        "seconds": elapsed,
        "modules": [compact(asdict(r)) for r in reports],
    }, indent=2) + "\n", encoding="utf-8")


def compact(report: dict) -> dict:
    """Survivors in full; for a caught mutant its id, how and how fast are enough."""
    report["killed_mutants"] = [{k: m[k] for k in ("id", "status", "seconds", "failed_test")}
                                for m in report["killed_mutants"]]
    return report


def summary(reports: list[ModuleReport], elapsed: float) -> str:
    rows = ["| module | mutants | sampled | killed | timeout | survived | not run | baseline s "
            "| run s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        rows.append(f"| {r.module} | {r.mutants_total} | {r.sampled} | {r.killed} | {r.timeout} "
                    f"| {r.survived} | {r.not_run} | {r.baseline_seconds} | {r.seconds} |")
    rows.append(f"\ntotal {elapsed} s")
    for r in reports:
        for s in r.survivors:
            rows.append(f"survived {r.module}:{s.line} {s.id}: {s.before} -> {s.after}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
