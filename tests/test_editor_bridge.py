"""The editor bridge: for non-Python files the code-intel tools ask the editor (agent/editor/*).

A real server subprocess; the test client plays an editor whose language servers know a small
TypeScript file, answering the bridge requests the way the VS Code extension does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lsp_agent.scripted.server import ScriptedModelServer
from lsp_agent.server.protocol import plain
from lsp_agent.types import events as ev
from tests.e2e_harness import Editor, start_editor, uri

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

APP_TS = """import { greet } from "./greet";

export function main(): void {
  console.log(greet("world"));
}
"""
GREET_TS = """export function greet(name: string): string {
  return `hello ${name}`;
}
"""


def span(line: int, start: int, end: int) -> dict[str, Any]:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


class TypeScriptEditor:
    """Answers agent/editor/* like an editor with a TypeScript language server."""

    def __init__(self, editor: Editor, workspace: Path):
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.delay = 0.0
        self.app, self.greet = uri(workspace / "app.ts"), uri(workspace / "greet.ts")
        client = editor.client
        for method in (
            "definition",
            "references",
            "hover",
            "documentSymbols",
            "workspaceSymbols",
            "diagnostics",
        ):
            client.feature(f"agent/editor/{method}")(self._handler(method))

    def _handler(self, method: str):
        async def handle(params: Any) -> Any:
            self.asked.append((method, plain(params)))
            await asyncio.sleep(self.delay)
            return getattr(self, method)(plain(params))

        return handle

    def definition(self, params: dict[str, Any]) -> Any:
        return [
            {
                "targetUri": self.greet,
                "targetRange": span(0, 0, 40),
                "targetSelectionRange": span(0, 16, 21),
            }
        ]

    def references(self, params: dict[str, Any]) -> Any:
        return [
            {"uri": self.greet, "range": span(0, 16, 21)},
            {"uri": self.app, "range": span(0, 9, 14)},
            {"uri": self.app, "range": span(3, 14, 19)},
        ]

    def hover(self, params: dict[str, Any]) -> Any:
        return {
            "contents": {
                "kind": "markdown",
                "value": "```typescript\nfunction greet(name: string): string\n```",
            }
        }

    def documentSymbols(self, params: dict[str, Any]) -> Any:
        return [
            {
                "name": "main",
                "kind": 12,
                "range": span(2, 0, 40),
                "selectionRange": span(2, 16, 20),
                "children": [],
            }
        ]

    def workspaceSymbols(self, params: dict[str, Any]) -> Any:
        return [
            {"name": "greet", "kind": 12, "location": {"uri": self.greet, "range": span(0, 16, 21)}}
        ]

    def diagnostics(self, params: dict[str, Any]) -> Any:
        return {
            "items": [
                {
                    "uri": self.app,
                    "diagnostics": [
                        {
                            "range": span(3, 14, 19),
                            "severity": 1,
                            "source": "ts",
                            "code": 2345,
                            "message": "Argument of type 'number' is not assignable to "
                            "parameter of type 'string'.",
                        }
                    ],
                }
            ]
        }


@pytest.fixture(scope="module")
def model():
    with ScriptedModelServer({"turns": []}) as server:
        yield server


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bridge")
    (root / "app.ts").write_text(APP_TS)
    (root / "greet.ts").write_text(GREET_TS)
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor(model, workspace):
    ed = await start_editor(
        model.base_url, workspace, editorBridge=True, editorBridgeTimeoutSeconds=1
    )
    yield ed
    await ed.client.shutdown_session()


@pytest.fixture(scope="module")
def typescript(editor, workspace) -> TypeScriptEditor:
    return TypeScriptEditor(editor, workspace)


async def run_tool(
    editor: Editor, model, workspace: Path, name: str, tool_input: dict[str, Any]
) -> ev.ToolResult:
    model.load(
        {
            "turns": [
                {"content": [{"type": "tool_use", "name": name, "input": tool_input}]},
                {"content": "done"},
            ]
        }
    )
    session = await editor.new_session(workspace)
    result = await editor.request("agent/prompt", {"sessionId": session, "text": "look"})
    assert result["stopReason"] == "end_turn"
    return editor.of(session, ev.ToolResult)[0]


async def test_server_advertises_the_bridge_methods(editor):
    advertised = plain(editor.init_result.capabilities.experimental)["lspAgent"]
    assert "agent/editor/definition" in advertised["editorBridge"]


async def test_definition_in_typescript_comes_from_the_editor(editor, model, workspace, typescript):
    result = await run_tool(
        editor, model, workspace, "Definition", {"path": "app.ts", "symbol": "greet", "line": 4}
    )
    assert not result.is_error, result.content
    assert "greet.ts:1" in result.content
    assert "export function greet" in result.content
    method, params = typescript.asked[-1]
    assert method == "definition"
    # The tool found the column itself: line 4 (1-based) is line 3, `greet` starts at 14.
    assert params == {"uri": typescript.app, "position": {"line": 3, "character": 14}}


async def test_references_hover_and_symbols_in_typescript(editor, model, workspace, typescript):
    refs = await run_tool(
        editor, model, workspace, "References", {"path": "app.ts", "symbol": "greet", "line": 4}
    )
    assert "3 references to `greet` in 2 files" in refs.content
    assert "app.ts" in refs.content and '4: console.log(greet("world"));' in refs.content

    hover = await run_tool(
        editor, model, workspace, "Hover", {"path": "greet.ts", "symbol": "greet", "line": 1}
    )
    assert "function greet(name: string): string" in hover.content

    outline = await run_tool(editor, model, workspace, "DocumentSymbols", {"path": "app.ts"})
    assert "function main (line 3)" in outline.content

    found = await run_tool(editor, model, workspace, "WorkspaceSymbols", {"query": "gre"})
    assert "function greet  greet.ts:1" in found.content


async def test_diagnostics_tool_reports_the_editors_diagnostics(
    editor, model, workspace, typescript
):
    result = await run_tool(editor, model, workspace, "Diagnostics", {"path": "app.ts"})
    assert "app.ts:4:15: error [ts 2345] Argument of type 'number'" in result.content
    assert typescript.asked[-1] == ("diagnostics", {"uri": typescript.app})


async def test_an_editor_that_does_not_answer_in_time_gives_a_clear_error(
    editor, model, workspace, typescript
):
    typescript.delay = 3.0
    try:
        result = await run_tool(
            editor, model, workspace, "Definition", {"path": "app.ts", "symbol": "greet", "line": 4}
        )
    finally:
        typescript.delay = 0.0
    assert result.is_error
    assert "timed out after 1s" in result.content and "Grep" in result.content


async def test_python_files_still_use_the_servers_own_intelligence(
    editor, model, workspace, typescript
):
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n\nadd(1, 2)\n")
    before = len(typescript.asked)
    result = await run_tool(
        editor, model, workspace, "Definition", {"path": "calc.py", "symbol": "add", "line": 4}
    )
    assert "calc.py:1" in result.content
    assert len(typescript.asked) == before
