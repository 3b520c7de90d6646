"""The chains promptserve serves: one module each, plus template files in `templates/`.

A module here declares `CHAIN = Chain(path, runnable, ...)` (or `CHAINS = [...]`); a template
file with a `serve:` section is a chain of its own (`prompt | model | parser`). The service
finds both at start-up (`app.service.discover_chains`); the README's "Add a chain" says how.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TEMPLATES_DIR"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
"""The template files that seed an empty registry (`promptserve publish chains/templates`)."""
