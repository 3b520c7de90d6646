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
