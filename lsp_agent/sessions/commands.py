"""Slash commands, handled in the session so every client has them.

A prompt ``/name args`` is a command when ``name`` is one word (``/usr/bin/x is broken`` is a
prompt). Built-ins answer without the model; a skill (``/skill args``) or a custom command
(``.claude/commands/name.md``) becomes the prompt the model receives; an unknown name is an
error event, never sent to the model. A built-in answers as a turn of zero rounds: turn_started,
its text as text_delta, turn_ended -- events every client already renders.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsp_agent.extensions.commands import (
    include_files,
    run_shell_snippets,
    substitute_arguments,
)
from lsp_agent.extensions.skills import render_skill
from lsp_agent.sessions.context import prompt_blocks
from lsp_agent.types import events as ev
from lsp_agent.types.editor import EditorContext
from lsp_agent.types.permissions import MODES

if TYPE_CHECKING:
    from lsp_agent.sessions.session import Session

_COMMAND = re.compile(r"^/([A-Za-z0-9_][A-Za-z0-9_:.\-]*)(?:\s+(.*))?$", re.DOTALL)
MAX_SNIPPET_OUTPUT = 20_000
MAX_RESOURCE_CHARS = 100_000
_RESOURCE = re.compile(r"(?<![\w`])@([A-Za-z0-9_-]+):([A-Za-z][\w+.-]*://[^\s]*[^\s.,;:!?)])")
Handler = Callable[["Session", str], Awaitable[str]]


@dataclass(frozen=True)
class Builtin:
    description: str
    handler: Handler
    argument_hint: str | None = None
    # A prompt built-in: the handler's text goes to the model, with these rules pre-approved.
    to_model: bool = False
    allowed_tools: tuple[str, ...] = ()
    only_tools: tuple[str, ...] = ()  # while it runs, nothing else may change anything


def parse(text: str) -> tuple[str, str] | None:
    """(name, arguments) when ``text`` is a slash command."""
    match = _COMMAND.match(text.strip())
    return (match.group(1), (match.group(2) or "").strip()) if match else None


def begin_turn(session: Session, text: str,
               context: EditorContext | None) -> asyncio.Task[ev.TurnEnded] | None:
    """The hook where a prompt enters the session: extensions see it (servers start, approvals
    are asked), and a slash command, or a prompt naming MCP resources, gets its own task
    (None: an ordinary prompt)."""
    session.extensions.on_prompt()
    command = parse(text)
    if command:
        return asyncio.create_task(run_command(session, *command, text, context))
    if _resource_mentions(session, text):
        return asyncio.create_task(_with_resources(session, text, context))
    return None


def _resource_mentions(session: Session, text: str) -> list[tuple[str, str]]:
    servers = session.extensions.mcp.servers
    return [(m.group(1), m.group(2)) for m in _RESOURCE.finditer(text)
            if m.group(1) in servers]


async def _with_resources(session: Session, text: str,
                          context: EditorContext | None) -> ev.TurnEnded:
    """``@server:uri`` mentions: the resources' text follows the prompt."""
    parts = [text]
    for server, uri in dict.fromkeys(_resource_mentions(session, text)):
        try:
            content = await session.extensions.mcp.servers[server].read_resource(uri)
        except Exception as exc:  # reported to the model as part of the prompt
            content = f"(could not be read: {type(exc).__name__}: {exc})"
        parts.append(f'<mcp-resource server="{server}" uri="{uri}">\n'
                     f"{content[:MAX_RESOURCE_CHARS]}\n</mcp-resource>")
    return await _to_model(session, "\n\n".join(parts), context)


def end_turn(session: Session, task: asyncio.Future[Any]) -> None:
    task.add_done_callback(lambda _t: session.extensions.end_turn())


async def run_command(session: Session, name: str, args: str, text: str,
                      context: EditorContext | None) -> ev.TurnEnded:
    builtin = BUILTINS.get(name)
    if builtin is not None:
        try:
            output = await builtin.handler(session, args)
        except Exception as exc:  # a failing command is reported, the session goes on
            return _answer(session, text, f"/{name} failed: {type(exc).__name__}: {exc}",
                           error=True)
        if builtin.to_model:
            session.extensions.grant(list(builtin.allowed_tools))
            if builtin.only_tools:
                session.extensions.restrict(f"/{name}", list(builtin.only_tools))
            return await _to_model(session, output, context)
        return _answer(session, text, output)
    exts = session.extensions
    skill = exts.skills.get(name)
    if skill is not None and skill.user_invocable:
        if skill.allowed_tools:
            exts.grant(skill.allowed_tools, skill.source, True)
        exts.use_model(skill.model)
        body = await asyncio.to_thread(render_skill, skill, args)
        return await _to_model(session, body, context)
    mcp_prompt = _mcp_prompt(session, name)
    if mcp_prompt is not None:
        server, remote = mcp_prompt
        names = [a.name for a in remote.arguments or []]
        words = args.split(maxsplit=max(len(names) - 1, 0)) if args else []
        rendered = await server.get_prompt(remote.name, dict(zip(names, words, strict=False)))
        return await _to_model(session, rendered, context)
    command = exts.commands.get(name)
    if command is not None:
        if command.allowed_tools:
            exts.grant(command.allowed_tools, command.source, True)
        if command.model:
            session.set_model(command.model)
        prompt = substitute_arguments(await asyncio.to_thread(command.body), args)
        prompt = await asyncio.to_thread(include_files, prompt, session.workspace,
                                         session.gate.file_rules)
        prompt = await run_shell_snippets(prompt, lambda cmd: _shell(session, cmd))
        return await _to_model(session, prompt, context)
    return _answer(session, text, f"Unknown command /{name}. Type /help for the commands "
                   "of this session; nothing was sent to the model.", error=True,
                   kind="unknown_command")


def _mcp_prompt(session: Session, name: str) -> tuple[Any, Any] | None:
    """(server, prompt) for ``mcp__<server>__<prompt>``."""
    if not name.startswith("mcp__") or name.count("__") < 2:
        return None
    _, server_name, prompt_name = name.split("__", 2)
    server = session.extensions.mcp.servers.get(server_name)
    if server is None:
        return None
    found = next((p for p in server.prompts if p.name == prompt_name), None)
    return (server, found) if found is not None else None


async def _to_model(session: Session, prompt: str,
                    context: EditorContext | None) -> ev.TurnEnded:
    blocks = prompt_blocks(prompt, context, session.workspace, session.documents,
                           session.gate.file_rules)
    return await session._run(blocks, prompt, context)


def _answer(session: Session, prompt: str, text: str, error: bool = False,
            kind: str = "command_failed") -> ev.TurnEnded:
    session.emit(ev.TurnStarted(prompt=prompt[:2000]))
    if error:
        session.emit(ev.ErrorEvent(kind=kind, message=text))
    else:
        session.emit(ev.TextDelta(text=text))
    ended = ev.TurnEnded(stop_reason="error" if error else "end_turn", usage=ev.Usage(),
                         rounds=0)
    session.emit(ended)
    return ended


async def _shell(session: Session, command: str) -> str:
    """``!`cmd` ``: run like a Bash call of the model (hooks, rules, mode, sandbox)."""
    tool = session.tools.get("Bash")
    if tool is None:
        return f"(not run: no shell tool) {command}"
    args = tool.input_model.model_validate({"command": command})
    tool_use_id = f"command-{uuid.uuid4().hex[:8]}"
    ctx = session._tool_context(tool_use_id)
    screened = await session.agent.guard.screen(tool, args, ctx.resolve)
    verdict = screened.verdict
    if verdict.action == "ask":
        asker = session.agent.deps.asker
        if asker is None:
            return f"(not run: {verdict.reason}) {command}"
        asked = ev.PermissionAsked(tool_use_id=tool_use_id, tool=tool.name,
                                   input={"command": command}, reason=verdict.reason)
        session.emit(asked)
        answer = await asker(asked)
        if answer.decision != "allow":
            return f"(not run: the user said no) {command}"
    elif verdict.action == "deny":
        return f"(not run: {verdict.reason}) {command}"
    output = await tool.call(screened.args, ctx)
    content = output if isinstance(output, str) else output.content
    return content[:MAX_SNIPPET_OUTPUT]


# -- built-ins ---------------------------------------------------------------------------------

async def _help(session: Session, args: str) -> str:
    lines = ["Commands:"]
    lines += [f"  /{c['name']}{' ' + c['argumentHint'] if c.get('argumentHint') else ''}"
              f" - {c['description']} ({c['source']})" for c in list_commands(session)]
    return "\n".join(lines)


async def _clear(session: Session, args: str) -> str:
    session.clear_conversation()
    return "Conversation cleared: the next prompt starts afresh."


async def _compact(session: Session, args: str) -> str:
    boundary = await session.context.compact(session.agent.window(), session.emit,
                                             trigger="manual", instructions=args or None)
    if boundary is None:
        return "Nothing was compacted."
    return (f"Compacted: {boundary.tokens_before:,} -> {boundary.tokens_after:,} tokens.")


async def _context(session: Session, args: str) -> str:
    report = await session.context_report()
    return "Context of the next request:\n" + json.dumps(report, indent=1, default=str)[:8000]


async def _cost(session: Session, args: str) -> str:
    cost = session.context.turn_cost().session
    return "Session cost so far:\n" + json.dumps(cost.wire(), indent=1)


async def _model(session: Session, args: str) -> str:
    if args:
        return f"Model set to {session.set_model(args)}."
    return f"Model: {session.agent.model}. Use /model <name> to change it."


async def _mode(session: Session, args: str) -> str:
    if not args:
        return f"Mode: {session.mode}. Modes: {', '.join(MODES)}."
    if args not in MODES:
        raise ValueError(f"unknown mode {args!r}; one of {', '.join(MODES)}")
    session.set_mode(args)
    return f"Mode set to {args}."


async def _mcp(session: Session, args: str) -> str:
    hub = session.extensions.mcp
    words = args.split()
    if len(words) == 2 and words[0] == "restart":
        status = await hub.restart(words[1])
        return f"{status['name']}: {status['state']}" + \
            (f" ({status['error']})" if status["error"] else "")
    servers = hub.status()
    if not servers:
        return "No MCP servers are configured (.mcp.json, settings 'mcpServers')."
    return "MCP servers:\n" + "\n".join(
        f"  {s['name']} [{s['scope']}, {s['transport']}]: {s['state']}, {s['tools']} tools"
        + (f" -- {s['error']}" if s["error"] else "") for s in servers)


async def _memory(session: Session, args: str) -> str:
    from lsp_agent.context.memory import MEMORY_NAMES

    loader = session.memory
    candidates = [(d / n, "user") for d in loader.user_dirs for n in ("AGENTS.md", "CLAUDE.md")]
    candidates += [(session.workspace / n, "project") for n in MEMORY_NAMES]
    lines = [f"  {'loaded ' if p.is_file() else 'absent '} {p} ({scope})"
             for p, scope in candidates]
    return ("Memory files (instructions the agent reads at the start of each session; edit "
            "them to change what it remembers):\n" + "\n".join(lines))


async def _doctor(session: Session, args: str) -> str:
    """What could keep the agent from working, each with its fix."""
    problems: list[str] = []
    notes: list[str] = []
    settings = session.agent.settings
    if not settings.api_key:
        problems.append("No API key: set ANTHROPIC_API_KEY (or the editor's setting).")
    try:
        from lsp_agent.model.service import ModelRequest

        await asyncio.wait_for(session.agent.deps.model.count_tokens(ModelRequest(
            model=session.agent.model, max_tokens=1, system=[], tools=[],
            messages=[{"role": "user", "content": "ping"}])), 20)
        notes.append(f"model endpoint reachable ({settings.base_url or 'api.anthropic.com'})")
    except Exception as exc:  # any failure is the finding
        problems.append(f"The model endpoint did not answer ({type(exc).__name__}: "
                        f"{str(exc)[:200]}): check ANTHROPIC_BASE_URL, the key and the network.")
    sandbox = session.safety.sandbox
    if sandbox is not None:
        status = sandbox.status()
        (notes if "sandbox on" in status or "off (settings)" in status else problems).append(
            status + ("" if "sandbox on" in status else
                      "; install bubblewrap (bwrap) to contain shell commands"))
    problems += [f"Settings: {w} -- fix or remove that entry." for w in session.safety.warnings]
    for server in session.extensions.mcp.status():
        if server["state"] == "failed":
            problems.append(f"MCP server {server['name']} failed: {server['error']} -- check "
                            f"its command or URL in {server['source']}, then /mcp restart "
                            f"{server['name']}.")
        elif server["state"] == "needs_approval":
            notes.append(f"MCP server {server['name']} waits for your approval (asked at the "
                         "next prompt).")
        else:
            notes.append(f"MCP server {server['name']}: {server['state']}")
    head = "No problems found." if not problems else f"{len(problems)} problem(s):"
    return "\n".join([head, *(f"  - {p}" for p in problems), "OK:",
                      *(f"  - {n}" for n in notes)])


async def _review(session: Session, args: str) -> str:
    return ("Review the changes in the working tree. Run `git status`, `git diff` and "
            "`git diff --cached`, read the changed code where the diff is not enough, and "
            "report: bugs and risky changes first (with file and line), then missing tests, "
            "then smaller remarks. Do not change any file." + (f"\nFocus: {args}" if args else ""))


async def _commit(session: Session, args: str) -> str:
    return ("Commit the current changes with git, following this protocol strictly:\n"
            "1. Run `git status` and `git diff` (and `git diff --cached`) to see what changed.\n"
            "2. Stage only files that belong to the change, by name (`git add <path>`); never "
            "`git add -A` blindly. Never stage secrets: .env files, keys, credentials, tokens; "
            "if one is among the changes, leave it out and tell the user.\n"
            "3. Commit with `git commit -m` and a message in the imperative saying what and why."
            "\n4. Never amend (`--amend`), never skip hooks (`--no-verify`), never force, never "
            "push. If a hook fails, report it and stop.\n"
            "Only use git add, git status, git diff and git commit."
            + (f"\nAbout the message: {args}" if args else ""))


async def _init(session: Session, args: str) -> str:
    return ("Write an AGENTS.md for this project: explore the repository (layout, build and "
            "test commands, conventions, the code's main parts), then propose the file with "
            "the Write tool at the workspace root (the user reviews it). Keep it short and "
            "concrete: commands that work, where things are, rules a newcomer must know."
            + (f"\nAlso: {args}" if args else ""))


async def _output_style(session: Session, args: str) -> str:
    ext = session.extensions
    if args:
        try:
            style = ext.set_output_style(args.strip())
        except KeyError:
            raise ValueError(f"unknown output style {args!r}; one of default, "
                             + ", ".join(sorted(ext.styles))) from None
        session._system_cache = None  # the next request carries the new style
        return f"Output style set to {style.name if style else 'default'}."
    current = ext.output_style.name if ext.output_style else "default"
    lines = [f"Output style: {current}. Styles: default (the built-in behaviour)"]
    lines += [f"  {s.name}: {s.description or '(no description)'} [{s.source}]"
              for s in sorted(ext.styles.values(), key=lambda s: s.name)]
    return "\n".join(lines) + "\nUse /output-style <name> to change it."


# /commit may run only these (the safety protocol; reading stays possible).
COMMIT_TOOLS = ("Bash(git add:*)", "Bash(git status:*)", "Bash(git commit:*)",
                "Bash(git diff:*)", "Bash(git log:*)")

BUILTINS: dict[str, Builtin] = {
    "help": Builtin("List the commands of this session", _help),
    "clear": Builtin("Start the conversation afresh", _clear),
    "compact": Builtin("Summarise the conversation now", _compact, "[instructions]"),
    "context": Builtin("Show what the next request holds, by part", _context),
    "cost": Builtin("Show the session's token use and cost", _cost),
    "model": Builtin("Show or set the model", _model, "[model]"),
    "mode": Builtin("Show or set the permission mode", _mode, "[mode]"),
    "output-style": Builtin("Show or set the output style", _output_style, "[style]"),
    "mcp": Builtin("Show the MCP servers and their state", _mcp, "[restart <server>]"),
    "memory": Builtin("Show the memory files the agent reads", _memory),
    "doctor": Builtin("Check the endpoint, key, sandbox, settings and MCP servers", _doctor),
    "review": Builtin("Review the working tree's changes", _review, "[focus]", to_model=True,
                      allowed_tools=("Bash(git status)", "Bash(git diff:*)")),
    "commit": Builtin("Commit the changes (never amends, never skips hooks, no secrets)",
                      _commit, "[message hint]", to_model=True,
                      allowed_tools=("Bash(git status)", "Bash(git diff:*)"),
                      only_tools=COMMIT_TOOLS),
    "init": Builtin("Propose an AGENTS.md for this project", _init, "[notes]",
                    to_model=True),
}


def list_commands(session: Session) -> list[dict[str, Any]]:
    """Every command of the session, for completion: built-ins, skills, custom commands."""
    out: list[dict[str, Any]] = [
        {"name": name, "description": b.description, "argumentHint": b.argument_hint,
         "source": "builtin"} for name, b in BUILTINS.items()]
    taken = set(BUILTINS)
    for skill in session.extensions.skills.values():
        if skill.user_invocable and skill.name not in taken:
            taken.add(skill.name)
            out.append({"name": skill.name, "description": skill.description,
                        "argumentHint": skill.argument_hint, "source": f"skill:{skill.source}"})
    for server in session.extensions.mcp.servers.values():
        for remote in server.prompts:
            hint = " ".join(f"<{a.name}>" if a.required else f"[{a.name}]"
                            for a in remote.arguments or [])
            out.append({"name": f"mcp__{server.spec.name}__{remote.name}",
                        "description": remote.description or "", "argumentHint": hint or None,
                        "source": f"mcp:{server.spec.name}"})
    for command in session.extensions.commands.values():
        if command.name not in taken:
            taken.add(command.name)
            out.append({"name": command.name, "description": command.description,
                        "argumentHint": command.argument_hint, "source": command.source})
    return out
