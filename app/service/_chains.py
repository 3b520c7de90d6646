"""The served chains: built from registry templates at start-up, rebuilt by a background
refresh when the registry moves a label, and kept on disk so a cold start survives a
registry outage. Nothing here runs on the request path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable

from app.service._live_chain import LiveChain
from app.tracing import PromptRef
from chains.catalog import ChainSpec

__all__ = ["ChainRuntime", "ChainStartupError", "ServedChain", "TemplateCache"]

logger = logging.getLogger(__name__)

FetchTemplate = Callable[[ChainSpec], Awaitable[Mapping[str, Any]]]
BuildChain = Callable[[ChainSpec, Mapping[str, Any]], Runnable[Any, Any]]


class ChainStartupError(RuntimeError):
    """A chain could not be built at start-up; the message names it and says why."""


@dataclass(frozen=True)
class ServedChain:
    """One chain built from one template version."""

    spec: ChainSpec
    template: Mapping[str, Any]
    runnable: Runnable[Any, Any]

    @property
    def version(self) -> int:
        """The template version this chain was built from."""
        return int(self.template["version"])

    @functools.cached_property  # read by every request's config modifier
    def prompt(self) -> PromptRef:
        """What the tracer logs as this chain's prompt."""
        blueprint = self.template.get("prompt_template") or {}
        return PromptRef(
            name=str(self.template["prompt_name"]),
            version=self.version,
            template_id=self.template.get("id"),
            input_variable_names=tuple(blueprint.get("input_variables") or ()),
        )


class TemplateCache:
    """Last good template of each chain, one JSON file each, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        """Keep the files in `directory`."""
        self.directory = directory

    def _path(self, spec: ChainSpec) -> Path:
        return self.directory / f"{spec.name}.json"

    def load(self, spec: ChainSpec) -> Mapping[str, Any] | None:
        """The cached template of `spec`, or None."""
        try:
            data: Mapping[str, Any] = json.loads(self._path(spec).read_text())
        except (OSError, ValueError):
            return None
        return data

    def store(self, spec: ChainSpec, template: Mapping[str, Any]) -> None:
        """Write `template` as the last good one of `spec`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(spec)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(template))
        os.replace(temporary, path)


class ChainRuntime:
    """Owns the LiveChain of every catalog entry and keeps it current."""

    def __init__(
        self,
        specs: Sequence[ChainSpec],
        *,
        fetch: FetchTemplate,
        build: BuildChain,
        cache: TemplateCache,
    ) -> None:
        """Chains for `specs`, fetched with `fetch` and built with `build`."""
        self.specs = tuple(specs)
        self._fetch, self._build, self._cache = fetch, build, cache
        self._served: dict[str, ServedChain] = {}
        self._live: dict[str, LiveChain] = {}

    def live(self, name: str) -> LiveChain:
        """The runnable that the routes of chain `name` serve."""
        return self._live[name]

    def current(self, name: str) -> ServedChain:
        """The chain version `name` serves right now."""
        return self._served[name]

    async def load(self) -> None:
        """Build every chain, from the registry or, if it is down, from the disk cache."""
        for spec in self.specs:
            template = await self._fetch_or_cached(spec)
            try:
                runnable = self._build(spec, template)
            except Exception as error:
                raise ChainStartupError(
                    f"chain {spec.name!r}: template {template.get('prompt_name')!r} "
                    f"version {template.get('version')} cannot be served: {error}"
                ) from error
            self._install(spec, template, runnable)
            self._cache.store(spec, template)

    async def _fetch_or_cached(self, spec: ChainSpec) -> Mapping[str, Any]:
        try:
            template = await self._fetch(spec)
        except Exception as error:
            cached = self._cache.load(spec)
            if cached is None:
                raise ChainStartupError(
                    f"chain {spec.name!r}: the registry did not give template "
                    f"{spec.prompt_name!r} ({error}) and no copy is cached on disk"
                ) from error
            logger.warning(
                "registry unavailable, serving cached template",
                extra={"chain": spec.name, "version": cached.get("version")},
            )
            return cached
        return template

    def _install(
        self, spec: ChainSpec, template: Mapping[str, Any], runnable: Runnable[Any, Any]
    ) -> None:
        self._served[spec.name] = ServedChain(spec, template, runnable)
        if spec.name in self._live:
            self._live[spec.name].swap(runnable)
        else:
            self._live[spec.name] = LiveChain(bound=runnable)

    async def refresh_once(self) -> list[str]:
        """Re-fetch every template; rebuild the chains whose version moved. Never raises."""
        changed: list[str] = []
        for spec in self.specs:
            try:
                template = await self._fetch(spec)
            except Exception as error:
                logger.warning(
                    "template refresh failed", extra={"chain": spec.name, "error": str(error)}
                )
                continue
            current = self._served.get(spec.name)
            if current is not None and _same_version(current.template, template):
                continue
            try:
                runnable = self._build(spec, template)
            except Exception as error:
                logger.error(
                    "new template version cannot be served; keeping the last good one",
                    extra={
                        "chain": spec.name,
                        "version": template.get("version"),
                        "error": str(error),
                    },
                )
                continue
            self._install(spec, template, runnable)
            self._cache.store(spec, template)
            changed.append(spec.name)
            logger.info(
                "chain rebuilt", extra={"chain": spec.name, "version": template.get("version")}
            )
        return changed

    async def refresh_forever(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh_once()


def _same_version(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return (old.get("id"), old.get("version")) == (new.get("id"), new.get("version"))
