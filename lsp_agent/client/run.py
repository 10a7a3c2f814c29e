"""``lsp-agent run``: one headless turn through the language server, with answers from the
terminal (or from ``--permission-mode`` / ``--yes``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from lsp_agent.client.lsp_client import AgentClient
from lsp_agent.client.render import Renderer
from lsp_agent.types import events as ev


async def ask_terminal(question: str) -> str:
    if not sys.stdin.isatty():
        return ""
    return (await asyncio.to_thread(input, question)).strip().lower()


class TerminalAnswers:
    def __init__(self, renderer: Renderer, yes: bool):
        self.renderer = renderer
        self.yes = yes

    async def permission(self, params: dict[str, Any]) -> dict[str, Any]:
        self.renderer.line(f"? {params.get('tool')} wants to run: {params.get('input')}")
        self.renderer.line(f"  reason: {params.get('reason')}")
        if self.yes:
            return {"decision": "allow"}
        answer = await ask_terminal("  allow? [y]es / [a]lways this session / [N]o: ")
        if answer in ("y", "yes"):
            return {"decision": "allow"}
        if answer in ("a", "always"):
            return {"decision": "allow", "remember": True}
        return {"decision": "deny", "message": "the user declined at the terminal"}

    async def proposal(self, event: ev.ProposalCreated) -> dict[str, Any]:
        if self.yes:
            return {"accept": "all"}
        answer = await ask_terminal("  apply this change? [y]es / [N]o: ")
        if answer in ("y", "yes"):
            return {"accept": "all"}
        feedback = await ask_terminal("  feedback for the agent (optional): ")
        return {"reject": "all", "feedback": feedback or None}


async def _run(args: argparse.Namespace) -> int:
    renderer = Renderer(as_json=args.json)
    answers = TerminalAnswers(renderer, args.yes)
    rules = {kind: getattr(args, kind) for kind in ("allow", "ask", "deny") if getattr(args, kind)}
    client = AgentClient(Path(args.workspace), renderer, answers.permission, answers.proposal,
                         initialization_options={"permissions": rules} if rules else None)
    await client.start()
    try:
        session = await client.new_session(mode=args.permission_mode, model=args.model)
        result = await client.prompt(session, args.prompt)
    finally:
        await client.stop()
    return 0 if result.get("stopReason") == "end_turn" else 1


def run_headless(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
