"""Documents wire models (API.md §6). camelCase on the wire; unknown fields are ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DocumentIn(_Wire):
    """``POST /api/documents`` as JSON (a file goes as multipart ``file`` instead)."""

    title: str = Field(default="", max_length=1000)
    content: str = Field(min_length=1)


class SearchIn(_Wire):
    query: str = Field(min_length=1, max_length=10000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Literal["bm25", "dense", "hybrid"] | None = None  # default: the server's (docs/rag.md)
