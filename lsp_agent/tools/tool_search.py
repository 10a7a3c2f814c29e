"""Deferred tools and ToolSearch: rarely used tools stay out of every request until needed.

A deferred tool is listed by name (with its first sentence) in ToolSearch's description only.
When the model searches, the matching tools join the session's pool for the rest of the
session, so their schemas appear in the ``tools`` of the next request. The pool stays sorted by
name, and each schema is computed once, so requests stay byte-stable between loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from lsp_agent.tools.base import Tool, ToolContext, ToolError, ToolPool


class ToolSearchInput(BaseModel):
    query: str = Field(min_length=1, description=(
        'Keywords describing the capability, or "select:Name1,Name2" to load tools by name.'))
    max_results: int = Field(default=3, ge=1, le=10, description="How many tools to load.")


class ToolSearch(Tool):
    name = "ToolSearch"
    description = (
        "Load more tools. The tools below exist but are not loaded; search for the ones you "
        "need and they become callable for the rest of the session.")
    input_model = ToolSearchInput
    access = "session"
    max_result_chars = 8_000

    async def call(self, args: ToolSearchInput, ctx: ToolContext) -> str:
        pool = ctx.tools
        if pool is None:
            raise ToolError("No deferred tools are available in this session.")
        found = pool.search(args.query, args.max_results)
        if not found:
            raise ToolError(f"No deferred tool matches {args.query!r}. Deferred tools: "
                            + (", ".join(pool.deferred_names()) or "none"))
        newly = pool.load(t.name for t in found)
        lines = [f"- {t.name}: {t.description}" for t in found]
        already = [t.name for t in found if t.name not in newly]
        note = f" ({', '.join(already)} already loaded)" if already else ""
        return (f"Loaded {len(found)} tool(s){note}; call them directly from now on:\n"
                + "\n".join(lines))


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text.strip(), re.DOTALL)
    return " ".join((match.group(1) if match else text.strip()).split())


class SessionTools(ToolPool):
    """One session's view of a shared pool: deferred tools are offered after ToolSearch
    loaded them. ``get`` finds every tool, so a call by name works even before loading."""

    def __init__(self, pool: ToolPool, deferred: Iterable[str]):
        # Share the pool's tools and precomputed schemas (no per-session schema work).
        self._base = (dict(pool._tools), list(pool._schemas), frozenset(deferred))
        self._groups: dict[str, tuple[list[Tool], bool]] = {}  # extension tools (MCP)
        self.loaded: set[str] = set()
        self._build()

    def _build(self) -> None:
        tools, schemas, deferred = self._base
        self._tools, self._schemas = dict(tools), list(schemas)
        extra_deferred = set()
        for group_tools, defer in self._groups.values():
            for tool in group_tools:
                if tool.name in self._tools:
                    continue  # a built-in name is never replaced
                self._tools[tool.name] = tool
                self._schemas.append(tool.api_schema())
                if defer:
                    extra_deferred.add(tool.name)
        self.deferred = (deferred | extra_deferred) & set(self._tools)
        if self.deferred and ToolSearch.name not in self._tools:
            search = ToolSearch()
            self._tools[search.name] = search
            self._schemas.append(search.api_schema())
        self._tools = dict(sorted(self._tools.items()))
        self._schemas = sorted(self._schemas, key=lambda s: s["name"])
        self.loaded &= set(self._tools)
        self._active = self._active_schemas()

    def set_group(self, group: str, tools: list[Tool], defer: bool) -> None:
        """Replace the tools an extension provides (an MCP server's, as it connects or
        goes); ``defer``: names only, behind ToolSearch, so that the fixed request overhead
        does not grow with them."""
        if tools:
            self._groups[group] = (list(tools), defer)
        else:
            self._groups.pop(group, None)
        self._build()

    def api_schemas(self) -> list[dict[str, Any]]:
        return self._active

    def deferred_names(self) -> list[str]:
        return sorted(self.deferred - self.loaded)

    def search(self, query: str, limit: int) -> list[Tool]:
        """Deferred tools matching the query, best first (loaded ones count as matches too)."""
        query = query.strip()
        if query.lower().startswith("select:"):
            wanted = [n.strip().lower() for n in query[7:].split(",") if n.strip()]
            by_name = {n.lower(): self._tools[n] for n in self.deferred}
            return [by_name[n] for n in wanted if n in by_name][:limit]
        words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 1]
        scored = []
        for name in sorted(self.deferred):
            tool = self._tools[name]
            text = tool.description.lower()
            score = sum(3 * (w in name.lower()) + text.count(w) for w in words)
            if score:
                scored.append((-score, name, tool))
        return [tool for _, _, tool in sorted(scored)[:limit]]

    def load(self, names: Iterable[str]) -> list[str]:
        """Add deferred tools to the pool; returns the names that were not loaded before."""
        newly = [n for n in names if n in self.deferred and n not in self.loaded]
        if newly:
            self.loaded.update(newly)
            self._active = self._active_schemas()
        return newly

    def _active_schemas(self) -> list[dict[str, Any]]:
        waiting = self.deferred_names()
        active = []
        for schema in self._schemas:
            name = schema["name"]
            if name in self.deferred and name not in self.loaded:
                continue
            if name == ToolSearch.name:
                if not waiting:
                    continue
                listing = _listing(self._tools, waiting)
                schema = {**schema, "description": f"{schema['description']} {listing}"}
            active.append(schema)
        return active


GROUP_LISTED_AT = 5  # more deferred tools than this in one group: listed by name only


def _listing(tools: dict[str, Tool], waiting: list[str]) -> str:
    """Deferred tools for ToolSearch's description: each with its first sentence, but a big
    group (one MCP server's tools) by names only, so the overhead stays small."""
    groups: dict[str, list[str]] = {}
    for name in waiting:
        group = getattr(tools[name], "search_group", None)
        groups.setdefault(group or name, []).append(name)
    parts = []
    for group, names in groups.items():
        if len(names) > GROUP_LISTED_AT:
            short = [n.removeprefix(group + "__") for n in names]
            parts.append(f"{group}__* ({len(names)} tools: {', '.join(short)})")
        else:
            parts += [f"{n}: {_first_sentence(tools[n].description)}" for n in names]
    return "; ".join(parts)
