"""Settings: the one place that reads the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """promptserve's configuration, built once in the app factory and passed down."""

    model_config = SettingsConfigDict(
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
    data_dir: Path = Field(
        default=Path(".promptserve"),
        validation_alias=AliasChoices("PROMPTSERVE_DATA_DIR", "data_dir"),
    )

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
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'promptserve.db').resolve()}"
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
