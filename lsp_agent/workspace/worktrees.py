"""Git worktrees for isolated subagents (``Agent`` with ``isolation: "worktree"``).

A worktree is a second checkout of the repository on a branch of its own, made with a real
``git worktree add`` from HEAD. It lives under the server's state dir, never inside the
workspace (``<state>/worktrees/<repo key>/<agent id>``), and a small JSON record next to it
says whose it is, so that what a killed server left behind is found and cleaned at the next
use (``prune_stale``).

After ``create`` the workspace's uncommitted state is copied in and committed as the agent's
base (``uncommitted``, ``commit_base``; the copying is ``agent/worktree_return.py``'s). When
the agent ends (``finish``): a worktree without changes is removed with its branch; one with
changes is committed on its branch (git hooks off: nothing of the repository runs) and kept,
and its changes (``changes``, ``blob``) come back as one proposal; then it is removed
(``drop``) unless kept. ``list_worktrees`` and ``remove`` serve the protocol
(``agent/worktrees``, ``agent/removeWorktree``).

Every git call is bounded in time, killed with its process group on timeout, and dies with
the server (``child_options``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from lsp_agent.procs.lifetime import child_options
from lsp_agent.procs.liveness import pid_alive

GIT_TIMEOUT = 120.0  # a checkout of a large repository takes a while; a hung git does not
MAX_GIT_OUTPUT = 2_000_000
BRANCH_PREFIX = "lsp-agent/"
# Git's modes of a regular file (plain, executable) and of none (added or deleted): anything
# else (a link, a submodule) is not a file whose text can be proposed.
PLAIN_MODES = frozenset({"100644", "100755", "000000"})
# Nothing the repository configures runs when the server itself calls git: no hooks, no
# file-system monitor command.
SAFE_GIT = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
AGENT_IDENTITY = {"GIT_AUTHOR_NAME": "lsp-agent", "GIT_AUTHOR_EMAIL": "lsp-agent@localhost",
                  "GIT_COMMITTER_NAME": "lsp-agent", "GIT_COMMITTER_EMAIL": "lsp-agent@localhost"}

Status = Literal["running", "kept", "interrupted"]


class WorktreeError(Exception):
    """Why a worktree could not be made or removed; meant for the model and the user."""


@dataclass
class AgentWorktree:
    agent_id: str
    repo: str  # the repository's top folder (real path)
    path: str  # the worktree's top folder
    branch: str
    base: str  # the commit it started from
    workspace_rel: str  # the session's workspace inside the repository ("" at its top)
    session_id: str = ""
    description: str = ""
    status: Status = "running"
    pid: int = 0  # the server that runs it (a "running" record of a dead server is stale)
    created_at: float = 0.0
    commit: str | None = None  # the commit of its changes, once kept
    files_changed: int = 0

    @property
    def root(self) -> Path:
        """Where the agent works: the workspace's place inside the worktree."""
        return Path(self.path) / self.workspace_rel

    def wire(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "repository": self.repo, "path": self.path,
                "branch": self.branch, "base": self.base, "sessionId": self.session_id,
                "description": self.description, "status": self.status,
                "createdAt": self.created_at, "commit": self.commit,
                "filesChanged": self.files_changed}


@dataclass(frozen=True)
class Finished:
    kept: bool
    files: list[str]  # changed paths, relative to the repository
    commit: str | None


@dataclass(frozen=True)
class Uncommitted:
    name: str  # relative to the repository's top
    tracked: bool


@dataclass(frozen=True)
class Changed:
    name: str  # relative to the repository's top
    kind: str  # A added, M modified, D deleted; T: a link, submodule or type change
    binary: bool


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


async def git(args: list[str], cwd: Path, limit: float = GIT_TIMEOUT,
              env: dict[str, str] | None = None) -> GitResult:
    """Run ``git`` bounded in time; its process group is killed on timeout or cancel."""
    code, out, err = await git_bytes(args, cwd, limit, env)
    return GitResult(code, out.decode("utf-8", "replace"), err)


async def git_bytes(args: list[str], cwd: Path, limit: float = GIT_TIMEOUT,
                    env: dict[str, str] | None = None,
                    max_output: int = MAX_GIT_OUTPUT) -> tuple[int, bytes, str]:
    """``git`` as above, its output as bytes (file contents): (exit code, stdout, stderr)."""
    options = child_options()
    options["env"] = {**options["env"], "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", *SAFE_GIT, *args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, **options)
    except OSError as exc:
        raise WorktreeError(f"git could not run: {exc}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise WorktreeError(f"git {args[0]} did not finish within {limit:g} s") from None
    return (proc.returncode or 0, out[:max_output],
            err[:4000].decode("utf-8", "replace").strip())


async def _checked(args: list[str], cwd: Path, what: str, **kw: Any) -> str:
    done = await git(args, cwd, **kw)
    if done.code != 0:
        raise WorktreeError(f"{what} failed: {done.err or done.out.strip() or done.code}")
    return done.out.strip()


class Worktrees:
    """The agent worktrees of one server (all repositories), under ``state_dir``."""

    def __init__(self, state_dir: Path, timeout: float = GIT_TIMEOUT):
        self.base = Path(state_dir) / "worktrees"
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}  # per repository: git locks its admin files

    # -- making and ending ---------------------------------------------------------------------

    async def create(self, workspace: Path, agent_id: str, session_id: str = "",
                     description: str = "") -> AgentWorktree:
        """A new worktree of ``workspace``'s repository at HEAD, on branch
        ``lsp-agent/<agent id>``. WorktreeError with a clear reason otherwise (not a git
        repository, no commit yet, git failed)."""
        workspace = await asyncio.to_thread(_real, workspace)
        repo = await self._toplevel(workspace)
        state = await asyncio.to_thread(_real, self.base)
        if state == repo or state.is_relative_to(repo):
            raise WorktreeError(f"the state folder {state} is inside the repository {repo}; "
                                "worktrees are made outside it (set stateDir elsewhere)")
        head = await git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo,
                         self.timeout)
        if head.code != 0:
            raise WorktreeError(f"the repository {repo} has no commit yet: a worktree starts "
                                "from HEAD")
        folder = self.base / repo_key(repo)
        record = AgentWorktree(
            agent_id=agent_id, repo=str(repo), path=str(folder / agent_id),
            branch=BRANCH_PREFIX + agent_id, base=head.out.strip(),
            workspace_rel=workspace.relative_to(repo).as_posix().removeprefix("."),
            session_id=session_id, description=description, pid=os.getpid(),
            created_at=time.time())
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._save, record)  # first: a kill during the add is found
        async with self._lock(repo):
            try:
                await _checked(["worktree", "add", "--quiet", "-b", record.branch, record.path,
                                record.base], repo, "git worktree add", limit=self.timeout)
            except BaseException:
                await asyncio.shield(self._discard(record))
                raise
        return record

    async def finish(self, record: AgentWorktree, message: str) -> Finished:
        """The agent ended: no change -> worktree and branch removed; changes -> committed on
        the branch (with ``message``) and kept."""
        path = Path(record.path)
        files = await self._changed(path)
        head = await _checked(["rev-parse", "HEAD"], path, "git rev-parse", limit=self.timeout)
        if not files and head == record.base:
            await self._discard(record)
            return Finished(False, [], None)
        if files:
            await _checked(["add", "-A"], path, "git add", limit=self.timeout)
            await _checked(["commit", "--quiet", "--no-verify", "-m", message], path,
                           "git commit", limit=self.timeout, env=AGENT_IDENTITY)
            head = await _checked(["rev-parse", "HEAD"], path, "git rev-parse",
                                  limit=self.timeout)
        changed = await _checked(["diff", "--name-only", "-z", record.base, head], path,
                                 "git diff", limit=self.timeout)
        names = [n for n in changed.split("\0") if n]
        record.status, record.commit, record.files_changed = "kept", head, len(names)
        await asyncio.to_thread(self._save, record)
        return Finished(True, names, head)

    # -- the workspace's state in, the agent's changes out -------------------------------------

    async def uncommitted(self, record: AgentWorktree) -> list[Uncommitted]:
        """The repository's uncommitted files (tracked changes, deletions, untracked files
        that are not ignored), relative to its top."""
        # No optional lock: the user's own git commands must not find the index locked.
        done = await git(["--no-optional-locks", "status", "--porcelain=v1", "-z",
                          "--untracked-files=all", "--no-renames"], Path(record.repo),
                         self.timeout)
        if done.code != 0:  # not stripped: an entry starts with a space (" M name")
            raise WorktreeError(f"git status failed: {done.err or done.code}")
        return [Uncommitted(entry[3:], tracked=entry[:2] != "??")
                for entry in done.out.split("\0") if len(entry) > 3]

    async def commit_base(self, record: AgentWorktree, message: str) -> bool:
        """Commit what the worktree holds beyond its base as its new base (the workspace's
        uncommitted state, copied in); False when there was nothing to commit."""
        path = Path(record.path)
        if not await self._changed(path):
            return False
        await _checked(["add", "-A"], path, "git add", limit=self.timeout)
        await _checked(["commit", "--quiet", "--no-verify", "-m", message], path, "git commit",
                       limit=self.timeout, env=AGENT_IDENTITY)
        record.base = await _checked(["rev-parse", "HEAD"], path, "git rev-parse",
                                     limit=self.timeout)
        await asyncio.to_thread(self._save, record)
        return True

    async def changes(self, record: AgentWorktree) -> list[Changed]:
        """What the agent changed: its base against its branch (after ``finish``)."""
        path = Path(record.path)
        head = record.commit or "HEAD"
        raw = await _checked(["diff", "--raw", "--no-renames", "-z", record.base, head], path,
                             "git diff", limit=self.timeout)
        numbers = await _checked(["diff", "--numstat", "--no-renames", "-z", record.base, head],
                                 path, "git diff", limit=self.timeout)
        binary = {row.split("\t", 2)[2] for row in numbers.split("\0")
                  if row.startswith("-\t-\t")}
        fields = raw.split("\0")
        found = []
        for meta, name in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.lstrip(":").split()
            if len(parts) < 5:
                continue
            plain = all(mode in PLAIN_MODES for mode in parts[:2])
            found.append(Changed(name, parts[4][0] if plain else "T", name in binary))
        return found

    async def blob(self, record: AgentWorktree, rev: str, name: str,
                   limit: int = MAX_GIT_OUTPUT) -> bytes | None:
        """The bytes of file ``name`` at ``rev`` (None: not there, or larger than ``limit``)."""
        code, out, _ = await git_bytes(["cat-file", "-s", f"{rev}:{name}"], Path(record.path),
                                       self.timeout)
        if code != 0 or int(out.strip() or b"0") > limit:
            return None
        code, out, _ = await git_bytes(["cat-file", "blob", f"{rev}:{name}"],
                                       Path(record.path), self.timeout, max_output=limit + 1)
        return out if code == 0 else None

    async def _changed(self, path: Path) -> list[str]:
        done = await git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], path,
                         self.timeout)
        if done.code != 0:  # not stripped: an entry starts with a space (" M name")
            raise WorktreeError(f"git status failed: {done.err or done.code}")
        return [entry[3:] for entry in done.out.split("\0") if len(entry) > 3]

    # -- listing and removing ------------------------------------------------------------------

    async def list_worktrees(self, workspace: Path | None = None) -> list[AgentWorktree]:
        """The agent worktrees (of ``workspace``'s repository when given), stale ones of a
        dead server cleaned first."""
        await self.prune_stale()
        records = await asyncio.to_thread(self._records)
        if workspace is not None:
            try:
                repo = str(await self._toplevel(await asyncio.to_thread(_real, workspace)))
            except WorktreeError:
                return []
            records = [r for r in records if r.repo == repo]
        return sorted(records, key=lambda r: r.created_at)

    async def remove(self, agent_id: str, delete_branch: bool = True) -> AgentWorktree:
        """Remove a kept worktree (its changes are gone unless merged) and, by default, its
        branch. A running agent's worktree is not removed."""
        record = next((r for r in await asyncio.to_thread(self._records)
                       if r.agent_id == agent_id), None)
        if record is None:
            raise WorktreeError(f"no agent worktree {agent_id!r}")
        if record.status == "running" and pid_alive(record.pid):
            raise WorktreeError(f"the agent {agent_id} is still running in its worktree")
        await self._discard(record, delete_branch)
        return record

    async def drop(self, record: AgentWorktree) -> None:
        """Remove this worktree and its branch now (its changes came back, or it never
        started)."""
        await self._discard(record)

    async def prune_stale(self) -> list[AgentWorktree]:
        """Worktrees a dead server left "running": removed when unchanged, else committed and
        kept as "interrupted". Returns those it handled."""
        handled = []
        for record in await asyncio.to_thread(self._records):
            if record.status != "running" or pid_alive(record.pid):
                continue
            handled.append(record)
            if not await asyncio.to_thread(Path(record.path).is_dir):
                await self._discard(record)
                continue
            try:
                done = await self.finish(record, f"lsp-agent: {record.description} "
                                         f"({record.agent_id}, interrupted)")
            except WorktreeError:
                done = Finished(True, [], None)
            if done.kept:
                record.status = "interrupted"
                await asyncio.to_thread(self._save, record)
        return handled

    async def _discard(self, record: AgentWorktree, delete_branch: bool = True) -> None:
        repo = Path(record.repo)
        if await asyncio.to_thread(repo.is_dir):
            async with self._lock(repo):
                await git(["worktree", "remove", "--force", "--force", record.path], repo,
                          self.timeout)
                await git(["worktree", "prune"], repo, self.timeout)
                if delete_branch:
                    await git(["branch", "-D", record.branch], repo, self.timeout)
        await asyncio.to_thread(self._forget, record)

    # -- records -------------------------------------------------------------------------------

    async def _toplevel(self, workspace: Path) -> Path:
        done = await git(["rev-parse", "--show-toplevel"], workspace, self.timeout)
        if done.code != 0:
            raise WorktreeError(f"{workspace} is not in a git repository: isolation "
                                "\"worktree\" needs one")
        return await asyncio.to_thread(_real, Path(done.out.strip()))

    def _lock(self, repo: Path) -> asyncio.Lock:
        return self._locks.setdefault(str(repo), asyncio.Lock())

    def _record_path(self, record: AgentWorktree) -> Path:
        return Path(record.path).with_suffix(".json")

    def _save(self, record: AgentWorktree) -> None:
        target = self._record_path(record)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
        os.replace(tmp, target)

    def _forget(self, record: AgentWorktree) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._record_path(record).unlink()
        with contextlib.suppress(OSError):  # what git left (a failed add), never followed
            _remove_tree(Path(record.path))

    def _records(self) -> list[AgentWorktree]:
        found = []
        for file in sorted(self.base.glob("*/*.json")) if self.base.is_dir() else []:
            try:
                found.append(AgentWorktree(**json.loads(file.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue  # a record of another version or torn: left alone
        return found


def repo_key(repo: Path) -> str:
    """A folder name for one repository: readable, and unique by its full path."""
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in repo.name)[:40]
    return f"{name}-{digest}"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


    return True


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


_SHARED: dict[str, Worktrees] = {}


def worktrees_for(state_dir: Path) -> Worktrees:
    """One ``Worktrees`` per state dir in this process: its per-repository locks are shared
    by every session."""
    key = os.path.realpath(state_dir)
    if key not in _SHARED:
        _SHARED[key] = Worktrees(Path(state_dir))
    return _SHARED[key]
