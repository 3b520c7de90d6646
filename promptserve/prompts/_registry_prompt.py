"""A registry prompt as a runnable: variables in, the model's message out.

`RegistryPrompt("slogan", label="prod")` names a prompt of the PromptLayer registry and is
composed like any LangChain runnable (`RegistryPrompt("slogan") | StrOutputParser()`). It is a
declaration only: the versions live in a `PromptStore`, which fetches and refreshes them. A
served run's config carries `PromptPins` under `PINS_KEY` (the service's routes put them
there when the run starts), so every prompt keeps, for the whole run, the version it had
when the run started, and two apps in one process never share versions. Outside a served
run a prompt runs the version `install` gave it.

Each call starts the model run with a run id of its own and links that id to the prompt
version and the variables it was given, so any tracer logs the call against that prompt
(`promptserve.tracing._links`).

A label may be split across versions (docs/RELEASES.md): the store routes each run to one
arm when the run's pins are taken, and the pins keep that arm, so the call is logged with
the arm's tags. With the hosted registry, whose splits the API cannot read, the chain
declares the split: `RegistryPrompt("slogan", label="prod", split={3: 50, 4: 50},
control=3)`.
"""

from __future__ import annotations

import contextvars
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Protocol, cast

from langchain_core.messages import BaseMessage
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from pydantic import BaseModel

from promptserve.prompts._arms import ServedArm
from promptserve.prompts._split import Split, SplitError, declared_split
from promptserve.prompts._version import PromptVersion
from promptserve.prompts.errors import ModelOutputError
from promptserve.tracing._links import PromptCall, linked
from promptserve.tracing._structured import answer_problem, json_schema_of

__all__ = [
    "INSTALLED",
    "PINS_KEY",
    "PromptPins",
    "RegistryPrompt",
    "Selector",
    "StructuredAnswer",
    "VersionSource",
    "schema_source",
]

# Double underscore: LangChain copies no such configurable key into run metadata.
PINS_KEY = "__promptserve_prompts"

# Keys of the caller's config that name the caller's own run, not the prompt's children.
_OWN_RUN_KEYS = ("run_id", "run_name")


Selector = tuple[str, str | None, int | None]

Pin = tuple[PromptVersion, ServedArm | None]
"""A prompt's version in a run, and the arm of its split that chose it (None: no split)."""

# The caller of a run, as splits read it: (key, metadata) from the run's `configurable`.
Caller = Mapping[str, Any]


class VersionSource(Protocol):
    """Where a run's prompts get their versions (a `PromptStore`)."""

    def current_for(self, prompt: RegistryPrompt) -> PromptVersion:
        """The version of `prompt` now (a split label: its control's label version)."""
        ...

    def pin_for(self, prompt: RegistryPrompt, caller: Caller | None) -> Pin:
        """The version `prompt` gets in a run of `caller` (its split's arm, if split)."""
        ...


class PromptPins:
    """The prompt versions one run uses, fixed when the run starts, and those it called."""

    __slots__ = ("_lock", "arms", "called", "called_arms", "caller", "source", "versions")

    def __init__(
        self,
        source: VersionSource,
        versions: Mapping[Selector, PromptVersion] | None = None,
        *,
        arms: Mapping[Selector, ServedArm] | None = None,
        caller: Caller | None = None,
    ) -> None:
        """Pin `versions` (chosen by the split `arms` where given); a prompt not pinned there
        is pinned from `source` at first call, for `caller`."""
        self.source = source
        self.versions: dict[Selector, PromptVersion] = dict(versions or {})
        # Set only with a split: a run without one allocates nothing more.
        self.arms: Mapping[Selector, ServedArm] | None = arms or None
        self.caller = caller
        # prompt name → version number, in first-call order (the answer's metadata).
        self.called: dict[str, int] = {}
        # prompt name → the arm that served it, for prompts on a split label.
        self.called_arms: dict[str, ServedArm] | None = None
        self._lock = threading.Lock()

    def pin_of(self, prompt: RegistryPrompt) -> Pin:
        """The version `prompt` runs with in this run, and its arm if its label is split."""
        selector = prompt.selector
        with self._lock:
            version = self.versions.get(selector)
            if version is None:
                version, arm = self.source.pin_for(prompt, self.caller)
                self.versions[selector] = version
                if arm is not None:
                    self.arms = {**(self.arms or {}), selector: arm}
            else:
                arm = self.arms.get(selector) if self.arms else None
            self.called.setdefault(version.name, version.number)
            if arm is not None:
                if self.called_arms is None:
                    self.called_arms = {}
                self.called_arms.setdefault(version.name, arm)
            return version, arm

    def version_of(self, prompt: RegistryPrompt) -> PromptVersion:
        """The version `prompt` runs with in this run."""
        return self.pin_of(prompt)[0]

    def release_arms(self) -> dict[str, dict[str, Any]]:
        """The response's `promptlayer_release_arms`: per prompt called on a split label,
        its label, version served and release id."""
        called = self.called_arms
        return {name: arm.summary() for name, arm in called.items()} if called else {}


class _Installed:
    """Versions as each prompt's `install` gave them (a run served without a store)."""

    def current_for(self, prompt: RegistryPrompt) -> PromptVersion:
        return prompt.version_for(None)

    def pin_for(self, prompt: RegistryPrompt, caller: Caller | None) -> Pin:
        return prompt.version_for(None), None


INSTALLED: VersionSource = _Installed()

# The store whose versions type the prompts' input schemas: a served chain's TracedRunnable
# sets it (`PromptStore.typing`) while LangServe reads the schema of a request.
schema_source: contextvars.ContextVar[VersionSource | None] = contextvars.ContextVar(
    "promptserve_schema_source", default=None
)


class RegistryPrompt(Runnable[dict[str, Any], BaseMessage]):
    """A PromptLayer registry prompt (name plus release label or version) as a runnable."""

    def __init__(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        split: Mapping[int, int] | None = None,
        control: int | None = None,
        segments: Mapping[str, Any] | None = None,
    ):
        """The prompt `name` at release `label` (default `prod`) or at a fixed `version`.

        `split` (`{version: weight}`, weights summing to 100), its `control` and optional
        `segments` (`{"key": "plan", "values": {"pro": {4: 100}}}`) declare the label's
        split, for a registry whose splits cannot be read (the hosted PromptLayer); the
        service then routes the label's requests across those versions. `SplitError` (a
        ValueError) says what is wrong with a declaration.
        """
        if not name or not isinstance(name, str):
            raise ValueError("a registry prompt needs a name")
        if label is not None and version is not None:
            raise ValueError(f"prompt {name!r}: give a release label or a version, not both")
        if version is not None and (not isinstance(version, int) or version < 1):
            raise ValueError(f"prompt {name!r}: version must be a whole number, 1 or more")
        self.prompt_name = name
        self.label = label if label is not None or version is not None else "prod"
        self.version = version
        self.name = name
        self._current: PromptVersion | None = None
        self.split: Split | None = None
        if split is not None or control is not None or segments is not None:
            if self.label is None:
                raise ValueError(f"prompt {name!r}: only a release label can be split, "
                                 "not a fixed version")
            if split is None:
                raise SplitError(f"prompt {name!r}: control and segments need a split")
            self.split = declared_split(name, self.label, split, control=control,
                                        segments=segments)

    def __repr__(self) -> str:
        which = f"label={self.label!r}" if self.label else f"version={self.version}"
        if self.split is not None:
            weights = {a.version: a.weight for a in self.split.arms}
            which += f", split={weights}, control={self.split.control}"
        return f"RegistryPrompt({self.prompt_name!r}, {which})"

    @property
    def selector(self) -> tuple[str, str | None, int | None]:
        """What the registry is asked for: name, label, version."""
        return self.prompt_name, self.label, self.version

    # -- versions --------------------------------------------------------------------------

    def install(self, version: PromptVersion) -> None:
        """Run `version` outside served runs (one attribute assignment: atomic)."""
        self._current = version

    def version_for(self, config: RunnableConfig | None) -> PromptVersion:
        """The version this prompt runs with under `config`: its run's pin, else the one
        `install` gave it, else one fetched now (`load`)."""
        return self.pin_for(config)[0]

    def pin_for(self, config: RunnableConfig | None) -> Pin:
        """As `version_for`, with the split arm that chose the version (None outside a
        served run, and for a label that is not split)."""
        pins = ((config or {}).get("configurable") or {}).get(PINS_KEY)
        if isinstance(pins, PromptPins):
            return pins.pin_of(self)
        if self._current is None:
            return self.load(), None
        return self._current, None

    def load(self) -> PromptVersion:
        """Fetch and install this prompt's version now, from the registry the environment
        names (`promptserve.prompts.load_prompt`); a prompt used outside a served run does
        this at its first call."""
        from promptserve.prompts._store import load_prompt

        return load_prompt(self)

    def prompt_template(self) -> BasePromptTemplate[Any]:
        """The LangChain prompt of this prompt's version (loaded if it is not yet): what the
        SDK's `prompts.get(name, version=1, langchain=True)` gave before SDK 1.0."""
        return self.version_for(None).prompt

    # -- types -----------------------------------------------------------------------------

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """One field per variable of the current version (LangServe's request model)."""
        source = schema_source.get()
        try:
            version = source.current_for(self) if source is not None else self._current
        except LookupError:
            version = None
        if version is None:
            return super().get_input_schema(config)  # type: ignore[return-value]
        return version.input_type

    @property
    def InputType(self) -> Any:  # noqa: N802 - LangChain's name
        """Variables by name."""
        return dict[str, Any]

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        """The model's message."""
        return BaseMessage

    # -- running ---------------------------------------------------------------------------

    def _start(
        self, input: Any, config: RunnableConfig | None
    ) -> tuple[PromptVersion, RunnableConfig, uuid.UUID, PromptCall]:
        config = ensure_config(config)
        version, arm = self.pin_for(config)
        children = cast(
            "RunnableConfig", {k: v for k, v in config.items() if k not in _OWN_RUN_KEYS}
        )
        names = version.ref.input_variable_names
        values = input if isinstance(input, Mapping) else {}
        variables = {n: values[n] for n in names if n in values}
        if arm is None:
            call = PromptCall(prompt=version.ref, variables=variables, label=self.label)
        else:  # the log says which release and arm served it
            call = PromptCall(prompt=version.ref, variables=variables, label=self.label,
                              tags=arm.tags, metadata=arm.metadata)
        return version, children, uuid.uuid4(), call

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None,
               **kwargs: Any) -> BaseMessage:
        """Format the prompt with `input` and call its model."""
        version, children, run_id, call = self._start(input, config)
        messages = version.prompt.invoke(input, children)
        with linked(run_id, call):
            result: BaseMessage = version.model.invoke(messages, {**children, "run_id": run_id})
        return result

    async def ainvoke(self, input: dict[str, Any], config: RunnableConfig | None = None,
                      **kwargs: Any) -> BaseMessage:
        """Format the prompt with `input` and call its model."""
        version, children, run_id, call = self._start(input, config)
        messages = await version.prompt.ainvoke(input, children)
        with linked(run_id, call):
            result: BaseMessage = await version.model.ainvoke(
                messages, {**children, "run_id": run_id}
            )
        return result

    def stream(self, input: dict[str, Any], config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[BaseMessage]:
        """Format the prompt with `input` and stream its model's message."""
        version, children, run_id, call = self._start(input, config)
        messages = version.prompt.invoke(input, children)
        with linked(run_id, call):
            yield from version.model.stream(messages, {**children, "run_id": run_id})

    async def astream(self, input: dict[str, Any], config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[BaseMessage]:
        """Format the prompt with `input` and stream its model's message."""
        version, children, run_id, call = self._start(input, config)
        messages = await version.prompt.ainvoke(input, children)
        with linked(run_id, call):
            async for chunk in version.model.astream(messages, {**children, "run_id": run_id}):
                yield chunk

    def structured(self) -> Runnable[dict[str, Any], Any]:
        """This prompt, its answer parsed as JSON and checked against the template's schema.

        The schema is the template's `metadata.model.parameters.response_format` (where
        PromptLayer keeps structured output). An answer that is not JSON or misses the schema
        raises `ModelOutputError`, which the service answers with a 502.
        """
        return self | StructuredAnswer(self)


class StructuredAnswer(Runnable[BaseMessage, Any]):
    """The JSON object in a model's message, checked against its prompt version's schema."""

    def __init__(self, prompt: RegistryPrompt) -> None:
        """Check answers of `prompt`."""
        self.prompt = prompt
        self.name = f"{prompt.prompt_name}_answer"

    @property
    def OutputType(self) -> Any:  # noqa: N802 - LangChain's name
        """A JSON value."""
        return Any

    def invoke(self, input: BaseMessage, config: RunnableConfig | None = None,
               **kwargs: Any) -> Any:
        """The answer's JSON value; `ModelOutputError` when it does not fit."""
        version = self.prompt.version_for(config)
        text = input.text if isinstance(input, BaseMessage) else str(input)
        schema = json_schema_of(version.response_format) or {}
        problem = answer_problem(text, schema)
        if problem is not None:
            raise ModelOutputError(version.name, version.number, problem)
        return json.loads(text)

    async def ainvoke(self, input: BaseMessage, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        """As `invoke`: parsing does no I/O."""
        return self.invoke(input, config)
