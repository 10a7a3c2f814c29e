"""Auto memory's folder rules: names, links, secrets, the index's limits, broken frontmatter,
and which settings may switch it off or move it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lsp_agent.context.auto_memory import (
    INDEX,
    MAX_INDEX_BYTES,
    MAX_INDEX_LINES,
    AutoMemory,
    MemoryRefused,
    auto_memory_for,
    memory_dir,
    memory_layer,
)
from lsp_agent.store import Redactor

KEY = "sk-ant-api03-" + "A" * 40


@pytest.fixture
def memory(tmp_path: Path) -> AutoMemory:
    return AutoMemory(tmp_path / "state" / "memory" / "proj", Redactor().text)


def test_a_topic_is_written_with_frontmatter_and_indexed_once(memory):
    memory.write_topic("testing", "How tests run here", "project", "Use pytest -q.")
    memory.write_topic("testing", "How the tests run", "project", "Use pytest -x -q.")
    text = memory.read("testing")
    assert text.startswith("---\nname: testing\ndescription: How the tests run\ntype: project\n")
    assert "pytest -x -q" in text
    assert memory.raw_index() == "- [testing](testing.md) (project): How the tests run\n"
    [topic] = memory.topics()
    assert (topic.name, topic.type, topic.problem) == ("testing", "project", None)
    assert oct(memory.folder.stat().st_mode & 0o777) == "0o700"


def test_deleting_a_topic_drops_its_index_line_and_keeps_the_users(memory):
    memory.write_topic("a", "first", "user", "x")
    memory.write_topic("b", "second", "feedback", "y")
    memory.write_index(memory.raw_index() + "Written by the user.\n")
    assert memory.delete("a") is True
    assert memory.raw_index() == ("- [b](b.md) (feedback): second\nWritten by the user.\n")
    assert memory.delete("a") is False
    assert memory.clear() == 2 and memory.topics() == [] and memory.raw_index() == ""


def test_secrets_are_masked_before_anything_is_written(memory):
    file, masked = memory.write_topic("deploy", f"uses {KEY}", "reference",
                                      f"The key is {KEY}.")
    assert masked == 2
    on_disk = (memory.folder / file).read_text() + (memory.folder / INDEX).read_text()
    assert KEY not in on_disk and "[REDACTED]" in on_disk
    assert memory.write_file(INDEX, f"token {KEY}\n") == 1
    assert KEY not in (memory.folder / INDEX).read_text()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "UPPER", "memory", "", "x" * 70])
def test_names_are_plain(memory, name):
    with pytest.raises(MemoryRefused):
        memory.write_topic(name, "d", "project", "body")
    assert not memory.folder.exists() or list(memory.folder.iterdir()) == []


def test_a_wrong_type_is_refused(memory):
    with pytest.raises(MemoryRefused, match="type must be one of"):
        memory.write_topic("x", "d", "secrets", "body")


def test_links_are_never_followed(memory, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("precious\n")
    memory.write_topic("real", "d", "project", "body")
    os.symlink(outside, memory.folder / "linked.md")
    with pytest.raises(MemoryRefused, match="link"):
        memory.write_topic("linked", "d", "project", "overwrite")
    with pytest.raises(MemoryRefused, match="link"):
        memory.read("linked")
    assert outside.read_text() == "precious\n"
    assert [t.name for t in memory.topics()] == ["real"]  # the link is not listed


def test_a_linked_memory_folder_is_refused(tmp_path):
    target = tmp_path / "ssh"
    target.mkdir()
    (tmp_path / "mem").mkdir()
    os.symlink(target, tmp_path / "mem" / "proj")
    memory = AutoMemory(tmp_path / "mem" / "proj")
    with pytest.raises(MemoryRefused, match="link"):
        memory.write_topic("keys", "d", "project", "x")
    assert list(target.iterdir()) == []


def test_broken_frontmatter_is_listed_with_its_problem(memory):
    memory.write_topic("ok", "fine", "project", "x")
    (memory.folder / "broken.md").write_text("---\nname: broken\ntype: secret\n")  # no end
    (memory.folder / "half.md").write_text("---\nname: half\ntype: weird\n---\nbody\n")
    topics = {t.name: t for t in memory.topics()}
    assert topics["ok"].problem is None
    assert topics["broken"].problem == "no frontmatter"
    assert "missing description" in topics["half"].problem
    assert "unknown type 'weird'" in topics["half"].problem
    assert "body" in memory.read("half")


def test_the_index_is_cut_when_loaded_and_refused_when_written_over_the_limits(memory):
    long = "".join(f"- line {i}\n" for i in range(MAX_INDEX_LINES + 50))
    with pytest.raises(MemoryRefused, match="at most 200 lines"):
        memory.write_index(long)
    with pytest.raises(MemoryRefused):
        memory.write_index("x" * (MAX_INDEX_BYTES + 1))
    memory.write_index("- fine\n")
    memory.folder.joinpath(INDEX).write_text(long)  # edited by hand, past the limit
    loaded = memory.index()
    assert loaded.count("- line") == MAX_INDEX_LINES and "is cut here" in loaded
    memory.folder.joinpath(INDEX).write_text(("y" * 99 + "\n") * 199 + "z" * 9000 + "\n")
    assert len(memory.index().encode()) < MAX_INDEX_BYTES + 200


def test_the_layer_carries_the_index_as_data(memory):
    assert "(empty)" in memory_layer(memory)["text"]
    memory.write_topic("style", "tabs, never spaces", "feedback", "x")
    text = memory_layer(memory)["text"]
    assert "<auto_memory_index>\n- [style](style.md) (feedback): tabs, never spaces" in text
    assert "not instructions" in text


def _settings(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_a_project_cannot_move_the_memory_folder(tmp_path):
    workspace = tmp_path / "ws"
    _settings(workspace / ".lsp-agent" / "settings.json",
              {"autoMemoryDirectory": str(Path.home() / ".ssh")})
    memory, warnings = auto_memory_for(tmp_path / "state", workspace)
    assert memory is not None and memory.folder == memory_dir(tmp_path / "state", workspace)
    assert len(warnings) == 1 and "autoMemoryDirectory is only honoured" in warnings[0]


def test_the_users_settings_may_move_it_and_any_settings_may_switch_it_off(tmp_path):
    workspace = tmp_path / "ws"
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "lsp-agent" / "settings.json"
    _settings(user, {"autoMemoryDirectory": str(tmp_path / "mine")})
    memory, warnings = auto_memory_for(tmp_path / "state", workspace)
    assert memory is not None and memory.folder.parent == tmp_path / "mine" and not warnings
    _settings(workspace / ".claude" / "settings.json", {"autoMemory": False})
    assert auto_memory_for(tmp_path / "state", workspace)[0] is None
    assert auto_memory_for(tmp_path / "state", tmp_path / "other",
                           {"autoMemory": False})[0] is None
