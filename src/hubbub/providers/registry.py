"""The model catalog: which models exist, what they cost, and who serves them."""

from __future__ import annotations

from dataclasses import dataclass

from hubbub.core.types import ModelInfo
from hubbub.errors import ModelNotFound
from hubbub.providers.base import Provider


@dataclass(frozen=True)
class CatalogEntry:
    info: ModelInfo
    provider: Provider
    upstream_model: str  # the name the provider knows the model by


class ModelRegistry:
    def __init__(self, default_model: str) -> None:
        self.default_model = default_model
        self._entries: dict[str, CatalogEntry] = {}

    def register(self, info: ModelInfo, provider: Provider, upstream_model: str | None = None) -> None:
        self._entries[info.id] = CatalogEntry(info, provider, upstream_model or info.id)

    def get(self, model_id: str | None) -> CatalogEntry:
        """The entry for ``model_id`` (the default model when empty)."""
        key = model_id or self.default_model
        entry = self._entries.get(key)
        if entry is None:
            raise ModelNotFound(key, self.ids())
        return entry

    def ids(self) -> list[str]:
        return list(self._entries)

    def models(self) -> list[ModelInfo]:
        return [e.info for e in self._entries.values()]

    def providers(self) -> list[Provider]:
        seen: dict[int, Provider] = {}
        for entry in self._entries.values():
            seen.setdefault(id(entry.provider), entry.provider)
        return list(seen.values())
