"""Whether a settings file is committed to the workspace's git repository.

A ``settings.local.json`` is the user's own file: it holds their approvals (MCP servers,
project hooks) and is trusted like user settings. A repository that *commits* one would
approve itself for everyone who clones it, so a committed local file is read as project
settings instead (settings.py). Asked of git (``ls-files --error-unmatch``), bounded; when
git cannot answer (not a repository, no git, too slow) the file counts as not committed: a
folder that is not a clone has nobody else's files in it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

GIT_TIMEOUT_S = 5.0
# The answer for a file, kept while the file and the index look unchanged, at most this long:
# settings are loaded several times per session, git need not be asked each time.
CACHE_S = 10.0
_cache: dict[Path, tuple[tuple[int, int, int], float, bool]] = {}


def is_committed(path: Path) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (stat.st_mtime_ns, stat.st_size, _index_mtime(path.parent))
    cached = _cache.get(path)
    now = time.monotonic()
    if cached is not None and cached[0] == key and now - cached[1] < CACHE_S:
        return cached[2]
    answer = _ask_git(path)
    _cache[path] = (key, now, answer)
    return answer


def _ask_git(path: Path) -> bool:
    from lsp_agent.procs.lifetime import child_options

    argv = ["git", "-c", "core.fsmonitor=false", "ls-files", "--error-unmatch", "--",
            path.name]
    options = child_options()  # the cleaned environment, death with the server
    options["env"] = {**options["env"], "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0",
                      "LC_ALL": "C"}
    try:
        done = subprocess.run(argv, cwd=path.parent, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=GIT_TIMEOUT_S, check=False, **options)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _index_mtime(folder: Path) -> int:
    """The mtime of the nearest ``.git/index`` above ``folder`` (0 if none): a commit or an
    untrack changes it, so the cached answer is asked again."""
    for parent in (folder, *folder.parents):
        index = parent / ".git" / "index"
        try:
            return index.stat().st_mtime_ns
        except OSError:
            if (parent / ".git").exists():
                return 0  # a worktree or a fresh repository: no index of its own here
    return 0
