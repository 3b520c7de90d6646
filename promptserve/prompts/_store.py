"""Registry prompts kept current: fetched at start-up, refreshed in the background when the
registry moves a label, and kept on disk so a cold start survives a registry outage.

Nothing here runs on the request path: a refresh builds the new version first, then puts
it in place for the prompts that ask for the same name and label or version (one dict
assignment); a run already started keeps the versions its `PromptPins` hold.

A label may be split across versions (docs/RELEASES.md, "Serving"): start-up and each
refresh also read the label's split (`fetch_split`, the embedded backend's
`GET /rest/releases/{t}/{l}`) unless the chain declared it, build every version of the split
ahead (fetched by number), and only then swap the new `LiveRelease` in. A run's pins choose
its arm (`pins`); with no label split, that is one check of an empty dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptserve.prompts._arms import RELEASE_KEY, RELEASE_METADATA, LiveRelease, ServedArm
from promptserve.prompts._registry_prompt import (
    Caller,
    Pin,
    PromptPins,
    RegistryPrompt,
    Selector,
    schema_source,
)
from promptserve.prompts._split import Split
from promptserve.prompts._version import ModelFactory, PromptVersion, build_version
from promptserve.prompts.errors import PromptNotLoadedError

if TYPE_CHECKING:
    from promptlayer import AsyncPromptLayer, PromptLayer
    from promptlayer.types.prompt_template import GetPromptTemplate

__all__ = [
    "FetchSplit",
    "FetchTemplate",
    "PromptStartupError",
    "PromptStore",
    "TemplateCache",
    "afetch_template",
    "fetch_template",
    "load_prompt",
    "registry_params",
]

logger = logging.getLogger(__name__)

FetchTemplate = Callable[[RegistryPrompt], Awaitable[Mapping[str, Any]]]
FetchSplit = Callable[[RegistryPrompt], Awaitable[Split | None]]


class PromptStartupError(RuntimeError):
    """A prompt could not be loaded at start-up; the message names it and says why."""


def registry_params(prompt: RegistryPrompt) -> GetPromptTemplate:
    """The GET parameters for a prompt's raw template: its label or version, unrendered."""
    params: GetPromptTemplate = {"skip_input_variable_rendering": True}
    if prompt.version is not None:
        params["version"] = prompt.version
    elif prompt.label is not None:
        params["label"] = prompt.label
    return params


def fetch_template(client: PromptLayer, prompt: RegistryPrompt) -> dict[str, Any]:
    """The registry's raw template for `prompt`, through the sync SDK client (cache off)."""
    _refuse_cache(client)
    return dict(client.templates.get(prompt.prompt_name, registry_params(prompt)))


async def afetch_template(client: AsyncPromptLayer, prompt: RegistryPrompt) -> dict[str, Any]:
    """The registry's raw template for `prompt`, through the async SDK client (cache off)."""
    _refuse_cache(client)
    return dict(await client.templates.get(prompt.prompt_name, registry_params(prompt)))


def _refuse_cache(client: PromptLayer | AsyncPromptLayer) -> None:
    # With cache_ttl_seconds the SDK renders cached templates itself and can blank every
    # variable (docs/PROMPTLAYER_API.md §1.1, "Trap"): such a template would build a wrong
    # prompt silently.
    if getattr(client.templates, "_cache", None) is not None:
        raise ValueError("fetch templates with a PromptLayer client without cache_ttl_seconds")


def load_prompt(
    prompt: RegistryPrompt,
    *,
    client: PromptLayer | None = None,
    build_model: ModelFactory | None = None,
) -> PromptVersion:
    """Fetch `prompt`'s version now through the sync SDK, build it and `install` it: what a
    script gets at a prompt's first use. Defaults come from `ClientSettings()`: PromptLayer
    from PROMPTLAYER_API_KEY / PROMPTLAYER_BASE_URL, the model from OPENAI_API_KEY /
    OPENAI_BASE_URL."""
    from promptlayer import PromptLayer

    from promptserve.prompts.model import build_chat_model
    from promptserve.settings import ClientSettings

    settings = ClientSettings()
    if client is None:
        if settings.promptlayer_api_key is None:
            raise PromptNotLoadedError(prompt.prompt_name)
        client = PromptLayer(api_key=settings.promptlayer_api_key.get_secret_value(),
                             base_url=settings.promptlayer_base_url)
    if build_model is None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None

        def build_model(name: str, model: Mapping[str, Any]) -> Any:
            return build_chat_model(model, api_key=key, base_url=settings.openai_base_url,
                                    template_name=name)

    version = build_version(fetch_template(client, prompt), build_model)
    prompt.install(version)
    return version


class TemplateCache:
    """Last good template of each prompt selector, one JSON file each, replaced atomically."""

    def __init__(self, directory: Path) -> None:
        """Keep the files in `directory`."""
        self.directory = directory

    def _path(self, prompt: RegistryPrompt) -> Path:
        which = f"label-{prompt.label}" if prompt.label else f"version-{prompt.version}"
        readable = re.sub(r"[^\w.-]", "_", f"{prompt.prompt_name}@{which}")[:80]
        # Names that read alike ("a/b", "a b") still get files of their own.
        exact = hashlib.sha256(repr(prompt.selector).encode()).hexdigest()[:16]
        return self.directory / f"{readable}.{exact}.json"

    def load(self, prompt: RegistryPrompt) -> Mapping[str, Any] | None:
        """The cached template of `prompt`, or None."""
        try:
            data: Mapping[str, Any] = json.loads(self._path(prompt).read_text())
        except (OSError, ValueError):
            return None
        return data

    def store(self, prompt: RegistryPrompt, template: Mapping[str, Any]) -> None:
        """Write `template` as the last good one of `prompt`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(prompt)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(template))
        os.replace(temporary, path)


class PromptStore:
    """Owns the versions of a set of registry prompts and keeps them current."""

    def __init__(
        self,
        prompts: Iterable[RegistryPrompt],
        *,
        fetch: FetchTemplate,
        build_model: ModelFactory,
        cache: TemplateCache | None = None,
        fetch_split: FetchSplit | None = None,
    ) -> None:
        """Prompts fetched with `fetch`, their models built with `build_model`; the splits
        of their labels read with `fetch_split` (none: only splits chains declare)."""
        self._prompts: dict[Selector, RegistryPrompt] = {}
        self._versions: dict[Selector, PromptVersion] = {}
        self._fetch, self._build_model, self._cache = fetch, build_model, cache
        self._fetch_split = fetch_split
        # Replaced whole on every change, so a run's pins read one consistent state.
        self._releases: dict[Selector, LiveRelease] = {}
        self._declared: dict[Selector, Split] = {}
        # The release each selector last failed to build: said once at error level.
        self._unbuilt: dict[Selector, str] = {}
        for prompt in prompts:
            self._prompts.setdefault(prompt.selector, prompt)
            if prompt.split is not None:
                known = self._declared.setdefault(prompt.selector, prompt.split)
                if known != prompt.split:
                    raise ValueError(
                        f"prompt {prompt.prompt_name!r} label {prompt.label!r} is declared "
                        "with two different splits; declare it once (one RegistryPrompt)")

    @property
    def prompts(self) -> list[RegistryPrompt]:
        """Every prompt kept, one per selector (the first given)."""
        return list(self._prompts.values())

    def current_for(self, prompt: RegistryPrompt) -> PromptVersion:
        """The version of `prompt` (of any prompt with its selector) now."""
        version = self._versions.get(prompt.selector)
        if version is None:
            raise PromptNotLoadedError(prompt.prompt_name)
        return version

    def current(self, name: str) -> list[PromptVersion]:
        """The versions served now for the prompts named `name` (one per selector)."""
        return [v for s, v in self._versions.items() if s[0] == name]

    def release_of(self, prompt: RegistryPrompt) -> LiveRelease | None:
        """The split `prompt`'s label is served with now, if it is split."""
        return self._releases.get(prompt.selector)

    def pin_for(self, prompt: RegistryPrompt, caller: Caller | None) -> Pin:
        """The version `prompt` gets in a run of `caller`: its split's arm, else current."""
        release = self._releases.get(prompt.selector)
        if release is None:
            return self.current_for(prompt), None
        return release.choose(*_caller_of(caller))

    def pins(self, prompts: Iterable[RegistryPrompt],
             caller: Caller | None = None) -> PromptPins:
        """A new run's pins: the current version of each of `prompts`; on a split label,
        the version of the arm `caller` (the run's `configurable`) is routed to."""
        versions = self._versions
        pinned = {p.selector: versions[p.selector] for p in prompts if p.selector in versions}
        releases = self._releases
        if not releases:
            return PromptPins(self, pinned)
        key, metadata = _caller_of(caller)
        arms: dict[Selector, ServedArm] = {}
        for selector in pinned:
            release = releases.get(selector)
            if release is not None:
                pinned[selector], arms[selector] = release.choose(key, metadata)
        return PromptPins(self, pinned, arms=arms, caller=caller)

    @contextlib.contextmanager
    def typing(self) -> Iterator[None]:
        """Type the prompts with this store's versions while the block runs (add_routes)."""
        token = schema_source.set(self)
        try:
            yield
        finally:
            schema_source.reset(token)

    async def load(self) -> None:
        """A version of every prompt, from the registry or, if it is down, from the disk."""
        for selector, prompt in self._prompts.items():
            template = await self._fetch_or_cached(prompt)
            try:
                version = build_version(template, self._build_model)
            except Exception as error:
                raise PromptStartupError(
                    f"prompt {prompt.prompt_name!r} version {template.get('version')} cannot "
                    f"be served: {error}"
                ) from error
            self._install(selector, prompt, version)
        await self.refresh_releases(startup=True)

    async def _fetch_or_cached(self, prompt: RegistryPrompt) -> Mapping[str, Any]:
        try:
            return await self._fetch(prompt)
        except Exception as error:
            cached = self._cache.load(prompt) if self._cache is not None else None
            if cached is None:
                raise PromptStartupError(
                    f"the registry did not give prompt {prompt.prompt_name!r} "
                    f"({_which(prompt)}): {error}; and no copy is cached on disk"
                ) from error
            logger.warning(
                "registry unavailable, serving cached template",
                extra={"prompt": prompt.prompt_name, "version": cached.get("version")},
            )
            return cached

    def _install(self, selector: Selector, prompt: RegistryPrompt,
                 version: PromptVersion) -> None:
        self._versions[selector] = version
        if self._cache is not None:
            self._cache.store(prompt, version.template)

    async def refresh_once(self) -> list[str]:
        """Re-read the splits, then re-fetch every prompt not on a split label; rebuild those
        whose version moved. Never raises."""
        # Splits first: the registry resolves a split label at random per fetch, so a split
        # label's version is its control's (`_follow_controls`), and a label whose split just
        # ended is fetched plain in this very refresh.
        changed = await self.refresh_releases()
        for selector, prompt in self._prompts.items():
            if selector in self._releases:
                continue
            try:
                template = await self._fetch(prompt)
            except Exception as error:
                logger.warning(
                    "template refresh failed",
                    extra={"prompt": prompt.prompt_name, "error": str(error)},
                )
                continue
            current = self._versions.get(selector)
            if current is not None and current.key == (template.get("id"),
                                                       template.get("version")):
                continue
            try:
                version = build_version(template, self._build_model)
            except Exception as error:
                logger.error(
                    "new template version cannot be served; keeping the last good one",
                    extra={"prompt": prompt.prompt_name, "version": template.get("version"),
                           "error": str(error)},
                )
                continue
            self._install(selector, prompt, version)
            if prompt.prompt_name not in changed:
                changed.append(prompt.prompt_name)
            logger.info("prompt rebuilt",
                        extra={"prompt": prompt.prompt_name, "version": version.number})
        return changed

    async def refresh_releases(self, *, startup: bool = False) -> list[str]:
        """Read each label's split and put the changed ones in place, their versions built
        first; a split that cannot be read or built keeps what was served. Never raises."""
        releases = dict(self._releases)
        changed: list[str] = []
        for selector, prompt in self._prompts.items():
            if prompt.label is None:
                continue
            try:
                split = await self._split_of(selector, prompt)
            except Exception as error:
                logger.warning("split refresh failed",
                               extra={"prompt": prompt.prompt_name, "label": prompt.label,
                                      "error": str(error)})
                continue
            current = releases.get(selector)
            if split is None:
                if current is not None:
                    del releases[selector]
                    changed.append(prompt.prompt_name)
                    logger.info("split ended", extra={"prompt": prompt.prompt_name,
                                                      "label": prompt.label})
                continue
            if current is not None and current.split == split:
                continue
            try:
                built = await self._build_split(selector, split, current, startup=startup)
            except Exception as error:
                again = self._unbuilt.get(selector) == split.release_id
                self._unbuilt[selector] = split.release_id
                logger.log(logging.DEBUG if again else logging.ERROR,
                           "split cannot be served; keeping what is served",
                           extra={"prompt": prompt.prompt_name, "label": prompt.label,
                                  "release": split.release_id, "error": str(error)})
                continue
            self._unbuilt.pop(selector, None)
            releases[selector] = built
            changed.append(prompt.prompt_name)
            logger.info("split served", extra={
                "prompt": prompt.prompt_name, "label": prompt.label,
                "release": split.release_id,
                "arms": {f"v{a.version}": a.weight for a in split.arms}})
        if changed:
            self._releases = releases
        self._follow_controls()
        return changed

    def _follow_controls(self) -> None:
        """A split label's own version is its control's, as for anything that does not
        know splits (its input schema, the disk copy a cold start serves)."""
        for selector, release in self._releases.items():
            control = release.versions[release.split.control]
            if self._versions.get(selector) is not control:
                self._install(selector, self._prompts[selector], control)

    async def _split_of(self, selector: Selector, prompt: RegistryPrompt) -> Split | None:
        declared = self._declared.get(selector)
        if declared is not None:
            return declared
        if self._fetch_split is None:
            return None
        return await self._fetch_split(prompt)

    async def _build_split(self, selector: Selector, split: Split,
                           current: LiveRelease | None, *, startup: bool) -> LiveRelease:
        """`split` with every version built: reused from what is served where it can be."""
        known: dict[int, PromptVersion] = dict(current.versions) if current else {}
        label_version = self._versions.get(selector)
        if label_version is not None:
            known.setdefault(label_version.number, label_version)
        versions: dict[int, PromptVersion] = {}
        for number in sorted(split.versions):
            version = known.get(number)
            if version is None:
                arm = RegistryPrompt(split.template, version=number)
                # A declared split may start from disk when the registry is down.
                template = (await self._fetch_or_cached(arm) if startup
                            else await self._fetch(arm))
                if int(template.get("version") or 0) != number:
                    raise ValueError(f"the registry answered version {template.get('version')}"
                                     f" for version {number}")
                version = build_version(template, self._build_model)
                if self._cache is not None:
                    self._cache.store(arm, template)
            versions[number] = version
        return LiveRelease(split, versions)

    async def refresh_forever(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh_once()


def _caller_of(caller: Caller | None) -> tuple[str | None, Mapping[str, Any] | None]:
    """The caller key and segment metadata a run's `configurable` gives (None: none)."""
    if not caller:
        return None, None
    key = caller.get(RELEASE_KEY)
    metadata = caller.get(RELEASE_METADATA)
    return (key if isinstance(key, str) and key else None,
            metadata if isinstance(metadata, Mapping) else None)


def _which(prompt: RegistryPrompt) -> str:
    return f"label {prompt.label!r}" if prompt.label else f"version {prompt.version}"
