"""``run --scripted SCENARIO``: the turn goes to the scripted model server, started in this
process for the run, instead of a real model. No API key, no network; the scenario decides
what the "model" says (docs/scenarios.md). Bundled scenarios are package data
(``lsp_agent/scenarios/*.json``) and can be named without their path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path

from lsp_agent.client.errors import CliError, ExitCode

SCRIPTED_KEY = "scripted-model"  # the scripted server wants a key, any key; never the real one
_LOOPBACK = "127.0.0.1,localhost"


def bundled_scenarios() -> dict[str, Path]:
    folder = Path(str(resources.files("lsp_agent") / "scenarios"))
    return {path.stem: path for path in sorted(folder.glob("*.json"))}


def resolve_scenario(value: str) -> Path:
    """A scenario file, or the name of a bundled one. Raises CliError naming the choices."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    bundled = bundled_scenarios()
    name = value.removesuffix(".json")
    if name in bundled:
        return bundled[name]
    raise CliError(f"--scripted: no scenario file {value!r} and no bundled scenario of that "
                   f"name (bundled: {', '.join(bundled) or 'none'})", ExitCode.USAGE)


@contextlib.contextmanager
def scripted_model(value: str) -> Iterator[str]:
    """The scripted model server for the run; yields its base URL."""
    from lsp_agent.scripted.server import ScenarioError, ScriptedModelServer

    path = resolve_scenario(value)
    try:
        server = ScriptedModelServer(path)
    except ScenarioError as exc:
        raise CliError(f"--scripted: {exc}", ExitCode.USAGE) from None
    with server:
        yield server.base_url


def scripted_env(env: Mapping[str, str], base_url: str) -> dict[str, str]:
    """The server's environment for a scripted run: the local endpoint, a stand-in key (the
    real one stays out of it), and no proxy between the two."""
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), _LOOPBACK]))
    return {**env, "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": SCRIPTED_KEY,
            "NO_PROXY": no_proxy, "no_proxy": no_proxy}
