"""What the server imports before it answers: only what initialize needs. The SDK, jedi and the
sessions (the agent, its tools, the store) load when first needed, so that an editor's server
answers initialize sooner and idles smaller (README.md, "Cold start").

Each case runs the server code in a fresh interpreter (this one has imported everything) on
in-memory streams, then reports its ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WAIT = 120.0

PROGRAM = r"""
import io, json, os, sys, threading, time

class WhoImports:  # records the thread that first imports each watched module
    watched = {"anthropic", "jedi"}
    seen = {}
    def find_spec(self, name, path=None, target=None):
        if name in self.watched:
            self.seen.setdefault(name, threading.current_thread().name)
        return None

sys.meta_path.insert(0, WhoImports())
import lsp_agent.cli  # what `lsp-agent serve` imports first
from lsp_agent.server.app import create_server

messages = json.loads(sys.argv[1])
data = b"".join(b"Content-Length: %d\r\n\r\n" % len(m) + m
                for m in (json.dumps(x).encode() for x in messages))
out = io.BytesIO()
asked = sum(1 for m in messages if "id" in m)

class Input:  # the messages, then the end of input once every request has its answer
    def __init__(self):
        self.data = data
    def fileno(self):
        raise OSError("in memory")
    def read(self, size):
        chunk, self.data = self.data, b""
        deadline = time.monotonic() + 60
        while not chunk and out.getvalue().count(b'"id"') < asked \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        return chunk

create_server().start_io(Input(), out)
answers = [json.loads(part.split(b"\r\n\r\n", 1)[1])
           for part in out.getvalue().split(b"Content-Length: ")[1:]]
for thread in threading.enumerate():  # the SDK client's build (other threads serve workers)
    if thread.name.startswith("lsp-agent-model"):
        thread.join(60)

def children():  # the command lines of this process's children (Linux)
    import glob, os
    pids = []
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with open(path) as f:
            pids += f.read().split()
    lines = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                lines.append(f.read().replace(b"\0", b" ").decode())
        except OSError:
            pass  # gone meanwhile
    return lines

awaited = os.environ.get("AWAIT_CHILD")  # a child the case expects: wait for it to start
deadline = time.monotonic() + 60
while awaited and not any(awaited in c for c in children()) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"modules": sorted(sys.modules), "answers": answers,
                  "imported_on": WhoImports.seen, "children": children()}))
"""

LATER = ("anthropic", "jedi", "parso", "lsp_agent.sessions.manager", "lsp_agent.agent.loop",
         "lsp_agent.tools.pool", "lsp_agent.store.catalog", "lsp_agent.store.checkpoints",
         "lsp_agent.store.writer", "lsp_agent.context.manager",
         # What the LSP features, Dream, auto memory, worktrees and the task views need loads
         # with their first request: the code intelligence (pydantic result models), the
         # Dream agent and its model service, auto memory, the worktree store, the tools.
         "lsp_agent.code_intel.jedi_intel", "lsp_agent.code_intel.bridge",
         "lsp_agent.sessions.dream", "lsp_agent.model.service", "lsp_agent.context.auto_memory",
         "lsp_agent.workspace.worktrees", "lsp_agent.tools.base",
         # The params models of our agent/* methods load with the first call of one
         # (server/lazy_protocol.py); initialize needs only its options' model.
         "lsp_agent.server.protocol",
         # No pydantic at all while idle (some 9 MB): the options' defaults are a dataclass,
         # the event, editor and watch models load with their first use (types/lazy.py).
         "pydantic", "pydantic_core", "lsp_agent.types.events", "lsp_agent.types.editor",
         "lsp_agent.types.watch")


def serve(root: Path, *extra: dict[str, Any], preload: str | None = "0",
          await_child: str | None = None, options: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    params = {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}
    if options is not None:
        params["initializationOptions"] = options
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        *extra,
    ]
    env = {**os.environ, "LSP_AGENT_PRELOAD_MODEL": "0", "ANTHROPIC_API_KEY": "test-key",
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "LSP_AGENT_STATE_DIR": str(root / ".state")}
    if await_child:
        env["AWAIT_CHILD"] = await_child
    if preload is None:  # the default an editor gets
        del env["LSP_AGENT_PRELOAD_MODEL"]
    else:
        env["LSP_AGENT_PRELOAD_MODEL"] = preload
    done = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(messages)],
                          capture_output=True, text=True, timeout=WAIT, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_initialize_loads_neither_the_sdk_nor_jedi_nor_the_sessions(tmp_path):
    report = serve(tmp_path)
    assert report["answers"][0]["id"] == 1 and "capabilities" in report["answers"][0]["result"]
    loaded = set(report["modules"])
    assert "lsp_agent.server.app" in loaded
    assert [name for name in LATER if name in loaded] == []


def test_an_editors_options_are_read_without_pydantic(tmp_path):
    # What the VS Code extension sends: values of their fields' own types.
    report = serve(tmp_path, preload=None, options={
        "mode": "acceptEdits", "pythonLanguageFeatures": False, "editorSavesAppliedEdits": True,
        "editorBridge": True})
    capabilities = report["answers"][0]["result"]["capabilities"]
    assert "hoverProvider" not in capabilities  # the options were read: Python features off
    assert [name for name in LATER if name in report["modules"]] == []


def test_options_pydantic_must_judge_load_it_and_nothing_more(tmp_path):
    report = serve(tmp_path, preload=None, options={"pythonLanguageFeatures": "false"})
    assert "hoverProvider" not in report["answers"][0]["result"]["capabilities"]  # coerced
    loaded = set(report["modules"])
    assert "pydantic" in loaded
    assert [n for n in LATER if n in loaded and not n.startswith("pydantic")] == []


def test_a_new_session_loads_the_sdk_on_a_thread_never_on_the_loop(tmp_path):
    report = serve(tmp_path, {"jsonrpc": "2.0", "id": 2, "method": "agent/newSession",
                              "params": {}})
    answer = next(a for a in report["answers"] if a.get("id") == 2)
    assert answer["result"]["sessionId"]
    loaded = set(report["modules"])
    assert {"lsp_agent.sessions.manager", "lsp_agent.agent.loop", "anthropic"} <= loaded
    # The SDK client is built on its own thread (model/clients.py); the server never imports
    # jedi (its worker process does).
    assert report["imported_on"] == {"anthropic": "lsp-agent-model-client"}
    assert "lsp_agent.server.protocol" in loaded  # the params models, with the first call


def test_an_idle_editor_server_never_loads_the_sdk(tmp_path):
    # The default: no preload after initialized (the SDK is some 50 MB an idle editor's server
    # would carry).
    report = serve(tmp_path, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, preload=None)
    loaded = set(report["modules"])
    assert "anthropic" not in loaded and report["imported_on"] == {}
    assert [name for name in LATER if name in loaded] == []


def test_warm_up_loads_the_sdk_on_a_thread_and_nothing_of_the_sessions(tmp_path):
    report = serve(tmp_path, {"jsonrpc": "2.0", "method": "agent/warmUp", "params": {}},
                   {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, preload=None)
    assert report["imported_on"] == {"anthropic": "lsp-agent-model-client"}
    loaded = set(report["modules"])
    assert "lsp_agent.sessions.manager" not in loaded and "jedi" not in loaded


INDEX_WORKER = "lsp_agent.code_intel.index_worker"


def opened(path: Path, language: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": path.as_uri(), "languageId": language, "version": 1, "text": path.read_text()}}}


def test_a_server_that_sees_no_python_starts_no_symbol_index(tmp_path):
    (tmp_path / "app.py").write_text("class Cart:\n    pass\n")  # a Python project...
    (tmp_path / "notes.md").write_text("# notes\n")
    report = serve(tmp_path, opened(tmp_path / "notes.md", "markdown"),  # ...not opened
                   {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    assert "lsp_agent.code_intel.symbol_index" not in report["modules"]
    assert not [c for c in report["children"] if INDEX_WORKER in c]


def test_the_first_python_buffer_starts_the_symbol_index(tmp_path):
    (tmp_path / "app.py").write_text("class Cart:\n    pass\n")
    report = serve(tmp_path, opened(tmp_path / "app.py", "python"),
                   {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}, await_child=INDEX_WORKER)
    assert [c for c in report["children"] if INDEX_WORKER in c]
