"""Changes the user granted to land without review (``watch.autoApply``, docs/autonomy.md):
on save, the granted commands (``watch.formatCommand``, ``watch.lintFixCommand``) rewrite a
COPY of the saved file in a scratch folder; when the copy changed, the change goes through the
same version-pinned landing as an accepted proposal (``workspace/applyEdit``, refused if the
user typed meanwhile), and an ``auto_applied`` inbox item says what changed.

Only the user's own commands do this, never the model: a fix a background session prepares is
always a proposal. The commands run like the test command (bash, the cleaned environment, its
own process group, bounded, dying with the server), and a project's commands only after the
user approved its watcher configuration.
"""

from __future__ import annotations

import asyncio
import difflib
import shlex
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import from_fs_path

from lsp_agent.edits.workspace_edit import EditTarget
from lsp_agent.permissions.hooks import run_bounded
from lsp_agent.permissions.safe_write import WriteRefused, WriteScope, real_path
from lsp_agent.permissions.secrets import DEFAULT_RULES
from lsp_agent.sessions.watch import AUTO_APPLY_KINDS, WatchConfig
from lsp_agent.store.layout import ensure_private_dir
from lsp_agent.workspace.documents import FileReadError, snapshot_async

if TYPE_CHECKING:
    from lsp_agent.sessions.watcher import Watcher

MAX_DIFF_SHOWN = 4_000
FILE_PLACEHOLDER = "{file}"


def command_for(template: str, copy: Path) -> str:
    """The command with the copy's path (quoted) in place of ``{file}``, or after it."""
    quoted = shlex.quote(str(copy))
    if FILE_PLACEHOLDER in template:
        return template.replace(FILE_PLACEHOLDER, quoted)
    return f"{template} {quoted}"


class AutoApplier:
    def __init__(self, watcher: Watcher):
        self._watcher = watcher

    async def run(self, workspace: Path, config: WatchConfig, path: Path) -> None:
        watcher = self._watcher
        why_not = _refusal(workspace, path)
        if why_not is not None:
            self._skip(workspace, path, why_not)
            return
        try:
            before = await snapshot_async(watcher.host.documents, path)
        except (OSError, FileReadError) as exc:
            self._skip(workspace, path, f"cannot read it: {exc}")
            return
        after, done = await self._rewrite(workspace, config, path, before.text)
        if after is None or after == before.text:
            self._skip(workspace, path, "no change" if after is not None
                       else "the command failed", kinds=list(done))
            return
        uri = from_fs_path(str(path)) or path.as_uri()
        target = EditTarget(uri, before.text, after, before.version)
        scopes = {path: WriteScope(roots=(real_path(workspace),),
                                   expected=await asyncio.to_thread(real_path, path))}
        watcher.applying.add(path)
        try:
            report = await watcher.host.applier.apply([target], scopes)
        except WriteRefused as exc:
            self._skip(workspace, path, f"refused: {exc}")
            return
        finally:
            watcher.applying.discard(path)
        problem = report.reason if not report.applied else next(
            iter({**report.diverged, **report.unconfirmed}.values()), None)
        if problem is not None:
            self._skip(workspace, path, f"not applied: {problem}")
            return
        self._report(workspace, path, uri, done, before.text, after)

    async def _rewrite(self, workspace: Path, config: WatchConfig, path: Path,
                       text: str) -> tuple[str | None, list[str]]:
        """The text after the granted commands ran on a copy (None: one failed)."""
        scratch = ensure_private_dir(self._watcher.state_dir() / "watch" / "scratch")
        folder = Path(tempfile.mkdtemp(dir=scratch))
        done: list[str] = []
        try:
            copy = folder / path.name
            await asyncio.to_thread(copy.write_bytes, text.encode("utf-8"))
            for kind, template in config.commands:
                code, _, _ = await run_bounded(command_for(template, copy), "", path.parent,
                                                 config.test_timeout_seconds)
                if code is None:
                    self._skip(workspace, path, f"{kind}: timed out")
                    return None, done
                # A lint fixer exits non-zero when problems remain: its fixes still count.
                done.append(kind)
            data = await asyncio.to_thread(copy.read_bytes)
            try:
                return data.decode("utf-8"), done
            except UnicodeDecodeError:
                return None, done
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def _skip(self, workspace: Path, path: Path, why: str, **more: Any) -> None:
        self._watcher.log_decision(workspace, event="auto_apply", file=str(path),
                                   action="none", why=why, **more)

    def _report(self, workspace: Path, path: Path, uri: str, done: list[str], before: str,
                after: str) -> None:
        watcher = self._watcher
        proposal_id = f"p-{uuid.uuid4().hex[:10]}"
        labels = ", ".join(AUTO_APPLY_KINDS[k].label for k in done)
        diff = "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                            after.splitlines(keepends=True),
                                            f"a/{path.name}", f"b/{path.name}"))
        title = f"{path.name}: {labels} (applied without review, as granted)"
        item = watcher.inbox.new_item("auto_applied", workspace, title, diff[:MAX_DIFF_SHOWN],
                                proposal_ids=[proposal_id], uri=uri)
        watcher.inbox.set_status(proposal_id, "accepted")
        watcher.inbox.post(item)
        watcher.watch_event("autoApplied", workspace, title)
        watcher.log_decision(workspace, event="auto_apply", file=str(path), action="applied",
                    kinds=done, proposal=proposal_id)


def _refusal(workspace: Path, path: Path) -> str | None:
    """Why the granted commands must not touch ``path`` (a link is judged by where it leads:
    its content is copied before anything is written)."""
    real = real_path(path)
    if not path.is_relative_to(workspace) or not real.is_relative_to(real_path(workspace)):
        return "outside the workspace"
    return DEFAULT_RULES.protected_reason(path) or DEFAULT_RULES.protected_reason(real)
