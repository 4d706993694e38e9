"""Identifiers and clocks."""

from __future__ import annotations

import time
import uuid


def new_id(prefix: str = "") -> str:
    """A random id, e.g. ``conv_9f2c…`` (prefix plus 24 hex characters)."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def now_ms() -> int:
    return int(time.time() * 1000)
