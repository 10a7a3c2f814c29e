"""The programs lsp-agent is compared with, pinned, installed on demand outside the repository,
and their versions as installed (each program's own ``--version``).

* Claude Code (``@anthropic-ai/claude-code``, npm) in ``~/.cache/lsp-agent-bench/claude-code``;
* jedi-language-server and python-lsp-server in the venv ``~/.cache/lsp-agent-bench/peers-venv``;
* the task project's own Python (the cold and warm fix-a-bug task): a venv with pytest only, as
  a small project has, in ``~/.cache/lsp-agent-bench/project-venv``. Both agents find it first
  on PATH, so the test command they both run starts what a project's test run starts, not the
  plugins of lsp-agent's development environment (pytest-lsp, pytest-asyncio, ...: 1.3 s of
  each test run there).

    python bench/peers.py            # install what is missing, print the versions as JSON
    python bench/peers.py --check    # only report, install nothing

A figure is only ever published with the versions this module reports for the run that
produced it (the table of a run names them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import CACHE_DIR, command_version, measured_env  # noqa: E402

CLAUDE_CODE_VERSION = "2.1.332"
JEDI_LANGUAGE_SERVER_VERSION = "0.47.0"
PYLSP_VERSION = "1.15.0"
PROJECT_PYTEST_VERSION = "9.2.0"

CLAUDE_DIR = CACHE_DIR / "claude-code"
PEERS_VENV = CACHE_DIR / "peers-venv"
PROJECT_VENV = CACHE_DIR / "project-venv"
INSTALL_TIMEOUT = 900


def claude_binary(folder: Path = CLAUDE_DIR) -> Path:
    native = folder / "node_modules" / "@anthropic-ai" / "claude-code-linux-x64" / "claude"
    return native if native.exists() else folder / "node_modules" / ".bin" / "claude"


def installed_claude_version(folder: Path = CLAUDE_DIR) -> str | None:
    manifest = folder / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_claude(folder: Path = CLAUDE_DIR) -> Path:
    """Claude Code at exactly CLAUDE_CODE_VERSION (installed or replaced if another is there)."""
    current = installed_claude_version(folder)
    if current != CLAUDE_CODE_VERSION or not claude_binary(folder).exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder),
                        f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
                       check=True, timeout=INSTALL_TIMEOUT, capture_output=True, text=True)
    return claude_binary(folder)


def peers_bin(venv: Path = PEERS_VENV) -> Path:
    return venv / "bin"


def ensure_python_peers(venv: Path = PEERS_VENV) -> Path:
    """jedi-language-server and pylsp at their pinned versions in a venv of their own."""
    pins = {"jedi-language-server": JEDI_LANGUAGE_SERVER_VERSION,
            "python-lsp-server": PYLSP_VERSION}
    if python_peer_versions(venv) != pins:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        *(f"{name}=={version}" for name, version in pins.items())],
                       check=True, timeout=INSTALL_TIMEOUT, capture_output=True, text=True)
    return peers_bin(venv)


def ensure_project_python(venv: Path = PROJECT_VENV) -> Path:
    """The task project's Python (pytest at its pin, nothing else), its compiled files in the
    bench's bytecode cache as an installed project has them; returns its bin folder."""
    python = venv / "bin" / "python"
    if project_pytest_version(venv) != PROJECT_PYTEST_VERSION:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"pytest=={PROJECT_PYTEST_VERSION}"],
                       check=True, timeout=INSTALL_TIMEOUT, capture_output=True, text=True)
        # Into PYTHONPYCACHEPREFIX, where every measured process looks for compiled files.
        subprocess.run([str(python), "-m", "compileall", "-q", str(venv / "lib")],
                       env=measured_env(), check=False, timeout=INSTALL_TIMEOUT,
                       capture_output=True)
    return venv / "bin"


def project_pytest_version(venv: Path = PROJECT_VENV) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    done = subprocess.run([str(python), "-c", "import pytest; print(pytest.__version__)"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=measured_env())
    return done.stdout.strip() or None if done.returncode == 0 else None


def python_peer_versions(venv: Path = PEERS_VENV) -> dict[str, str | None]:
    python = venv / "bin" / "python"
    if not python.exists():
        return {"jedi-language-server": None, "python-lsp-server": None}
    code = ("import json; from importlib import metadata as m\n"
            "def v(n):\n"
            "    try: return m.version(n)\n"
            "    except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in ('jedi-language-server', 'python-lsp-server')}))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"jedi-language-server": None, "python-lsp-server": None}


def claude_env(home: Path, base_url: str) -> dict[str, str]:
    """Claude Code talks only to ``base_url``: a dummy key, no telemetry or other traffic, an
    empty HOME (no settings, memory files or credentials of this machine)."""
    return {
        "HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "bench-dummy-key",
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "TERM": "dumb", "LANG": "C.UTF-8",
    }


def versions(claude: Path | None = None, venv: Path = PEERS_VENV) -> dict[str, Any]:
    """Every peer's version as installed (its own --version) next to the pin."""
    claude = claude or claude_binary()
    with tempfile.TemporaryDirectory() as home:
        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "DISABLE_AUTOUPDATER": "1"}
        claude_says = command_version([str(claude)], env=env) if claude.exists() else "missing"
    bin_dir = peers_bin(venv)
    return {
        "claude-code": {"pinned": CLAUDE_CODE_VERSION, "installed": claude_says,
                        "path": str(claude)},
        "jedi-language-server": {
            "pinned": JEDI_LANGUAGE_SERVER_VERSION,
            "installed": command_version([str(bin_dir / "jedi-language-server")]),
            "path": str(bin_dir / "jedi-language-server")},
        "pylsp": {"pinned": PYLSP_VERSION, "installed": command_version([str(bin_dir / "pylsp")]),
                  "path": str(bin_dir / "pylsp")},
        "node": command_version(["node"]),
        "project pytest": {"pinned": PROJECT_PYTEST_VERSION,
                           "installed": project_pytest_version(),
                           "path": str(PROJECT_VENV / "bin" / "python")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="install nothing, only report")
    args = parser.parse_args(argv)
    if not args.check:
        ensure_claude()
        ensure_python_peers()
        ensure_project_python()
    print(json.dumps(versions(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
