"""The provider kinds hubbub knows: the one place a new kind is registered (docs/upstreams.md).

A kind is a module with a ``KIND`` (``providers/base.ProviderKind``): the ``type`` name its
``[[providers]]`` tables use, its settings model, and how to build a provider. Adding one is
writing that module and adding it to the tuple below; nothing else changes.
"""

from __future__ import annotations

from hubbub.providers.base import ProviderKind


def provider_kinds() -> dict[str, ProviderKind]:
    """Every kind by its ``type`` name (imported here, when the app is built, not at import time:
    the embedded kind pulls in llama.cpp)."""
    from hubbub.providers import anthropic, embedded, openai_compat

    return {kind.name: kind for kind in (embedded.KIND, openai_compat.KIND, anthropic.KIND)}
