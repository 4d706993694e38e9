"""Identifiers and clocks."""

from __future__ import annotations

import os
import time


def new_id(prefix: str = "") -> str:
    """A random id, e.g. ``conv_9f2c…`` (prefix plus 24 hex characters)."""
    return prefix + os.urandom(12).hex()  # what uuid4 draws, without building a UUID


def now_ms() -> int:
    return int(time.time() * 1000)
