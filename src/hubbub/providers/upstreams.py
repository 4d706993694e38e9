"""Building upstream providers, channels and routers from the settings (docs/upstreams.md).

- each ``[[providers]]`` entry becomes one provider (one HTTP client), shared by every
  channel that names it; its key is read from the environment variable ``api_key_env``
  names, here and nowhere else, and never logged;
- each ``[[models]]`` entry whose ``provider`` is not ``embedded``, or that ``[[channels]]``
  name, is served by a ``ChannelRouter``: its ``[[channels]]``, or else one channel named
  after its provider;
- a channel may name ``embedded`` as its provider: the local model as a last resort.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from typing import Any

from hubbub.core.types import ModelInfo
from hubbub.providers.base import Provider
from hubbub.providers.channels import Channel, ChannelRouter, make_channel
from hubbub.providers.kinds import provider_kinds
from hubbub.providers.registry import ModelRegistry
from hubbub.settings import ChannelConfig, ModelConfig, ProviderConfig, Settings

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
DEFAULT_CONTEXT_LENGTH = 8192


def make_provider(config: ProviderConfig) -> Provider:
    """A provider of the kind ``config.type`` names (``providers/kinds.py``), its table validated
    by that kind's settings model."""
    kinds = provider_kinds()
    kind = kinds.get(config.type)
    if kind is None or kind.name == EMBEDDED:
        known = ", ".join(sorted(k for k in kinds if k != EMBEDDED))
        raise ValueError(f"provider {config.name}: unknown type {config.type!r} (known: {known})")
    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
    if config.api_key_env and not api_key:
        log.warning("provider %s: the environment variable %s is not set; sending no key",
                    config.name, config.api_key_env)
    return kind.build(kind.settings.model_validate(config.model_dump()), api_key)


def register_upstreams(settings: Settings, registry: ModelRegistry, embedded: Provider | None) -> list[Provider]:
    """Register every channel-served model in ``registry``; returns the providers made here
    (the app closes them at shutdown). Configuration mistakes raise ``ValueError`` at startup."""
    names = [p.name for p in settings.providers]
    if len(set(names)) != len(names) or EMBEDDED in names:
        raise ValueError("[[providers]] names must be unique and not 'embedded'")
    made: dict[str, Provider] = {}
    configs = {p.name: p for p in settings.providers}

    def provider(name: str, used_by: str) -> Provider:
        if name == EMBEDDED:
            if embedded is None:
                raise ValueError(f"{used_by} uses the embedded provider, which is disabled")
            return embedded
        if name not in configs:
            raise ValueError(f"{used_by} names the provider {name!r}, which no [[providers]] entry defines")
        if name not in made:
            made[name] = make_provider(configs[name])
        return made[name]

    by_model: dict[str, list[ChannelConfig]] = defaultdict(list)
    for ch in settings.channels:
        by_model[ch.model].append(ch)
    models = {m.id: m for m in settings.models}
    for model_id in by_model:
        if model_id not in models:
            raise ValueError(f"channels serve the model {model_id!r}, which no [[models]] entry defines")
    for model in settings.models:
        if model.id not in by_model and model.provider == EMBEDDED:
            continue  # an embedded alias: container.build_registry registers it
        configs_for = by_model.get(model.id) or [ChannelConfig(name=model.provider, model=model.id,
                                                               provider=model.provider)]
        context = channels_context(model, embedded, configs_for)
        channels = [_channel(ch, model, provider(ch.provider, f"channel {ch.name}"), settings, embedded)
                    for ch in configs_for]
        default = model.default_max_tokens or (
            settings.embedded.default_max_tokens if all(c.provider == EMBEDDED for c in configs_for)
            else settings.default_max_tokens)
        info = _info(model, context, owned_by=configs_for[0].provider, default_max_tokens=default)
        registry.register(info, ChannelRouter(model.id, channels, settings.failover, context_length=context))
    return list(made.values())


def _channel(ch: ChannelConfig, model: ModelConfig, provider: Provider, settings: Settings,
             embedded: Provider | None) -> Channel:
    """A channel from its ``[[channels]]`` entry; what it leaves unset comes from the model, the
    provider or ``[failover]`` (docs/upstreams.md)."""
    pricing = ch.pricing or model.pricing
    window = ch.context_length
    if ch.provider == EMBEDDED and embedded is not None:
        window = min(window or embedded.model.n_ctx, embedded.model.n_ctx)  # type: ignore[attr-defined]
    knobs: dict[str, Any] = {"priority": ch.priority, "weight": ch.weight, "timeout": ch.timeout,
                             "context_length": window, "pricing_prompt": pricing.prompt,
                             "pricing_completion": pricing.completion, "can_continue": ch.can_continue}
    if ch.max_retries is not None:
        knobs["max_retries"] = ch.max_retries
    if ch.first_token_timeout is not None:
        knobs["first_token_timeout"] = ch.first_token_timeout
    return make_channel(ch.name, provider, ch.upstream_model or model.upstream_model or model.id,
                        settings.failover, **knobs)


def channels_context(model: ModelConfig, embedded: Provider | None, channels: list[ChannelConfig]) -> int:
    """The model's context length, the window the core checks prompts against: as configured, else
    the largest its channels declare, else 8192. A channel with a smaller window gets requests
    that fit it, or none (channels.py); when the embedded model is the only channel, its window
    caps the model's."""
    declared = [c.context_length for c in channels if c.context_length]
    length = model.context_length or max(declared, default=DEFAULT_CONTEXT_LENGTH)
    if embedded is not None and channels and all(c.provider == EMBEDDED for c in channels):
        length = min(length, embedded.model.n_ctx)  # type: ignore[attr-defined]
    return length


def _info(model: ModelConfig, context_length: int, owned_by: str, default_max_tokens: int) -> ModelInfo:
    return ModelInfo(
        id=model.id,
        name=model.name or model.id,
        context_length=context_length,
        pricing_prompt=model.pricing.prompt,
        pricing_completion=model.pricing.completion,
        owned_by="hubbub" if owned_by == EMBEDDED else owned_by,
        created=int(time.time()),
        default_max_tokens=default_max_tokens,
    )


def routers(registry: ModelRegistry) -> list[ChannelRouter]:
    """Every channel router in the catalog (for ``GET /api/channels``)."""
    return [p for p in registry.providers() if isinstance(p, ChannelRouter)]
