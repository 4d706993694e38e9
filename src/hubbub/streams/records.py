"""What a stream hub channel carries besides core events: a recorded HTTP response.

``Idempotency-Key`` (``http/idempotency.py``) records the first request's response on
a hub channel of its own (``idem:<token>``) and duplicates read it back through
``subscribe``, like any stored-chat follower: one ``ResponseHead`` (status and
headers), then ``BodyChunk``\\ s, then the channel's close.

Encoding for hubs that leave the process (Redis): core events keep ``codec.py``'s
JSON (always an object, so its first byte is ``{``); a record item is one tag byte
that JSON never starts with, then its payload. A chunk is stored as the raw bytes
the client was sent, so a replay is byte-for-byte the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import orjson

from hubbub.core.events import Event
from hubbub.streams import codec

Headers = list[tuple[bytes, bytes]]

_CHUNK = b"\x00"
_HEAD = b"\x01"


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class BodyChunk:
    data: bytes


Item = Union[Event, ResponseHead, BodyChunk]


def encode(item: Item) -> bytes:
    if isinstance(item, BodyChunk):
        return _CHUNK + item.data
    if isinstance(item, ResponseHead):
        # Header names and values are bytes on the wire; latin-1 maps each byte to one code point.
        return _HEAD + orjson.dumps([item.status, [[k.decode("latin-1"), v.decode("latin-1")]
                                                    for k, v in item.headers]])
    return codec.encode(item)


def decode(raw: bytes) -> Item:
    tag = raw[:1]
    if tag == _CHUNK:
        return BodyChunk(raw[1:])
    if tag == _HEAD:
        status, headers = orjson.loads(raw[1:])
        return ResponseHead(status, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])
    return codec.decode(raw)
