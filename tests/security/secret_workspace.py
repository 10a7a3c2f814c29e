"""A workspace full of secrets, for the secret-reading tests.

Every secret file holds MARKER; no other file, commit message or name does. So "MARKER is not
in the output" means "no secret reached the output".

* tracked now: ``config/credentials.json``, ``credentials.py`` (imported by ``main.py``);
* only in history: ``deploy.key`` (committed, then deleted);
* staged, never committed: ``staged.pem``;
* untracked, git-ignored: ``.env``, ``keys/id_ed25519``; untracked: ``.npmrc``;
* a link ``docs/env-link`` to ``.env``; ``~/.ssh/id_rsa`` in the (temporary) home folder;
* no secrets in ``src/``, ``README.md``, ``empty/``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MARKER = "MARKER-7f3a9c"

TRACKED = {
    "README.md": "demo project\n",
    "src/app.py": "import os  # TODO: tidy up\n\nprint(os.getcwd())\n",
    "main.py": "from credentials import API_KEY\n\ndef token():\n    return API_KEY\n",
    "credentials.py": f'API_KEY = "{MARKER}"\n',
    "config/credentials.json": f'{{"token": "{MARKER}"}}\n',
    "deploy.key": f"KEY={MARKER}\n",
}
UNTRACKED = {
    ".env": f"DB_PASSWORD={MARKER}\n",
    "keys/id_ed25519": f"-----BEGIN OPENSSH PRIVATE KEY----- {MARKER}\n",
    ".npmrc": f"//registry.npmjs.org/:_authToken={MARKER}\n",
    "notes.txt": ".env\n",
    "empty/.keep": "",
}


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                   timeout=60)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build(root: Path, home: Path) -> Path:
    """Create the workspace at ``root`` (and the home folder's SSH key); returns ``root``."""
    root.mkdir(parents=True)
    write(root, TRACKED)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    _git(root, "rm", "-q", "deploy.key")
    write(root, {".gitignore": ".env\nkeys/\n"})
    _git(root, "add", ".gitignore")
    _git(root, "commit", "-q", "-m", "second")
    write(root, {"staged.pem": f"{MARKER}\n"})
    _git(root, "add", "staged.pem")
    write(root, UNTRACKED)
    (root / "docs").mkdir()
    (root / "docs" / "env-link").symlink_to("../.env")
    write(home, {".ssh/id_rsa": f"{MARKER}\n"})
    return root
