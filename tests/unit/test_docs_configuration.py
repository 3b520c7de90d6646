"""Every setting has a row in the README's configuration table, and every row a setting."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from app.config import Settings

DOC = Path(__file__).resolve().parents[2] / "README.md"


def _env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(
            str(alias.choices[0])
            if isinstance(alias, AliasChoices)
            else f"PROMPTSERVE_{name.upper()}"
        )
    return names


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", DOC.read_text(), re.MULTILINE))
    assert _env_names() - documented == set(), "undocumented settings"
    assert documented - _env_names() == set(), "documented settings that do not exist"


def _exposed_metrics() -> set[str]:
    """Each promptserve metric as the README writes it: exposed name{label,...}."""
    from prometheus_client import REGISTRY, Counter

    import app.observability.metrics  # noqa: F401  (registers the metrics)

    found = set()
    for collector in list(REGISTRY._collector_to_names):
        name = getattr(collector, "_name", "")
        if not name.startswith("promptserve_"):
            continue
        exposed = f"{name}_total" if isinstance(collector, Counter) else name
        labels = getattr(collector, "_labelnames", ())
        found.add(f"{exposed}{{{','.join(labels)}}}" if labels else exposed)
    return found


def test_every_metric_has_a_row_with_its_labels_and_every_row_a_metric() -> None:
    documented = set(re.findall(r"^\| `(promptserve_[a-z_]+(?:\{[a-z_,]+\})?)` \|",
                                DOC.read_text(), re.MULTILINE))
    exposed = _exposed_metrics()
    assert exposed, "no promptserve metric registered: the test is out of date"
    assert exposed - documented == set(), "undocumented metrics (or labels)"
    assert documented - exposed == set(), "documented metrics that do not exist"
