"""Transcript entries: one JSON object a line, shaped after Claude Code's transcripts.

Every entry has ``uuid``, ``parentUuid``, ``sessionId``, ``timestamp`` (ISO 8601, UTC) and
``type``; the writer stamps those. The builders below make the rest. Entries are plain dicts
typed with TypedDicts: they are written on the event loop, where a pydantic model per event
would cost more than the whole append budget, and read back thousands at a time.

Differences from Claude Code's format, and why:

- A ``session`` header line opens every file with ``formatVersion`` (Claude Code stamps its
  CLI version on every line and has no header): one place to refuse newer formats.
- Tool results are their own ``tool_result`` type, not ``user`` lines with a
  ``toolUseResult``: turn counting and display need no look into message content.
- Compaction writes one ``compact_boundary`` entry carrying the history that replaced the old
  one (a summary) or the tool results it cleared, instead of a boundary plus a summary line.
- Checkpoints are ``file_backup`` lines in the transcript (content in the shared blob store),
  not a separate ``file-history`` folder: rewinding and garbage collection read one file.
- Rewinds are ``rewind`` entries whose ``parentUuid`` points back into the chain; the current
  branch is always the chain that ends at the last line of the file.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

FORMAT_VERSION = 1
APP_NAME = "lsp-agent"

Entry = dict[str, Any]
Block = dict[str, Any]
Message = dict[str, Any]

# Types that are part of the conversation the model saw.
MESSAGE_TYPES = frozenset({"user", "assistant", "tool_result"})
# Types shown when the history is paged (usage, backups and the header are bookkeeping).
DISPLAY_TYPES = frozenset({
    "user", "assistant", "tool_result", "compact_boundary", "proposal", "proposal_decision",
    "mode", "model", "todos", "turn_end", "system", "rewind", "title", "auto_decision",
})


class Common(TypedDict):
    uuid: str
    parentUuid: str | None
    sessionId: str
    timestamp: str
    type: str


class SessionHeader(Common):
    formatVersion: int
    app: str
    cwd: str
    forkedFrom: NotRequired[dict[str, Any]]


class UserEntry(Common):
    message: Message  # {"role": "user", "content": [blocks as sent to the model]}
    prompt: str  # what the user typed (display, prompt history, titles)
    origin: Literal["user", "stop_hook", "agent"]
    editorContext: NotRequired[dict[str, Any]]


class AssistantEntry(Common):
    message: Message  # {"role": "assistant", "content": [...], "model", "stop_reason"?}


class ToolResultEntry(Common):
    message: Message  # {"role": "user", "content": [tool_result blocks]}
    results: list[dict[str, Any]]  # per block: toolUseId, name, isError, startedAt, finishedAt


class CompactBoundaryEntry(Common):
    strategy: Literal["clear_tool_results", "summary", "clear"]
    trigger: str
    tokensBefore: int
    tokensAfter: int
    summary: NotRequired[str]
    messages: NotRequired[list[Message]]  # the history that replaced everything before
    cleared: NotRequired[list[str]]  # tool_use ids whose results were replaced
    placeholder: NotRequired[str]  # the text that replaced them


class FileBackupEntry(Common):
    scope: str  # uuid of the turn's user entry (or of the rewind) that touched the file
    path: str  # workspace-relative, ``/``-separated; absolute when outside the workspace
    existed: bool
    blob: str | None  # sha256 of the content; None when absent or not captured
    size: int
    fileMode: NotRequired[int]
    skipped: NotRequired[str]  # why the content was not captured


# -- builders --------------------------------------------------------------------------------


def header(cwd: str, forked_from: dict[str, Any] | None = None) -> Entry:
    entry: Entry = {"type": "session", "formatVersion": FORMAT_VERSION, "app": APP_NAME,
                    "cwd": cwd}
    if forked_from:
        entry["forkedFrom"] = forked_from
    return entry


def user_prompt(prompt: str, blocks: list[Block], *, editor_context: dict[str, Any] | None = None,
                origin: Literal["user", "stop_hook", "agent"] = "user") -> Entry:
    # ``origin`` first: a reader tells prompts from hook continuations without parsing.
    entry: Entry = {"type": "user", "origin": origin, "prompt": prompt,
                    "message": {"role": "user", "content": blocks}}
    if editor_context:
        entry["editorContext"] = editor_context
    return entry


def assistant(blocks: list[Block], model: str, stop_reason: str | None = None) -> Entry:
    message: Message = {"role": "assistant", "content": blocks, "model": model}
    if stop_reason:
        message["stop_reason"] = stop_reason
    return {"type": "assistant", "message": message}


def tool_results(blocks: list[Block], results: list[dict[str, Any]] | None = None) -> Entry:
    return {"type": "tool_result", "message": {"role": "user", "content": blocks},
            "results": results or []}


def compact_boundary(*, strategy: Literal["clear_tool_results", "summary", "clear"], trigger: str,
                     tokens_before: int, tokens_after: int, summary: str | None = None,
                     messages: list[Message] | None = None, cleared: list[str] | None = None,
                     placeholder: str | None = None) -> Entry:
    entry: Entry = {"type": "compact_boundary", "strategy": strategy, "trigger": trigger,
                    "tokensBefore": tokens_before, "tokensAfter": tokens_after}
    optional = {"summary": summary, "messages": messages, "cleared": cleared,
                "placeholder": placeholder}
    entry.update({k: v for k, v in optional.items() if v is not None})
    return entry


def proposal(proposal_id: str, tool_use_id: str, files: list[dict[str, Any]]) -> Entry:
    """``files``: per file at least ``path`` and ``isNew``; ``diff`` as shown to the user."""
    return {"type": "proposal", "proposalId": proposal_id, "toolUseId": tool_use_id,
            "files": files}


def proposal_decision(proposal_id: str, status: str, *, accepted: list[str] | None = None,
                      rejected: list[str] | None = None, conflicts: list[str] | None = None,
                      feedback: str | None = None) -> Entry:
    entry: Entry = {"type": "proposal_decision", "proposalId": proposal_id, "status": status,
                    "accepted": accepted or [], "rejected": rejected or [],
                    "conflicts": conflicts or []}
    if feedback:
        entry["feedback"] = feedback
    return entry


def coordinator() -> Entry:
    """The session runs in coordinator mode (docs/delegation.md); a resume restores it."""
    return {"type": "coordinator"}


def mode_change(mode: str) -> Entry:
    return {"type": "mode", "mode": mode}


def model_change(model: str) -> Entry:
    return {"type": "model", "model": model}


def usage(model: str, tokens: dict[str, int], cost_usd: float) -> Entry:
    """One model request: its token counts (Messages-API names) and what it cost."""
    return {"type": "usage", "model": model, "usage": tokens, "costUsd": cost_usd}


def turn_end(stop_reason: str, rounds: int, tokens: dict[str, int], cost_usd: float) -> Entry:
    """The writer adds ``sessionCost``: the running total of every ``usage`` entry so far, so
    a reader gets the session's cost from the last turn end instead of every request."""
    return {"type": "turn_end", "stopReason": stop_reason, "rounds": rounds, "usage": tokens,
            "costUsd": cost_usd}


def auto_decision(tool_use_id: str, tool: str, decision: str, reason: str, *,
                  cached: bool = False, error: str | None = None,
                  call_key: str | None = None) -> Entry:
    """Auto mode's classifier settled a call (``callKey``: the digest of its tool and input,
    with which a resume restores the session's cache of decisions)."""
    entry: Entry = {"type": "auto_decision", "toolUseId": tool_use_id, "tool": tool,
                    "decision": decision, "reason": reason, "cached": cached}
    if error:
        entry["error"] = error
    if call_key:
        entry["callKey"] = call_key
    return entry


def todos(items: list[dict[str, Any]]) -> Entry:
    return {"type": "todos", "todos": items}


def task_list(items: list[dict[str, Any]]) -> Entry:
    """The shared task list (TaskCreate, TaskUpdate), whole, after a change."""
    return {"type": "task_list", "tasks": items}


def title(text: str) -> Entry:
    return {"type": "title", "title": text}


def system(kind: str, message: str, level: Literal["info", "warning", "error"] = "info") -> Entry:
    return {"type": "system", "kind": kind, "message": message, "level": level}


def rewind(to_turn: int, from_leaf: str | None) -> Entry:
    """The writer points this entry's ``parentUuid`` at the entry before turn ``to_turn``."""
    return {"type": "rewind", "toTurn": to_turn, "fromLeaf": from_leaf}


def file_after(scope: str, path: str, *, blob: str | None, size: int, text: bool) -> Entry:
    """What the agent left a file as (its latest write in ``scope``): the base a rewind
    merges the user's later edits from. ``text``: the blob is the UTF-8 text the agent meant
    (an edit); else the file's bytes as a command left them. ``blob`` None: it was deleted."""
    return {"type": "file_after", "scope": scope, "path": path, "blob": blob, "size": size,
            "text": text}


def file_backup(scope: str, path: str, *, existed: bool, blob: str | None, size: int,
                file_mode: int | None = None, skipped: str | None = None) -> Entry:
    entry: Entry = {"type": "file_backup", "scope": scope, "path": path, "existed": existed,
                    "blob": blob, "size": size}
    if file_mode is not None:
        entry["fileMode"] = file_mode
    if skipped:
        entry["skipped"] = skipped
    return entry


def new_ledger() -> dict[str, Any]:
    return {"usd": 0.0, "byModel": {}}


def add_cost(ledger: dict[str, Any], usage_entry: Entry) -> None:
    """Add one ``usage`` entry to a running total ``{"usd", "byModel": {model: {usage, usd}}}``."""
    usd = float(usage_entry.get("costUsd") or 0.0)
    row = ledger["byModel"].setdefault(str(usage_entry.get("model", "")),
                                       {"usage": {}, "usd": 0.0})
    for key, value in (usage_entry.get("usage") or {}).items():
        if isinstance(value, int):
            row["usage"][key] = row["usage"].get(key, 0) + value
    row["usd"] = round(row["usd"] + usd, 6)
    ledger["usd"] = round(ledger["usd"] + usd, 6)


# -- the index entry (.meta.json) --------------------------------------------------------------

TITLE_MAX = 80


def short_title(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1].rstrip() + "\u2026"


def new_meta(session_id: str, cwd: str, created_at: str) -> dict[str, Any]:
    return {"formatVersion": FORMAT_VERSION, "sessionId": session_id, "cwd": cwd,
            "createdAt": created_at, "updatedAt": created_at, "title": None,
            "customTitle": None, "firstPrompt": None, "turns": 0, "model": None,
            "mode": None, "costUsd": 0.0, "gitBranch": None, "forkedFrom": None,
            "transcriptBytes": 0}


def _on_user(meta: dict[str, Any], entry: Entry) -> None:
    if entry.get("origin", "user") != "user":
        return
    meta["turns"] += 1
    if meta["firstPrompt"] is None:
        meta["firstPrompt"] = short_title(entry.get("prompt", ""))


def _on_usage(meta: dict[str, Any], entry: Entry) -> None:
    meta["costUsd"] = round(meta["costUsd"] + float(entry.get("costUsd") or 0.0), 6)


def _on_rewind(meta: dict[str, Any], entry: Entry) -> None:
    meta["turns"] = max(0, int(entry.get("toTurn", 1)) - 1)


def _on_header(meta: dict[str, Any], entry: Entry) -> None:
    meta["cwd"] = entry.get("cwd", meta["cwd"])
    meta["forkedFrom"] = entry.get("forkedFrom")
    meta["createdAt"] = entry.get("timestamp", meta["createdAt"])


# How each entry type changes the index entry: one fold for the writer and for a rebuild.
META_UPDATES = {
    "session": _on_header,
    "user": _on_user,
    "usage": _on_usage,
    "rewind": _on_rewind,
    "model": lambda meta, e: meta.__setitem__("model", e.get("model")),
    "mode": lambda meta, e: meta.__setitem__("mode", e.get("mode")),
    "title": lambda meta, e: meta.__setitem__("customTitle", e.get("title") or None),
    "assistant": lambda meta, e: meta.__setitem__(
        "model", e.get("message", {}).get("model") or meta["model"]),
}


def fold_meta(meta: dict[str, Any], entry: Entry) -> None:
    update = META_UPDATES.get(entry.get("type", ""))
    if update is not None:
        update(meta, entry)
    if "timestamp" in entry and entry.get("type") != "session":
        meta["updatedAt"] = entry["timestamp"]


def display_title(meta: dict[str, Any]) -> str:
    return meta.get("customTitle") or meta.get("firstPrompt") or "(no prompt yet)"
