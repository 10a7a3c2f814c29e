"""Code actions ("Fix with agent", "Explain with agent", "Ask agent to change this") and the
commands they run. Actions are cheap to list; the command is filled in on resolve when the
client supports ``codeAction/resolve``, else at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.uris import to_fs_path

from lsp_agent.sessions.watch_speculative import fix_prompt
from lsp_agent.workspace.encoding import printable

if TYPE_CHECKING:
    from lsp_agent.server import protocol as p
    from lsp_agent.server.app import AgentServer
    from lsp_agent.sessions.session import Session
    from lsp_agent.types import editor as ed
else:  # the params models load with the first call of a method (lazy_protocol.py)
    from lsp_agent.server import lazy_protocol as p
    from lsp_agent.types.lazy import editor as ed  # the editor models likewise

log = logging.getLogger(__name__)

MAX_TITLE = 60
DEFAULT_CHANGE = "Improve the selected code: propose a clear, minimal change and explain it."


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1] + "…"


def _unstructure(ls: AgentServer, obj: Any) -> Any:
    return ls.protocol._converter.unstructure(obj)


def list_actions(ls: AgentServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    uri = params.text_document.uri
    resolve = _client_resolves(ls)
    out: list[lsp.CodeAction] = []
    for diag in params.context.diagnostics:
        args = {"uri": uri, "diagnostic": _unstructure(ls, diag)}
        out.append(_action(f"Fix with agent: {_short(diag.message)}",
                           lsp.CodeActionKind.QuickFix, p.CMD_FIX, args, resolve, [diag]))
    if params.range.start != params.range.end:
        selection = _selection_text(ls, uri, params.range)
        base = {"uri": uri, "range": _unstructure(ls, params.range), "selectionText": selection}
        out.append(_action("Explain with agent", lsp.CodeActionKind.Empty, p.CMD_EXPLAIN,
                           base, resolve))
        out.append(_action("Ask agent to change this", lsp.CodeActionKind.RefactorRewrite,
                           p.CMD_CHANGE, base, resolve))
    _remember_diagnostics(ls, uri, params.context.diagnostics)
    _tell_watcher(ls, uri, params.context.diagnostics)
    return out


def _action(title: str, kind: lsp.CodeActionKind, command: str, args: dict[str, Any],
            resolve: bool, diagnostics: list[lsp.Diagnostic] | None = None) -> lsp.CodeAction:
    action = lsp.CodeAction(title=title, kind=kind, diagnostics=diagnostics,
                            data={"command": command, "arguments": [args]})
    if not resolve:
        action.command = lsp.Command(title=title, command=command, arguments=[args])
    return action


def resolve_action(action: lsp.CodeAction) -> lsp.CodeAction:
    data = p.plain(action.data) or {}
    if isinstance(data, dict) and "command" in data:
        action.command = lsp.Command(title=action.title, command=data["command"],
                                     arguments=data.get("arguments"))
    return action


def _client_resolves(ls: AgentServer) -> bool:
    return ls.client_caps.code_action_resolve


def _selection_text(ls: AgentServer, uri: str, rng: lsp.Range) -> str:
    """The selected text; the range is in the client's encoding, converted at the boundary."""
    fs = to_fs_path(uri)
    lines = ls.positions.lines(Path(fs)) if fs else None
    if fs is None or lines is None:
        return ""
    start, end = ls.positions.range_in(Path(fs), rng)
    return printable(lines.text[lines.offset(start): lines.offset(end)])


def _remember_diagnostics(ls: AgentServer, uri: str,
                          diags: Sequence[lsp.Diagnostic]) -> None:
    fs = to_fs_path(uri)
    if fs and diags:
        path, positions = Path(fs), ls.positions.batch()
        ls.manager.diagnostics.update(
            path, [positions.diagnostic_in(path, _unstructure(ls, d)) for d in diags])


def _tell_watcher(ls: AgentServer, uri: str, diags: Sequence[lsp.Diagnostic]) -> None:
    """The watcher hears these diagnostics too (a new error may get its fix prepared); its
    trouble must never cost the user the code actions."""
    try:
        found = [ed.Diagnostic.model_validate(_unstructure(ls, d)).wire() for d in diags]
        ls.watcher.on_diagnostics(uri, found, full=False)
    except Exception:
        log.exception("the watcher could not take the code action's diagnostics")


# -- commands ----------------------------------------------------------------------------------


def _session_for(ls: AgentServer, session_id: str | None, uri: str) -> Session:
    if session_id:
        return ls.session(session_id)
    fs = to_fs_path(uri)
    return ls.new_session(p.NewSessionParams(), Path(fs) if fs else None)


def run_fix(ls: AgentServer, raw: Any) -> dict[str, Any]:
    args = p.parse(p.FixArguments, raw)
    # The watcher may have prepared this very fix already (docs/autonomy.md): answer with it.
    prepared = ls.watcher.speculative.prepared_for(args.uri, args.diagnostic.wire())
    if prepared is not None and prepared.session is not None:
        prepared.adopted = True  # the user's now: typing no longer withdraws it
        return p.FixResult(session_id=prepared.session.id, prepared=True,
                           proposal_ids=prepared.session.proposals.pending_ids).wire()
    session = _session_for(ls, args.session_id, args.uri)
    context = ed.EditorContext(uri=args.uri, range=args.diagnostic.range,
                               diagnostics=[args.diagnostic])
    text = fix_prompt(args.diagnostic)
    ls.start_prompt(session, p.PromptParams(session_id=session.id, text=text, context=context))
    return {"sessionId": session.id}


def run_selection(ls: AgentServer, raw: Any, explain: bool) -> dict[str, Any]:
    args = p.parse(p.SelectionArguments, raw)
    session = _session_for(ls, args.session_id, args.uri)
    context = ed.EditorContext(uri=args.uri, range=args.range, selection_text=args.selection_text)
    if explain:
        text = "Explain what the selected code does, how it is used, and any problems in it."
    else:
        text = args.instruction or DEFAULT_CHANGE
    ls.start_prompt(session, p.PromptParams(session_id=session.id, text=text, context=context))
    return {"sessionId": session.id}


def register(server: AgentServer) -> None:
    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(
            code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.RefactorRewrite,
                               lsp.CodeActionKind.Empty],
            resolve_provider=True,
        ),
    )
    def code_action(ls: AgentServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return list_actions(ls, params)

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    def code_action_resolve(ls: AgentServer, action: lsp.CodeAction) -> lsp.CodeAction:
        return resolve_action(action)

    @server.command(p.CMD_FIX)
    def fix(ls, *args):  # unannotated: pygls resolves command hints at call time
        return run_fix(ls, _single(args))

    @server.command(p.CMD_EXPLAIN)
    def explain(ls, *args):  # unannotated: pygls resolves command hints at call time
        return run_selection(ls, _single(args), explain=True)

    @server.command(p.CMD_CHANGE)
    def change(ls, *args):  # unannotated: pygls resolves command hints at call time
        return run_selection(ls, _single(args), explain=False)


def _single(args: tuple[Any, ...]) -> Any:
    if len(args) != 1:
        from pygls.exceptions import JsonRpcInvalidParams

        raise JsonRpcInvalidParams(f"expected exactly one argument object, got {len(args)}")
    return args[0]
