"""The one carrier of a request's trace: `RequestTrace`.

The route's ASGI wrapper (`_responses.TracedEndpoint`) creates it and keeps it in the ASGI
scope; LangServe's config modifier (`_config_modifier`) finds it there, gives it its tracer
and hands it to the chain in `configurable`; the chain's `TracedRunnable` opens each run in
it (prompt versions pinned, root opened in the tracer). After the run the wrapper reads the
same object to write ids, versions and tokens into the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from promptserve.prompts import PromptPins
    from promptserve.tracing import PromptLayerTracer

__all__ = ["TRACE_CONFIG_KEY", "TRACE_SCOPE_KEY", "RequestTrace"]

TRACE_SCOPE_KEY = "promptserve.trace"
# Double underscore: LangChain copies no such configurable key into run metadata.
TRACE_CONFIG_KEY = "__promptserve_trace"


@dataclass(eq=False)
class RequestTrace:
    """One HTTP request's chain runs: its tracer, and per run its pinned prompt versions."""

    endpoint: str
    tracer: PromptLayerTracer | None = None
    runs: dict[UUID, PromptPins] = field(default_factory=dict)
    # The first run that ended with an error, and that error (a stream's error event).
    error: BaseException | None = None

    def prompt_versions(self, run_id: UUID) -> dict[str, int]:
        """Version number of each registry prompt the run called, by prompt name."""
        pins = self.runs.get(run_id)
        return dict(pins.called) if pins is not None else {}
