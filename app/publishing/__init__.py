"""Publishing template files to a PromptLayer registry (`promptserve publish`, start-up seeding)."""

from __future__ import annotations

from app.publishing.command import embedded_registry_url, run_publish_command
from app.publishing.files import (
    InvalidTemplatesError,
    TemplateFile,
    TemplateFileError,
    load_directory,
    load_template_file,
    template_paths,
)
from app.publishing.publisher import (
    FileResult,
    PublishReport,
    is_unchanged,
    publish_directory,
    seed_registry,
)

__all__ = [
    "FileResult",
    "InvalidTemplatesError",
    "PublishReport",
    "TemplateFile",
    "TemplateFileError",
    "embedded_registry_url",
    "is_unchanged",
    "load_directory",
    "load_template_file",
    "publish_directory",
    "run_publish_command",
    "seed_registry",
    "template_paths",
]
