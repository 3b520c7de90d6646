"""What `promptserve`'s client side reads from the environment (and `.env`): where
PromptLayer is, and where logs wait on disk when it cannot be reached."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ClientSettings"]


class ClientSettings(BaseSettings):
    """Settings of the LangChain integration (`PromptLayerCallbackHandler` and the models)."""

    model_config = SettingsConfigDict(
        env_prefix="PROMPTSERVE_", env_file=".env", env_ignore_empty=True, extra="ignore",
        populate_by_name=True,
    )

    promptlayer_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PROMPTLAYER_API_KEY", "promptlayer_api_key")
    )
    # The hosted service's API, as the SDK defaults to it.
    promptlayer_base_url: str = Field(
        default="https://api.promptlayer.com",
        validation_alias=AliasChoices("PROMPTLAYER_BASE_URL", "promptlayer_base_url"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    client_spool_dir: Path = Field(
        default=Path(".promptserve") / "client-spool",
        description="Logs not delivered before a script exits wait here for its next run.",
    )
    exit_flush_seconds: float = Field(
        default=5.0, ge=0,
        description="How long a script's exit waits for its logs before spooling the rest.",
    )
