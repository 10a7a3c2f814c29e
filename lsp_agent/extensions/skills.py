"""Skills: folders with a ``SKILL.md`` (frontmatter + instructions) loaded on demand.

Only each skill's name and description reach the context (in the ``Skill`` tool's
description); the body arrives as the tool's result when the model invokes the skill (or the
user types ``/name``), with the folder's path so the skill's other files can be read.
``allowed-tools`` pre-approves those tools while the skill runs (until the turn ends); it
restricts nothing.

Where skills are looked up, first found wins for a name (the user's own skills are not
shadowed by a cloned repository's): user (``$XDG_CONFIG_HOME/lsp-agent/skills``,
``~/.claude/skills``), project (``.lsp-agent/skills``, ``.claude/skills``, nested folders too),
then plugins (named ``plugin:skill``, so they never collide).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from lsp_agent.extensions.frontmatter import FrontmatterError, split, tool_list
from lsp_agent.tools.base import Tool, ToolContext, ToolError

SKILL_FILE = "SKILL.md"
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_SKILL_BYTES = 500_000
MAX_DEPTH = 4  # nested skill folders under a skills root
MAX_SKILLS = 500
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass
class Skill:
    name: str
    description: str
    folder: Path
    source: str  # user, project, plugin:<name>
    allowed_tools: list[str] = field(default_factory=list)
    argument_hint: str | None = None
    model: str | None = None
    model_invocable: bool = True
    user_invocable: bool = True

    @property
    def file(self) -> Path:
        return self.folder / SKILL_FILE

    def body(self) -> str:
        _, body = split(self.file.read_text(encoding="utf-8", errors="replace"))
        return body


def user_dirs(kind: str) -> list[Path]:
    """``kind`` (skills, commands, plugins) folders at user level: ours, then Claude Code's."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    home = Path(os.environ.get("HOME") or Path.home())
    return [Path(config) / "lsp-agent" / kind, home / ".claude" / kind]


def project_dirs(workspace: Path, kind: str) -> list[Path]:
    return [workspace / ".lsp-agent" / kind, workspace / ".claude" / kind]


def skill_roots(workspace: Path) -> list[tuple[str, Path]]:
    return [("user", d) for d in user_dirs("skills")] + \
        [("project", d) for d in project_dirs(workspace, "skills")]


def load_skills(roots: list[tuple[str, Path]], warnings: list[str],
                prefix: str = "") -> dict[str, Skill]:
    """Skills found under ``roots`` (in precedence order); problems become warnings."""
    skills: dict[str, Skill] = {}
    for source, root in roots:
        for folder in _skill_folders(root, warnings):
            skill = read_skill(folder, source, warnings, prefix)
            if skill is None:
                continue
            if skill.name in skills:
                warnings.append(f"{skill.file}: a skill named {skill.name!r} is already "
                                f"defined in {skills[skill.name].file}, which takes precedence")
                continue
            if len(skills) >= MAX_SKILLS:
                warnings.append(f"{root}: more than {MAX_SKILLS} skills; the rest are ignored")
                return skills
            skills[skill.name] = skill
    return skills


def _skill_folders(root: Path, warnings: list[str]) -> list[Path]:
    if not root.is_dir():
        return []
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir()
                              and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if (child / SKILL_FILE).is_file():
                found.append(child)
            elif depth < MAX_DEPTH:
                before = len(found)
                walk(child, depth + 1)
                if len(found) == before and depth == 0:
                    warnings.append(f"{child}: no {SKILL_FILE} in this skill folder; ignored")

    walk(root, 0)
    return found


def read_skill(folder: Path, source: str, warnings: list[str], prefix: str = "") -> Skill | None:
    path = folder / SKILL_FILE
    try:
        if path.stat().st_size > MAX_SKILL_BYTES:
            warnings.append(f"{path}: larger than {MAX_SKILL_BYTES} bytes; ignored")
            return None
        meta, body = split(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, FrontmatterError) as exc:
        warnings.append(f"{path}: {exc}; this skill is not loaded")
        return None
    name = str(meta.get("name") or folder.name).strip()
    if len(name) > MAX_NAME or not _NAME.match(name):
        warnings.append(f"{path}: invalid skill name {name!r} (letters, digits, '-', '_', "
                        f"at most {MAX_NAME}); this skill is not loaded")
        return None
    description = str(meta.get("description") or _first_paragraph(body)).strip()
    if len(description) > MAX_DESCRIPTION:
        warnings.append(f"{path}: description longer than {MAX_DESCRIPTION} characters; cut")
        description = description[:MAX_DESCRIPTION]
    return Skill(
        name=f"{prefix}{name}", description=" ".join(description.split()), folder=folder,
        source=source, allowed_tools=tool_list(meta.get("allowed-tools")),
        argument_hint=_optional(meta.get("argument-hint")), model=_optional(meta.get("model")),
        model_invocable=meta.get("disable-model-invocation") is not True,
        user_invocable=meta.get("user-invocable") is not False)


def _optional(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _first_paragraph(body: str) -> str:
    for block in body.strip().split("\n\n"):
        text = block.strip().lstrip("#").strip()
        if text:
            return text[:MAX_DESCRIPTION]
    return ""


def render_skill(skill: Skill, args: str | None) -> str:
    """What invoking a skill gives: its folder and its instructions (``$ARGUMENTS`` filled)."""
    body = skill.body()
    if "$ARGUMENTS" in body:
        body = body.replace("$ARGUMENTS", args or "")
    elif args:
        body += f"\n\nARGUMENTS: {args}"
    return (f"Skill {skill.name!r} loaded. Base directory for this skill: {skill.folder}\n"
            f"(Read its other files from there when the instructions mention them.)\n\n{body}")


class SkillInput(BaseModel):
    skill: str = Field(min_length=1, description="The skill's name, as listed.")
    args: str | None = Field(default=None, description="Arguments for the skill, if any.")


class SkillTool(Tool):
    """Loads a skill's instructions; one instance per session (it lists that session's
    skills and grants their ``allowed-tools`` for the rest of the turn)."""

    name = "Skill"
    description = ""
    input_model = SkillInput
    access = "session"
    max_result_chars = 60_000

    def __init__(self, skills: dict[str, Skill],
                 grant: Callable[[list[str], str, bool], None],
                 use_model: Callable[[str | None], None] = lambda _m: None):
        self.skills = {n: s for n, s in skills.items() if s.model_invocable}
        self._grant = grant
        self._use_model = use_model  # the skill's ``model`` for the rest of the turn
        listing = "\n".join(f"- {s.name}: {s.description}" for s in self.skills.values())
        self.description = (  # type: ignore[misc]
            "Load a skill: instructions for a kind of task, with files it may refer to. When "
            "a task matches a skill's description, invoke it first and follow what it says.\n"
            f"Available skills:\n{listing}")

    async def call(self, args: SkillInput, ctx: ToolContext) -> str:
        skill = self.skills.get(args.skill.strip().lstrip("/"))
        if skill is None:
            raise ToolError(f"No skill named {args.skill!r}. Available: "
                            + (", ".join(self.skills) or "none"))
        if ctx.file_rules.is_secret(skill.file):
            raise ToolError(f"{skill.file} is a secret file; it is not loaded")
        try:
            text = await asyncio.to_thread(render_skill, skill, args.args)
        except OSError as exc:
            raise ToolError(f"Cannot read {skill.file}: {exc}") from None
        if skill.allowed_tools:
            self._grant(skill.allowed_tools, skill.source, False)  # the model invoked it
        self._use_model(skill.model)
        return text
