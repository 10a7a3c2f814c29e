"""The suite never reads the developer's own settings: every user-level location points into a
temporary folder, for this process and for the servers it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_agent.permissions import settings as st
from tests.conftest import real_home_before_isolation


def test_user_level_paths_point_into_a_temporary_folder(isolated_user_dirs: Path):
    home = Path(os.environ["HOME"])
    assert home == isolated_user_dirs and str(home) != real_home_before_isolation()
    assert st.user_settings_path().is_relative_to(home)
    assert st.managed_settings_path().parent == home.parent
    assert Path.home() == home


def test_a_hostile_user_settings_file_elsewhere_changes_nothing(isolated_user_dirs: Path,
                                                                tmp_path: Path):
    """A deny-everything settings file in another HOME (the developer's) is not read by a
    subprocess started from the tests."""
    hostile = tmp_path / "developer-home" / ".config" / "lsp-agent"
    hostile.mkdir(parents=True)
    (hostile / "settings.json").write_text(json.dumps(
        {"permissions": {"deny": ["Read", "Bash"], "defaultMode": "plan"}}))
    code = ("from lsp_agent.permissions import settings as st; import pathlib; "
            "print(st.user_settings_path())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ)).stdout.strip()
    assert Path(out).is_relative_to(isolated_user_dirs)
    assert not Path(out).is_relative_to(tmp_path / "developer-home")


@pytest.fixture(scope="module")
def home_seen_by_a_module_scoped_fixture() -> str:
    # Module-scoped e2e servers are started here, before any function-scoped fixture.
    return os.environ["HOME"]


def test_module_scoped_fixtures_are_isolated_too(home_seen_by_a_module_scoped_fixture: str,
                                                 isolated_user_dirs_for_the_session: Path):
    assert home_seen_by_a_module_scoped_fixture == str(isolated_user_dirs_for_the_session)
    assert home_seen_by_a_module_scoped_fixture != real_home_before_isolation()
