"""A rewind writes files back only inside the workspace, whatever replaced their folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.permissions.safe_write import WriteRefused
from lsp_agent.sessions.rewind import _write_bytes


def test_a_deleted_folder_is_made_again_inside_the_workspace(tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    _write_bytes(workspace / "gone" / "deep" / "a.txt", b"back\n", workspace, 0o640)
    assert (workspace / "gone" / "deep" / "a.txt").read_bytes() == b"back\n"
    assert (workspace / "gone" / "deep" / "a.txt").stat().st_mode & 0o777 == 0o640


def test_no_folder_is_made_through_a_link_that_leads_outside(tmp_path: Path):
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "pkg").symlink_to(outside, target_is_directory=True)
    with pytest.raises(WriteRefused, match="outside the workspace"):
        _write_bytes(workspace / "pkg" / "new" / "a.txt", b"x", workspace, None)
    assert list(outside.iterdir()) == []
    with pytest.raises(WriteRefused):
        _write_bytes(workspace / "pkg" / "b.txt", b"x", workspace, None)
    assert list(outside.iterdir()) == []
