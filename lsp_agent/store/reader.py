"""Reading a transcript back: the current branch, the model's view, pages of history.

The current branch is the parentUuid chain that ends at the last entry of the file (the writer
makes every entry the child of the previous leaf, and a rewind entry points back into the
chain). Loading never fails on damage: a torn last line (a crash mid-write) or any other line
that does not parse is skipped with a warning. It fails on one thing: a transcript written by
a newer format version, which this version cannot read correctly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.store import entries as en
from lsp_agent.store.layout import session_id_of
from lsp_agent.store.writer import TurnPoint, WriterState

log = logging.getLogger(__name__)

INTERRUPTED = ("[No result: the session ended before this tool call finished. "
               "It may or may not have run.]")
ORPHAN_RESULT = "[result of an earlier tool call, omitted]"


class TranscriptVersionError(RuntimeError):
    """The transcript was written by a newer lsp-agent."""


@dataclass
class HistoryPage:
    items: list[en.Entry]  # newest first
    next_before: str | None  # pass as ``before`` for the next (older) page; None at the start


@dataclass
class CostSummary:
    usd: float = 0.0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> usage, usd


@dataclass
class Turn:
    number: int
    uuid: str
    parent: str | None
    prompt: str
    timestamp: str


class TranscriptReader:
    """An immutable view of one transcript as it was when loaded."""

    def __init__(self, path: Path, entries: list[en.Entry], warnings: list[str]):
        self.path = path
        self.session_id = session_id_of(path)
        self.entries = entries  # every valid line, file order
        self.warnings = warnings
        self.header: en.Entry | None = next(
            (e for e in entries[:1] if e.get("type") == "session"), None)
        self.chain = self._current_chain()
        self._chain_index = {e["uuid"]: i for i, e in enumerate(self.chain)}
        self._file_index = {e["uuid"]: i for i, e in enumerate(entries) if "uuid" in e}

    # -- structure ---------------------------------------------------------------------------

    def _current_chain(self) -> list[en.Entry]:
        position = {id(e): i for i, e in enumerate(self.entries)}
        by_uuid = {e["uuid"]: e for e in self.entries}
        leaf = next((e for e in reversed(self.entries) if e.get("type") != "session"), None)
        chain: list[en.Entry] = []
        seen: set[str] = set()
        node = leaf
        while node is not None and node["uuid"] not in seen:
            seen.add(node["uuid"])
            if node.get("type") != "rewind":  # a rewind only moves the branch point
                chain.append(node)
            parent = node.get("parentUuid")
            if parent is None:
                break
            found = by_uuid.get(parent)
            if found is None:  # a damaged line: its neighbour in the file is the best guess
                self.warnings.append(f"entry {parent} is missing: the chain goes on with the "
                                     "entry written before it")
                earlier = self.entries[: position[id(node)]]
                found = next((e for e in reversed(earlier) if e.get("type") != "session"), None)
            node = found
        chain.reverse()
        return chain

    @property
    def leaf(self) -> str | None:
        """The uuid to chain the next entry to (the last entry of the file)."""
        last = next((e for e in reversed(self.entries) if e.get("type") != "session"), None)
        return last["uuid"] if last else None

    def turns(self) -> list[Turn]:
        found = [e for e in self.chain if e.get("type") == "user"
                 and e.get("origin", "user") == "user"]
        return [Turn(i, e["uuid"], e.get("parentUuid"), e.get("prompt", ""),
                     e.get("timestamp", "")) for i, e in enumerate(found, 1)]

    def turn(self, number: int) -> Turn:
        turns = self.turns()
        if not 1 <= number <= len(turns):
            raise ValueError(f"no turn {number}: this session has {len(turns)} turns")
        return turns[number - 1]

    def writer_state(self) -> WriterState:
        """What a writer needs to append to this transcript."""
        return WriterState(leaf=self.leaf, meta=self.meta(),
                           turns=[TurnPoint(t.uuid, t.parent) for t in self.turns()])

    def meta(self) -> dict[str, Any]:
        """The index entry rebuilt from the transcript (used when the .meta.json is stale)."""
        created = self.header.get("timestamp", "") if self.header else ""
        meta = en.new_meta(self.session_id, self.header.get("cwd", "") if self.header else "",
                           created)
        for entry in self.entries:
            en.fold_meta(meta, entry)
        return meta

    # -- what the model saw ------------------------------------------------------------------

    def messages(self) -> list[en.Message]:
        """The conversation as the model last saw it: the latest summary's history (or the
        start) plus what follows, with cleared tool results cleared, repaired so the API
        accepts it (every tool_use answered, no orphan results)."""
        start = 0
        history: list[en.Message] = []
        for i in range(len(self.chain) - 1, -1, -1):
            entry = self.chain[i]
            if entry.get("type") == "compact_boundary" and "messages" in entry:
                history = [_copy_message(m) for m in entry["messages"]]
                start = i + 1
                break
        for entry in self.chain[start:]:
            kind = entry.get("type")
            if kind in en.MESSAGE_TYPES:
                _add(history, entry)
            elif kind == "compact_boundary" and entry.get("cleared"):
                _clear(history, set(entry["cleared"]), entry.get("placeholder", ""))
        return _repaired(history)

    # -- state -------------------------------------------------------------------------------

    def todos(self) -> list[dict[str, Any]]:
        entry = self._last_on_chain("todos")
        return list(entry.get("todos", [])) if entry else []

    def mode(self) -> str | None:
        """The mode set last (in any branch: a rewind does not undo the user's choice)."""
        entry = self._last_in_file("mode")
        return entry.get("mode") if entry else None

    def model(self) -> str | None:
        entry = self._last_in_file("model")
        if entry:
            return entry.get("model")
        last = self._last_in_file("assistant")
        return last.get("message", {}).get("model") if last else None

    def title(self) -> str | None:
        entry = self._last_in_file("title")
        return (entry.get("title") or None) if entry else None

    def cost(self) -> CostSummary:
        """Every request the session paid for, abandoned branches included."""
        summary = CostSummary()
        for entry in self.entries:
            if entry.get("type") != "usage":
                continue
            model = str(entry.get("model", ""))
            row = summary.by_model.setdefault(model, {"usage": {}, "usd": 0.0})
            for key, value in (entry.get("usage") or {}).items():
                if isinstance(value, int):
                    row["usage"][key] = row["usage"].get(key, 0) + value
            usd = float(entry.get("costUsd") or 0.0)
            row["usd"] = round(row["usd"] + usd, 6)
            summary.usd = round(summary.usd + usd, 6)
        return summary

    def pending_proposals(self) -> list[en.Entry]:
        """Proposals on the current branch that were never decided: they were not applied."""
        decided = {e.get("proposalId") for e in self.entries
                   if e.get("type") == "proposal_decision"}
        return [e for e in self.chain if e.get("type") == "proposal"
                and e.get("proposalId") not in decided]

    # -- history for display -----------------------------------------------------------------

    def history(self, before: str | None = None, limit: int = 50) -> HistoryPage:
        """Displayable entries of the current branch, newest first, older than ``before``."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        end = len(self.chain)
        if before is not None:
            if before not in self._chain_index:
                raise KeyError(f"entry {before} is not on the current branch")
            end = self._chain_index[before]
        items: list[en.Entry] = []
        i = end - 1
        while i >= 0 and len(items) < limit:
            if self.chain[i].get("type") in en.DISPLAY_TYPES:
                items.append(self.chain[i])
            i -= 1
        more = any(e.get("type") in en.DISPLAY_TYPES for e in self.chain[: i + 1])
        return HistoryPage(items, items[-1]["uuid"] if items and more else None)

    # -- checkpoints -------------------------------------------------------------------------

    def backups_after(self, entry_uuid: str) -> list[en.Entry]:
        """``file_backup`` entries written after ``entry_uuid`` in file (time) order, every
        branch included: what changed on disk after that point, whoever's branch did it."""
        start = self._file_index.get(entry_uuid)
        if start is None:
            raise KeyError(f"entry {entry_uuid} is not in this transcript")
        return [e for e in self.entries[start + 1:] if e.get("type") == "file_backup"]

    # -- helpers -----------------------------------------------------------------------------

    def _last_on_chain(self, kind: str) -> en.Entry | None:
        return next((e for e in reversed(self.chain) if e.get("type") == kind), None)

    def _last_in_file(self, kind: str) -> en.Entry | None:
        return next((e for e in reversed(self.entries) if e.get("type") == kind), None)


# -- loading -----------------------------------------------------------------------------------


def parse_lines(data: bytes, source: str = "transcript") -> tuple[list[en.Entry], list[str]]:
    """Entries of a JSONL buffer and warnings for the lines skipped."""
    entries: list[en.Entry] = []
    warnings: list[str] = []
    lines = data.split(b"\n")
    torn_tail = lines[-1] != b""
    if not torn_tail:
        lines.pop()
    last = len(lines) - 1
    loads = json.loads
    for number, raw in enumerate(lines):
        if not raw:
            continue
        try:
            entry = loads(raw)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("uuid"), str):
            entries.append(entry)
            continue
        what = ("a torn last line (the writer was interrupted)" if number == last and torn_tail
                else f"line {number + 1}, which is not a valid entry")
        warnings.append(f"{source}: skipped {what}")
    for warning in warnings:
        log.warning("%s", warning)
    return entries, warnings


def check_version(entries: list[en.Entry], path: Path) -> None:
    first = entries[0] if entries else {}
    version = first.get("formatVersion") if first.get("type") == "session" else None
    if isinstance(version, int) and version > en.FORMAT_VERSION:
        raise TranscriptVersionError(
            f"{path} was written in transcript format {version} by a newer lsp-agent; this "
            f"version reads format {en.FORMAT_VERSION} and older. Update lsp-agent to open "
            "this session.")


def load_transcript(path: Path) -> TranscriptReader:
    with open(path, "rb") as f:
        data = f.read()
    entries, warnings = parse_lines(data, str(path))
    check_version(entries, path)
    if entries and entries[0].get("type") != "session":
        warnings.append(f"{path}: the session header is missing")
    return TranscriptReader(path, entries, warnings)


async def aload_transcript(path: Path) -> TranscriptReader:
    return await asyncio.to_thread(load_transcript, path)


# -- rebuilding messages -----------------------------------------------------------------------


def _copy_message(message: en.Message) -> en.Message:
    return {"role": message["role"], "content": list(message.get("content") or [])}


def _add(history: list[en.Message], entry: en.Entry) -> None:
    message = entry.get("message") or {}
    blocks = [b for b in (message.get("content") or []) if isinstance(b, dict)]
    if entry["type"] == "assistant":
        blocks = [b for b in blocks if not (b.get("type") == "text" and not b.get("text"))]
        if not blocks:
            return
        if history and history[-1]["role"] == "assistant":
            history[-1]["content"].extend(blocks)
        else:
            history.append({"role": "assistant", "content": blocks})
        return
    if not blocks:
        return
    if entry["type"] == "tool_result" and history and history[-1]["role"] == "user":
        history[-1]["content"][:0] = blocks  # results come first in the user message
    elif history and history[-1]["role"] == "user":
        history[-1]["content"].extend(blocks)
    else:
        history.append({"role": "user", "content": list(blocks)})


def _clear(history: list[en.Message], ids: set[str], placeholder: str) -> None:
    for message in history:
        if message["role"] != "user":
            continue
        message["content"] = [
            {**b, "content": placeholder}
            if b.get("type") == "tool_result" and b.get("tool_use_id") in ids else b
            for b in message["content"]]


def _repaired(history: list[en.Message]) -> list[en.Message]:
    """Answer every tool_use (a crash can leave calls without results) and turn results
    whose call is not in the preceding assistant message into text."""
    out: list[en.Message] = []
    for message in history:
        if message["role"] == "user":
            asked = _tool_use_ids(out[-1]) if out and out[-1]["role"] == "assistant" else []
            blocks = [b if b.get("type") != "tool_result" or b.get("tool_use_id") in asked
                      else {"type": "text", "text": ORPHAN_RESULT} for b in message["content"]]
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            missing = [_interrupted(i) for i in asked if i not in answered]
            out.append({"role": "user", "content": missing + blocks})
        else:
            if out and out[-1]["role"] == "assistant":
                out.append({"role": "user", "content": [
                    _interrupted(i) for i in _tool_use_ids(out[-1])] or [
                    {"type": "text", "text": "(continue)"}]})
            if not out:
                out.append({"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
            out.append(message)
    if out and out[-1]["role"] == "assistant" and (ids := _tool_use_ids(out[-1])):
        out.append({"role": "user", "content": [_interrupted(i) for i in ids]})
    return out


def _tool_use_ids(message: en.Message) -> list[str]:
    return [b["id"] for b in message["content"] if b.get("type") == "tool_use" and "id" in b]


def _interrupted(tool_use_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": INTERRUPTED,
            "is_error": True}
