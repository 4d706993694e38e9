"""The provider seam (STYLE.md §2).

A provider is one streaming method plus declared capabilities. The embedded
model and every upstream register through the same door (``registry.py``).
"""

from __future__ import annotations

from typing import AsyncIterator, Protocol, runtime_checkable

from hubbub.core.events import ProviderEvent
from hubbub.core.types import Message, ProviderRequest


@runtime_checkable
class Provider(Protocol):
    """Streams typed events for one request.

    ``stream`` yields ``TextDelta``\\ s, then exactly one ``UsageReport`` and one
    ``Finish``. Closing the iterator early (``aclose()``, task cancellation)
    must stop the work within 100 ms. Errors are raised as ``ProviderError``.
    """

    name: str
    supports_json_schema: bool

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]: ...

    async def count_tokens(self, messages: list[Message], model: str) -> int:
        """Prompt tokens ``messages`` will cost, with the model's own tokenizer where known."""
        ...

    async def count_text_tokens(self, text: str, model: str) -> int: ...

    async def aclose(self) -> None: ...
