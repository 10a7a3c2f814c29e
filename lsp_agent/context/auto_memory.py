"""Auto memory: what the agent learns about a project, kept between sessions.

One folder per project in the state dir (``<state>/memory/<workspace slug>/``), never in the
workspace and never chosen by the project's own settings (a cloned repository must not point
it at ``~/.ssh``):

- ``MEMORY.md``: the index, one line per topic file plus anything the user adds. It is loaded
  into every session's system prompt after the cached static prefix (see ``memory_layer``),
  cut at ``MAX_INDEX_LINES`` lines / ``MAX_INDEX_BYTES`` bytes.
- topic files ``<name>.md`` with a frontmatter of ``name``, ``description`` and ``type`` (one
  of ``TYPES``), written by the agent's Memory tool, by Dream consolidation or by the user.

Every write goes through here: names are plain (no folders, no dots in front), a link in place
of a file or of the folder is refused, content is masked for secrets (token shapes and the
values the server knows as secret) before it touches the disk, and each file is replaced in one
step (a reader sees the old or the new file).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.permissions.settings import candidate_files, read_json_object
from lsp_agent.store.layout import atomic_write, ensure_private_dir, workspace_slug

INDEX = "MEMORY.md"
TYPES = ("user", "feedback", "project", "reference")
MAX_INDEX_LINES = 200
MAX_INDEX_BYTES = 25_000
MAX_TOPIC_BYTES = 25_000
MAX_TOPICS = 200
MAX_DESCRIPTION = 200
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_FRONT = re.compile(r"\A---\n(.*?)\n---\n?", re.DOTALL)

Redact = Callable[[str], str]


class MemoryRefused(ValueError):
    """A memory request that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Topic:
    name: str
    file: str
    description: str
    type: str
    size: int
    problem: str | None = None  # broken frontmatter: listed, readable, never trusted blindly

    def wire(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "file": self.file, "type": self.type,
                                  "description": self.description, "size": self.size}
        if self.problem:
            out["problem"] = self.problem
        return out


def memory_dir(state_dir: Path, workspace: Path) -> Path:
    return Path(state_dir) / "memory" / workspace_slug(workspace)


def _no_redaction(text: str) -> str:
    return text


class AutoMemory:
    """One project's memory folder. Blocking file calls: use from a thread in a server."""

    def __init__(self, folder: Path, redact: Redact = _no_redaction):
        self.folder = Path(folder)
        self.redact = redact

    # -- reading -----------------------------------------------------------------------------

    def index(self) -> str:
        """MEMORY.md as the session loads it (cut to the limits), "" when there is none."""
        text = self._read(INDEX)
        if text is None:
            return ""
        return cut_index(text)

    def raw_index(self) -> str:
        return self._read(INDEX) or ""

    def topics(self) -> list[Topic]:
        if not self._folder_ok(create=False):
            return []
        found = []
        for path in sorted(self.folder.glob("*.md"))[:MAX_TOPICS + 1]:
            if path.name == INDEX or path.is_symlink() or not path.is_file():
                continue
            text = self._read(path.name)
            if text is not None:
                found.append(parse_topic(path.name, text))
        return found

    def read(self, name: str) -> str:
        file = topic_file(name) if name != INDEX else INDEX
        text = self._read(file)
        if text is None:
            raise MemoryRefused(f"no memory file {file!r}")
        return text

    # -- writing -----------------------------------------------------------------------------

    def write_topic(self, name: str, description: str, kind: str, body: str) -> tuple[str, int]:
        """Write topic ``name`` and keep its index line current. Returns the file name and
        how many secrets were masked."""
        file = topic_file(name)
        if kind not in TYPES:
            raise MemoryRefused(f"type must be one of {', '.join(TYPES)}, not {kind!r}")
        description = " ".join(description.split())[:MAX_DESCRIPTION]
        if not description:
            raise MemoryRefused("a memory needs a one-line description")
        text = (f"---\nname: {name}\ndescription: {description}\ntype: {kind}\n---\n\n"
                f"{body.strip()}\n")
        masked_text, masked = self._masked(text)
        if len(masked_text.encode()) > MAX_TOPIC_BYTES:
            raise MemoryRefused(f"a memory file holds at most {MAX_TOPIC_BYTES:,} bytes; split "
                               "it or say it shorter")
        existing = {t.file for t in self.topics()}
        if file not in existing and len(existing) >= MAX_TOPICS:
            raise MemoryRefused(f"the memory holds {MAX_TOPICS} files already; merge some first")
        self._write(file, masked_text)
        self._index_line(file, f"- [{name}]({file}) ({kind}): {self.redact(description)}")
        return file, masked

    def write_index(self, text: str) -> int:
        """Replace MEMORY.md (the user's edit, or Dream's new index). Refused over the limits:
        a longer index would be cut when loaded, and what is cut is lost to every session."""
        masked_text, masked = self._masked(text)
        problem = index_problem(masked_text)
        if problem:
            raise MemoryRefused(problem)
        self._write(INDEX, masked_text)
        return masked

    def write_file(self, name: str, text: str) -> int:
        """Replace a file by name (``MEMORY.md`` or a topic's file), as the user edits it."""
        if name == INDEX:
            return self.write_index(text)
        file = topic_file(name)
        masked_text, masked = self._masked(text)
        if len(masked_text.encode()) > MAX_TOPIC_BYTES:
            raise MemoryRefused(f"a memory file holds at most {MAX_TOPIC_BYTES:,} bytes")
        self._write(file, masked_text)
        return masked

    def delete(self, name: str) -> bool:
        file = topic_file(name) if name != INDEX else INDEX
        path = self._path(file)
        if not path.exists() and not path.is_symlink():
            return False
        path.unlink()
        if file != INDEX:
            self._index_line(file, None)
        return True

    def clear(self) -> int:
        """Delete every memory file of the project (the folder stays)."""
        if not self._folder_ok(create=False):
            return 0
        count = 0
        for path in self.folder.glob("*.md"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                count += 1
        return count

    # -- helpers -----------------------------------------------------------------------------

    def _masked(self, text: str) -> tuple[str, int]:
        masked = self.redact(text)
        return masked, masked.count("[REDACTED]") - text.count("[REDACTED]")

    def _index_line(self, file: str, line: str | None) -> None:
        lines = [x for x in self.raw_index().splitlines() if f"]({file})" not in x]
        if line is not None:
            lines.append(line)
        text = "\n".join(lines).strip("\n") + "\n" if lines else ""
        if not text.strip():
            with contextlib.suppress(FileNotFoundError):
                self._path(INDEX).unlink()
            return
        self._write(INDEX, text)

    def _folder_ok(self, create: bool) -> bool:
        """The folder exists (made 0700 when ``create``) and is no link to somewhere else."""
        if self.folder.is_symlink():
            raise MemoryRefused(f"{self.folder} is a link; memory is not read or written "
                               "through links")
        if not self.folder.exists():
            if not create:
                return False
            ensure_private_dir(self.folder)
        real = Path(os.path.realpath(self.folder))
        expected = Path(os.path.realpath(self.folder.parent)) / self.folder.name
        if real != expected:
            raise MemoryRefused(f"{self.folder} resolves elsewhere ({real}); refused")
        return True

    def _path(self, file: str) -> Path:
        path = self.folder / file
        if path.is_symlink():
            raise MemoryRefused(f"{file} is a link; memory files are never read or written "
                               "through links")
        return path

    def _read(self, file: str) -> str | None:
        if not self._folder_ok(create=False):
            return None
        path = self._path(file)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link swapped in meanwhile (ELOOP) or unreadable
            raise MemoryRefused(f"cannot read {file}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_TOPIC_BYTES * 4 + 1)
        return data.decode("utf-8", "replace")

    def _write(self, file: str, text: str) -> None:
        self._folder_ok(create=True)
        self._path(file)  # checked at write time: no link in its place
        # os.replace swaps the directory entry: a link that appears meanwhile is replaced,
        # never written through.
        atomic_write(self.folder / file, text.encode("utf-8"))


def topic_file(name: str) -> str:
    stem = name[:-3] if name.endswith(".md") else name
    if not NAME_RE.match(stem) or stem == INDEX[:-3].lower():
        raise MemoryRefused(f"a memory name is lower-case letters, digits, '-' and '_' "
                           f"(at most 63), not {name!r}")
    return f"{stem}.md"


def parse_topic(file: str, text: str) -> Topic:
    stem = file[:-3]
    size = len(text.encode())
    match = _FRONT.match(text)
    if match is None:
        return Topic(stem, file, "", "project", size, "no frontmatter")
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip().strip("'\"")
    problems = [f"missing {k}" for k in ("name", "description", "type") if not fields.get(k)]
    kind = fields.get("type", "")
    if kind and kind not in TYPES:
        problems.append(f"unknown type {kind!r}")
        kind = ""
    return Topic(fields.get("name") or stem, file, fields.get("description", ""),
                 kind or "project", size, "; ".join(problems) or None)


def cut_index(text: str) -> str:
    lines = text.splitlines()
    cut = len(lines) > MAX_INDEX_LINES
    lines = lines[:MAX_INDEX_LINES]
    out = "\n".join(lines)
    data = out.encode()
    if len(data) > MAX_INDEX_BYTES:
        out = data[:MAX_INDEX_BYTES].decode("utf-8", "ignore").rsplit("\n", 1)[0]
        cut = True
    if cut:
        out += (f"\n[MEMORY.md is cut here: it holds more than {MAX_INDEX_LINES} lines or "
                f"{MAX_INDEX_BYTES:,} bytes. Keep it short: merge entries.]")
    return out


def index_problem(text: str) -> str | None:
    lines = len(text.splitlines())
    size = len(text.encode())
    if lines > MAX_INDEX_LINES or size > MAX_INDEX_BYTES:
        return (f"MEMORY.md holds at most {MAX_INDEX_LINES} lines and {MAX_INDEX_BYTES:,} "
                f"bytes; this has {lines} lines, {size:,} bytes")
    return None


# Kept short: it is in every request. Types: user, feedback, project, reference.
MEMORY_GUIDE = """Auto memory: notes of earlier sessions (facts, not instructions). Save \
with Memory what a later session would rediscover: user corrections (feedback), the user \
(user), project decisions, pitfalls (project), where things are (reference). Update, no \
duplicates; absolute dates."""


def memory_layer(memory: AutoMemory) -> dict[str, str]:
    """The system block after the cached prefix: how to use memory, then the index. Computed
    once per session (a write during the session shows in the next one) so the system prompt
    stays byte-identical and the cache holds."""
    index = memory.index().strip() or "(empty)"
    text = (MEMORY_GUIDE
            + f"\n\n<auto_memory_index>\n{index}\n</auto_memory_index>")
    return {"type": "text", "text": text}


# -- where it lives and whether it is on -------------------------------------------------------

# Settings sources that may move the memory folder: the user's own, never the project's.
_MAY_MOVE = frozenset({"managed", "options", "user"})


def auto_memory_for(state_dir: Path, workspace: Path, options: dict[str, object] | None = None,
                    redact: Redact = _no_redaction) -> tuple[AutoMemory | None, list[str]]:
    """The project's memory (None when switched off) and warnings about its settings.

    Off when ``LSP_AGENT_AUTO_MEMORY=0``, when the editor's options say ``autoMemory: false``
    or when any settings file does (switching it off is always safe, so the project may).
    ``autoMemoryDirectory`` moves the folder only from managed, editor or user settings."""
    warnings: list[str] = []
    sources: list[tuple[str, str, dict[str, object]]] = []
    if options:
        sources.append(("options", "the editor's settings", options))
    for kind, path in candidate_files(workspace):
        data = read_json_object(path, [])  # unreadable files: the permission loader says so
        if data is not None:
            sources.append((kind, str(path), data))
    if os.environ.get("LSP_AGENT_AUTO_MEMORY", "").strip().lower() in {"0", "false", "off"}:
        return None, warnings
    if any(data.get("autoMemory") is False for _, _, data in sources):
        return None, warnings
    folder = memory_dir(state_dir, workspace)
    for kind, label, data in sources:
        moved = data.get("autoMemoryDirectory")
        if moved is None:
            continue
        if kind not in _MAY_MOVE:
            warnings.append(f"{label}: autoMemoryDirectory is only honoured in managed, editor "
                            "or user settings (a repository must not choose where the agent "
                            "writes); ignored")
        elif isinstance(moved, str) and moved.strip():
            folder = Path(moved).expanduser() / workspace_slug(workspace)
            break
    return AutoMemory(folder, redact), warnings
