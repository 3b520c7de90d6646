"""The layering docs/ARCHITECTURE.md describes, held by the imports themselves.

Each rule names a part and the parts it must not import (module-level and deferred imports
alike: both are a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_IMPURE = ("app.backend", "app.service", "app.feedback", "app.config", "app.releases.service",
           "promptserve")

# (the part, the prefixes it must not import, why)
RULES = [
    ("promptserve", ("app", "chains"), "what users import works without the service"),
    ("chains", ("app",), "a chain is built from the promptserve package alone"),
    ("promptserve/tracing", ("promptserve.server", "promptserve.prompts",
                             "promptserve.integration"), "tracing is the bottom layer"),
    ("promptserve/prompts", ("promptserve.server", "promptserve.integration"),
     "prompts know nothing of serving"),
    ("app/backend", ("app.service", "app.feedback", "app.serving", "app.cli"),
     "the backend runs alone (`promptserve backend`)"),
    *((f"app/releases/{name}", _IMPURE, "the statistics are pure")
      for name in ("judging.py", "_sequential.py", "_summary.py")),
]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _files(part: str) -> list[Path]:
    target = ROOT / part
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize(("part", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_a_part_imports_only_what_its_layer_allows(
    part: str, forbidden: tuple[str, ...], why: str
) -> None:
    files = _files(part)
    assert files, f"{part} has no Python files: the rule is out of date"
    broken = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    ]
    assert not broken, f"{part}: {why}; but\n" + "\n".join(broken)
