"""Reading a transcript back: the current branch, the model's view, pages of history.

The current branch is the parentUuid chain that ends at the last entry of the file (the writer
makes every entry the child of the previous leaf, and a rewind entry points back into the
chain). Loading never fails on damage: a torn last line (a crash mid-write) or any other line
that does not parse is skipped with a warning. It fails on one thing: a transcript written by
a newer format version, which this version cannot read correctly.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import re
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
    timestamp: str
    record: Record

    @property
    def prompt(self) -> str:
        return str(self.record.data.get("prompt", ""))


class Record:
    """One line: the chain fields read at load, the rest parsed when first needed.

    Lines written by this package start with ``uuid``, ``parentUuid``, ``sessionId``,
    ``timestamp`` and ``type`` in that order, which a regex reads in place, in the file's
    buffer (a resume parses a few hundred of 10,000 lines). Other lines are parsed at load."""

    __slots__ = ("_buf", "_data", "_end", "_start", "parent", "timestamp", "type", "uuid")

    def __init__(self, uuid: str, parent: str | None, timestamp: str, type_: str,
                 buf: bytes = b"", start: int = 0, end: int = 0,
                 data: en.Entry | None = None):
        self.uuid = uuid
        self.parent = parent
        self.timestamp = timestamp
        self.type = type_
        self._buf = buf
        self._start = start
        self._end = end
        self._data = data

    @property
    def data(self) -> en.Entry:
        if self._data is None:
            try:
                value = json.loads(self._buf[self._start: self._end])
            except ValueError:
                value = None
            if not isinstance(value, dict):  # damaged after the prefix: keep the chain only
                log.warning("transcript entry %s is damaged; skipped", self.uuid)
                value = {"uuid": self.uuid, "parentUuid": self.parent,
                         "timestamp": self.timestamp, "type": "damaged"}
            self._data = value
            self._buf = b""
        return self._data

    def contains(self, needle: bytes) -> bool:
        """Whether the raw line holds ``needle`` (for fields the writer puts first)."""
        if self._data is not None:
            return needle in json.dumps(self._data, separators=(",", ":")).encode()
        return self._buf.find(needle, self._start, self._end) >= 0

    def string_field(self, name: str) -> str | None:
        """A top-level string field that the builders put right after ``type``."""
        if self._data is not None:
            value = self._data.get(name)
            return value if isinstance(value, str) else None
        match = _field_pattern(name).search(self._buf, self._start,
                                            min(self._end, self._start + 400))
        if match is None:
            value = self.data.get(name)
            return value if isinstance(value, str) else None
        return match.group(1).decode()


class TranscriptReader:
    """An immutable view of one transcript as it was when loaded."""

    def __init__(self, path: Path, records: list[Record], warnings: list[str]):
        self.path = path
        self.session_id = session_id_of(path)
        self.records = records  # every valid line, file order
        self.warnings = warnings
        self.header: en.Entry | None = (records[0].data if records
                                        and records[0].type == "session" else None)
        self._chain = self._current_chain()
        self._chain_index = {r.uuid: i for i, r in enumerate(self._chain)}
        self._file_index = {r.uuid: i for i, r in enumerate(records)}
        self._turns: list[Turn] | None = None

    @property
    def entries(self) -> list[en.Entry]:
        """Every entry of the file, parsed (all branches, file order)."""
        return [r.data for r in self.records]

    @property
    def chain(self) -> list[en.Entry]:
        """The entries of the current branch, parsed, oldest first."""
        return [r.data for r in self._chain]

    # -- structure ---------------------------------------------------------------------------

    def _current_chain(self) -> list[Record]:
        by_uuid = {r.uuid: r for r in self.records}
        leaf = next((r for r in reversed(self.records) if r.type != "session"), None)
        chain: list[Record] = []
        seen: set[str] = set()
        node = leaf
        while node is not None and node.uuid not in seen:
            seen.add(node.uuid)
            if node.type != "rewind":  # a rewind only moves the branch point
                chain.append(node)
            parent = node.parent
            if parent is None:
                break
            found = by_uuid.get(parent)
            if found is None:  # a damaged line: its neighbour in the file is the best guess
                self.warnings.append(f"entry {parent} is missing: the chain goes on with the "
                                     "entry written before it")
                earlier = self.records[: self.records.index(node)]
                found = next((r for r in reversed(earlier) if r.type != "session"), None)
            node = found
        chain.reverse()
        return chain

    @property
    def leaf(self) -> str | None:
        """The uuid to chain the next entry to (the last entry of the file)."""
        last = next((r for r in reversed(self.records) if r.type != "session"), None)
        return last.uuid if last else None

    def turns(self) -> list[Turn]:
        if self._turns is None:  # asked several times by a resume: the reader never changes
            found = [r for r in self._chain if r.type == "user" and _is_prompt(r)]
            self._turns = [Turn(i, r.uuid, r.parent, r.timestamp, r)
                           for i, r in enumerate(found, 1)]
        return list(self._turns)

    def turn(self, number: int) -> Turn:
        turns = self.turns()
        if not 1 <= number <= len(turns):
            raise ValueError(f"no turn {number}: this session has {len(turns)} turns")
        return turns[number - 1]

    def writer_state(self) -> WriterState:
        """What a writer needs to append to this transcript."""
        cost = self.cost()
        return WriterState(leaf=self.leaf, meta=self.meta(),
                           turns=[TurnPoint(t.uuid, t.parent) for t in self.turns()],
                           cost={"usd": cost.usd, "byModel": copy.deepcopy(cost.by_model)})

    def meta(self) -> dict[str, Any]:
        """The index entry rebuilt from the transcript (used when the .meta.json is stale).
        Same result as folding every entry with ``entries.fold_meta``, without parsing them."""
        header = self.header or {}
        meta = en.new_meta(self.session_id, header.get("cwd", ""),
                           header.get("timestamp", ""))
        meta["forkedFrom"] = header.get("forkedFrom")
        first = next((r for r in self.records if r.type == "user" and _is_prompt(r)), None)
        meta.update(
            firstPrompt=en.short_title(first.data.get("prompt", "")) if first else None,
            turns=len(self.turns()), costUsd=self.cost().usd, model=self.model(),
            mode=self.mode(), customTitle=self.title())
        last = next((r for r in reversed(self.records) if r.type != "session"), None)
        if last is not None:
            meta["updatedAt"] = last.timestamp
        return meta

    # -- what the model saw ------------------------------------------------------------------

    def messages(self) -> list[en.Message]:
        """The conversation as the model last saw it: the latest summary's history (or the
        start) plus what follows, with cleared tool results cleared, repaired so the API
        accepts it (every tool_use answered, no orphan results)."""
        start = 0
        history: list[en.Message] = []
        for i in range(len(self._chain) - 1, -1, -1):
            record = self._chain[i]
            if record.type == "compact_boundary" and "messages" in record.data:
                history = [_copy_message(m) for m in record.data["messages"]]
                start = i + 1
                break
        for record in self._chain[start:]:
            if record.type in en.MESSAGE_TYPES:
                _add(history, record.data)
            elif record.type == "compact_boundary" and record.data.get("cleared"):
                _clear(history, set(record.data["cleared"]), record.data.get("placeholder", ""))
        return _repaired(history)

    # -- state -------------------------------------------------------------------------------

    def auto_decisions(self) -> list[en.Entry]:
        """Auto mode's decisions on the current branch (a resume restores its cache from
        them; a rewound branch's decisions were about calls that no longer happened)."""
        return [r.data for r in self._chain if r.type == "auto_decision"]

    def todos(self) -> list[dict[str, Any]]:
        entry = self._last(self._chain, "todos")
        return list(entry.get("todos", [])) if entry else []

    def task_list(self) -> list[dict[str, Any]]:
        entry = self._last(self._chain, "task_list")
        return list(entry.get("tasks", [])) if entry else []

    def coordinator(self) -> bool:
        """Whether the session runs in coordinator mode (said once, when it was created)."""
        return any(r.type == "coordinator" for r in self.records)

    def mode(self) -> str | None:
        """The mode set last (in any branch: a rewind does not undo the user's choice)."""
        entry = self._last(self.records, "mode")
        return entry.get("mode") if entry else None

    def model(self) -> str | None:
        entry = self._last(self.records, "model")
        if entry:
            return entry.get("model")
        last = self._last(self.records, "assistant")
        return last.get("message", {}).get("model") if last else None

    def title(self) -> str | None:
        entry = self._last(self.records, "title")
        return (entry.get("title") or None) if entry else None

    def cost(self) -> CostSummary:
        """Every request the session paid for, abandoned branches included: the running
        total of the last turn end plus the requests after it."""
        start = 0
        ledger = en.new_ledger()
        for i in range(len(self.records) - 1, -1, -1):
            record = self.records[i]
            if record.type == "turn_end" and record.contains(b'"sessionCost":'):
                total = record.data.get("sessionCost")
                if isinstance(total, dict) and isinstance(total.get("byModel"), dict):
                    ledger = copy.deepcopy(total)
                    start = i + 1
                    break
        for record in self.records[start:]:
            if record.type == "usage":
                en.add_cost(ledger, record.data)
        return CostSummary(float(ledger.get("usd") or 0.0), ledger["byModel"])

    def pending_proposals(self) -> list[en.Entry]:
        """Proposals on the current branch that were never decided: they were not applied."""
        decided = {r.string_field("proposalId") for r in self.records
                   if r.type == "proposal_decision"}
        return [r.data for r in self._chain if r.type == "proposal"
                and r.string_field("proposalId") not in decided]

    # -- history for display -----------------------------------------------------------------

    def history(self, before: str | None = None, limit: int = 50) -> HistoryPage:
        """Displayable entries of the current branch, newest first, older than ``before``."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        end = len(self._chain)
        if before is not None:
            if before not in self._chain_index:
                raise KeyError(f"entry {before} is not on the current branch")
            end = self._chain_index[before]
        items: list[en.Entry] = []
        i = end - 1
        while i >= 0 and len(items) < limit:
            if self._chain[i].type in en.DISPLAY_TYPES:
                items.append(self._chain[i].data)
            i -= 1
        more = any(r.type in en.DISPLAY_TYPES for r in self._chain[: i + 1])
        return HistoryPage(items, items[-1]["uuid"] if items and more else None)

    # -- checkpoints -------------------------------------------------------------------------

    def backups_after(self, entry_uuid: str) -> list[en.Entry]:
        """``file_backup`` entries written after ``entry_uuid`` in file (time) order, every
        branch included: what changed on disk after that point, whoever's branch did it."""
        start = self._file_index.get(entry_uuid)
        if start is None:
            raise KeyError(f"entry {entry_uuid} is not in this transcript")
        return [r.data for r in self.records[start + 1:] if r.type == "file_backup"]

    def latest_afters(self, entry_uuid: str) -> dict[str, en.Entry]:
        """Per path, the last ``file_after`` written after ``entry_uuid`` (file order): what
        the agent last left each file as."""
        start = self._file_index.get(entry_uuid)
        if start is None:
            raise KeyError(f"entry {entry_uuid} is not in this transcript")
        return {r.data.get("path", ""): r.data for r in self.records[start + 1:]
                if r.type == "file_after"}

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _last(records: list[Record], kind: str) -> en.Entry | None:
        return next((r.data for r in reversed(records) if r.type == kind), None)


# -- loading -----------------------------------------------------------------------------------

# The fixed start of every line this package writes (see ``writer.TranscriptWriter._append``).
_PREFIX = re.compile(
    rb'\{"uuid":"([^"\\]+)","parentUuid":(?:null|"([^"\\]+)"),"sessionId":"[^"\\]*",'
    rb'"timestamp":"([^"\\]*)","type":"([^"\\]+)"[,}]')


def _record(buf: bytes, start: int, end: int) -> Record | None:
    match = _PREFIX.match(buf, start, end)
    if match is not None and buf[end - 1] == 0x7D:  # ends with "}"
        uid, parent, stamp, kind = match.groups()
        return Record(uid.decode(), parent.decode() if parent else None, stamp.decode(),
                      kind.decode(), buf, start, end)
    return _record_strict(buf[start:end])


def _record_strict(raw: bytes) -> Record | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("uuid"), str):
        return None
    parent = entry.get("parentUuid")
    return Record(entry["uuid"], parent if isinstance(parent, str) else None,
                  str(entry.get("timestamp", "")), str(entry.get("type", "")), data=entry)


def parse_lines(data: bytes, source: str = "transcript") -> tuple[list[Record], list[str]]:
    """Records of a JSONL buffer and warnings for the lines skipped. Lines are found in
    place (no copy of the buffer); only lines without the writer's prefix are parsed now."""
    records: list[Record] = []
    warnings: list[str] = []
    start, size, number = 0, len(data), 0
    while start < size:
        end = data.find(b"\n", start)
        torn = end < 0
        if torn:
            end = size
        number += 1
        if end > start:
            # A last line without its newline may be torn: it is parsed whole.
            record = _record_strict(data[start:end]) if torn else _record(data, start, end)
            if record is not None:
                records.append(record)
            else:
                what = ("a torn last line (the writer was interrupted)" if torn
                        else f"line {number}, which is not a valid entry")
                warnings.append(f"{source}: skipped {what}")
        start = end + 1
    for warning in warnings:
        log.warning("%s", warning)
    return records, warnings


def check_version(records: list[Record], path: Path) -> None:
    first = records[0].data if records and records[0].type == "session" else {}
    version = first.get("formatVersion")
    if isinstance(version, int) and version > en.FORMAT_VERSION:
        raise TranscriptVersionError(
            f"{path} was written in transcript format {version} by a newer lsp-agent; this "
            f"version reads format {en.FORMAT_VERSION} and older. Update lsp-agent to open "
            "this session.")


def load_transcript(path: Path) -> TranscriptReader:
    with open(path, "rb") as f:
        data = f.read()
    records, warnings = parse_lines(data, str(path))
    check_version(records, path)
    if records and records[0].type != "session":
        warnings.append(f"{path}: the session header is missing")
    return TranscriptReader(path, records, warnings)


async def aload_transcript(path: Path) -> TranscriptReader:
    return await asyncio.to_thread(load_transcript, path)


# -- rebuilding messages -----------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _field_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(rb'"' + re.escape(name.encode()) + rb'":"([^"\\]*)"')


def _is_prompt(record: Record) -> bool:
    """A user's prompt, not a Stop hook's continuation nor blocks the agent added itself
    (``origin`` is written first; a line without one, written by hand, is a prompt)."""
    return record.contains(b'"origin":"user"') or not record.contains(b'"origin":')


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
