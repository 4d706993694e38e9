"""``Idempotency-Key`` on the chat POST routes (API.md, Common rules).

A chat POST whose ``Idempotency-Key`` repeats one seen in the last 24 h, from the
same API key (``open`` on an open server), starts no second generation and bills
nothing twice: it gets the first request's response, or joins its stream.

How (``respond``, called by the route class of routers made with ``idempotent=True``):

- ``claim`` decides atomically whether this request is the first under its key
  (memory: one dict lookup on the event loop; Redis: ``SET NX``). A claim holds
  a fingerprint of method, path and body: the same key with a different request
  is a ``Conflict`` (409 in the dialect's shape).
- The first runs normally. A non-2xx answer or an exception releases the claim,
  so a retry runs anew (an error generated nothing worth keeping). A 2xx answer
  is recorded: status, headers, then every body chunk as it is produced.
- A streamed answer is recorded by a background pump, not by the client's own
  response: the first client reads the recording like every duplicate does. So a
  client whose connection drops mid-stream and retries with the same key gets
  the whole answer, never a second generation. The deliberate price, on the
  stateless routes: a request sent with an ``Idempotency-Key`` belongs to its
  key, not to its connection, and runs to its end after a disconnect (without a
  key, a disconnect still stops the generation within 100 ms).
- A duplicate waits for the first's status, replays the recording and, while
  the first still streams, follows it live until it ends (``Idempotent-Replayed:
  true`` marks it). A duplicate whose first was released claims again. A duplicate
  with ``Last-Event-ID`` (a client reconnecting) gets only the events after that id.

The recording is a stream hub channel (``idem:<token>``, ``streams/records.py``):
a ``ResponseHead``, then ``BodyChunk``\\ s, then the close. So it is recorded,
replayed and followed live by the hub's own code, on any replica with Redis; what
this module keeps is the claim. The hub keeps a running first's channel live; a
duplicate whose first's replica died sees the channel end without a head within
the hub's ``live_ttl`` and claims again.

Records live 24 h. The memory store is bounded (oldest finished records go first);
the Redis store lets any replica replay any record.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hubbub.errors import Conflict, FieldProblem, InvalidRequest, Unauthorized
from hubbub.http.sse import PING, SSEResponse, last_event_id
from hubbub.streams.base import StreamHub
from hubbub.streams.memory import MemoryStreamHub
from hubbub.streams.records import BodyChunk, Headers, ResponseHead

if TYPE_CHECKING:
    from hubbub.streams.redis import RedisStreamHub

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_SECONDS = 24 * 3600


@dataclass
class Claim:
    """One request's hold on a key: ``first`` runs the request, the others replay it."""

    first: bool
    key: str  # the store key: scope and Idempotency-Key
    token: str  # names this run's record (a released key's next run gets a new one)
    held: Any = None  # what the store compares when it lets go of the key (memory: the record)
    cursor: int = 0  # the last item of the record this reader has read

    @property
    def channel(self) -> str:
        """The hub channel holding the record."""
        return f"idem:{self.token}"


class IdempotencyStore(Protocol):
    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        """First or duplicate; ``Conflict`` when ``key`` was used for a different request."""

    async def begin(self, claim: Claim, status: int, headers: Headers) -> None: ...

    async def append(self, claim: Claim, chunk: bytes) -> None: ...

    async def end(self, claim: Claim) -> None: ...

    async def release(self, claim: Claim) -> None:
        """Forget the first's claim (it failed): waiting duplicates claim again."""

    async def head(self, claim: Claim) -> tuple[int, Headers] | None:
        """Wait for the first's status and headers; None if it was released (claim again)."""

    def body(self, claim: Claim) -> AsyncIterator[bytes]:
        """Every recorded chunk, then live ones until the record ends."""

    async def aclose(self) -> None: ...


# -- the flow -----------------------------------------------------------------------


def fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def _scope(request: Request) -> str | None:
    """Whose keys these are: the API key's id, ``open`` without auth; None if unauthenticated
    (the handler then answers 401 in its own shape)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:  # routes that admit in the handler
        try:
            principal = await request.app.state.container.auth.authenticate(request)
        except Unauthorized:
            return None
    return principal.key_id or "open"


async def respond(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
    """Run ``call`` once per Idempotency-Key (see the module docstring); without one, just run it."""
    key = request.headers.get(HEADER)
    store: IdempotencyStore | None = getattr(request.app.state.container, "idempotency", None)
    if key is None or store is None:
        return await call()
    if not 0 < len(key) <= 255 or not key.isprintable():
        raise InvalidRequest(details=[FieldProblem("Idempotency-Key", "must be 1 to 255 printable characters")])
    scope = await _scope(request)
    if scope is None:
        return await call()
    print_ = fingerprint(request, await request.body())
    ping = request.app.state.settings.sse_ping_seconds
    while True:
        claim = await store.claim(scope, key, print_)
        if claim.first:
            return await _first(request, store, claim, call, ping)
        head = await store.head(claim)
        if head is not None:
            after = last_event_id(request)
            return await _replay(store, claim, *head, ping, [(b"idempotent-replayed", b"true")], after)
        # The first failed and released the key: try to become the first ourselves.


async def _first(
    request: Request, store: IdempotencyStore, claim: Claim, call: Callable[[], Awaitable[Response]], ping: float
) -> Response:
    try:
        response = await call()
    except BaseException:
        with contextlib.suppress(Exception):
            await store.release(claim)
        raise
    if not 200 <= response.status_code < 300:
        with contextlib.suppress(Exception):  # the store's trouble must not hide the real answer
            await store.release(claim)
        return response
    headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    try:
        await store.begin(claim, response.status_code, headers)
    except Exception:  # the store is down: answer anyway, unrecorded (a retry may then run again)
        log.exception("could not record an idempotent response")
        with contextlib.suppress(Exception):
            await store.release(claim)
        return response
    if isinstance(response, StreamingResponse):
        request.app.state.container.service.spawn(_pump(store, claim, response))
        return await _replay(store, claim, response.status_code, headers, ping, [])
    try:
        await store.append(claim, bytes(response.body))
    except Exception:
        log.exception("could not record an idempotent response")
    finally:
        with contextlib.suppress(Exception):
            await store.end(claim)
    return response


async def _pump(store: IdempotencyStore, claim: Claim, response: StreamingResponse) -> None:
    """Drive the first's body to its end, recording it, whoever is (still) reading."""
    iterator = response.body_iterator
    try:
        async for chunk in iterator:
            data = chunk.encode(response.charset) if isinstance(chunk, str) else bytes(chunk)
            if data and data != PING:  # readers get their own pings
                await store.append(claim, data)
    except Exception:
        log.exception("idempotent stream failed")
    finally:
        with contextlib.suppress(Exception):
            await store.end(claim)
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def _event_id(chunk: bytes) -> int | None:
    """The ``id:`` of an SSE frame (stored chats number their events), if it has one."""
    if not chunk.startswith(b"id: "):
        return None
    value = chunk[4:chunk.find(b"\n")]
    return int(value) if value.isdigit() else None


async def _after(chunks: AsyncIterator[bytes], after: int) -> AsyncIterator[bytes]:
    """Only the frames numbered after ``after``: a duplicate that is a reconnect resumes, not restarts."""
    async for chunk in chunks:
        seq = _event_id(chunk)
        if seq is None or seq > after:
            yield chunk


async def _replay(
    store: IdempotencyStore, claim: Claim, status: int, headers: Headers, ping: float, extra: Headers,
    after: int | None = None,
) -> Response:
    content_type = next((v for k, v in headers if k == b"content-type"), b"")
    if not content_type.startswith(b"text/event-stream"):
        body = b"".join([chunk async for chunk in store.body(claim)])  # a JSON answer: whole, with a length
        response = Response(body, status_code=status)
        response.raw_headers = [*headers, *extra, *response.raw_headers]
        return response
    chunks = store.body(claim) if after is None else _after(store.body(claim), after)
    streamed = SSEResponse(chunks, ping, status_code=status)
    streamed.raw_headers = [*headers, *extra]
    return streamed


# -- the record: a hub channel, for both stores ----------------------------------------


class _Recording:
    """Recording and replaying through ``self.hub``; the stores add the claim."""

    hub: StreamHub

    async def begin(self, claim: Claim, status: int, headers: Headers) -> None:
        await self.hub.publish(claim.channel, ResponseHead(status, headers))

    async def append(self, claim: Claim, chunk: bytes) -> None:
        await self.hub.publish(claim.channel, BodyChunk(chunk))

    async def end(self, claim: Claim) -> None:
        await self.hub.close(claim.channel)

    async def head(self, claim: Claim) -> tuple[int, Headers] | None:
        async with contextlib.aclosing(self.hub.subscribe(claim.channel, claim.cursor)) as items:
            async for seq, item in items:
                claim.cursor = seq
                if isinstance(item, ResponseHead):
                    return item.status, item.headers  # ``body`` reads on from here
        # The record ended with no answer: the first was released, or its replica died first.
        await self._let_go(claim)
        return None

    async def body(self, claim: Claim) -> AsyncIterator[bytes]:
        # Ends at the record's end; or, if the first's replica died mid-answer, where it stopped.
        async with contextlib.aclosing(self.hub.subscribe(claim.channel, claim.cursor)) as items:
            async for seq, item in items:
                claim.cursor = seq
                if isinstance(item, BodyChunk):
                    yield item.data

    async def _let_go(self, claim: Claim) -> None:
        """Free the key if it is still held by the run this claim saw (its first is gone)."""


# -- in memory ------------------------------------------------------------------------


@dataclass
class _Record:
    fingerprint: str
    token: str
    created: float
    size: int = 0
    ended: bool = False


class MemoryIdempotencyStore(_Recording):
    """One process. Keeps at most ``max_records`` finished records and ``max_bytes`` of
    their bodies, dropping the oldest first, and none older than ``ttl`` seconds.

    Its records live on a hub of their own: the chats' hub keeps finished channels for
    minutes (``MemoryStreamHub`` defaults), records are kept a day under these bounds."""

    def __init__(self, ttl: float = TTL_SECONDS, max_records: int = 10_000, max_bytes: int = 64 << 20) -> None:
        self.hub = MemoryStreamHub(max_events=0, ttl=ttl, max_finished=max_records)
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._ttl, self._max_records, self._max_bytes = ttl, max_records, max_bytes
        self._bytes = 0  # held by finished records

    def __len__(self) -> int:
        return len(self._records)

    async def _drop(self, key: str) -> None:
        record = self._records.pop(key)
        if record.ended:
            self._bytes -= record.size
        await self.hub.discard(f"idem:{record.token}")

    async def _evict(self) -> None:
        now = time.monotonic()
        for key, record in list(self._records.items()):  # oldest first
            over = len(self._records) > self._max_records or self._bytes > self._max_bytes
            if now - record.created > self._ttl or (over and record.ended):
                await self._drop(key)
            elif not over:
                break

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        await self._evict()
        name = f"{scope}:{key}"
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = _Record(fingerprint, uuid.uuid4().hex, time.monotonic())
            claim = Claim(True, name, record.token, record)
            # The memory hub opens without yielding to the loop: no duplicate finds it missing.
            await self.hub.open(claim.channel)
            return claim
        if record.fingerprint != fingerprint:
            raise Conflict("Idempotency-Key was already used for a different request")
        return Claim(False, name, record.token, record)

    async def append(self, claim: Claim, chunk: bytes) -> None:
        claim.held.size += len(chunk)
        await super().append(claim, chunk)

    async def end(self, claim: Claim) -> None:
        record: _Record = claim.held
        if record.ended:
            return
        record.ended = True
        if self._records.get(claim.key) is record:
            self._bytes += record.size
        await super().end(claim)
        await self._evict()

    async def release(self, claim: Claim) -> None:
        if self._records.get(claim.key) is claim.held:
            await self._drop(claim.key)
        else:
            await self.hub.discard(claim.channel)

    async def _let_go(self, claim: Claim) -> None:
        if self._records.get(claim.key) is claim.held:
            await self._drop(claim.key)

    async def aclose(self) -> None:
        self._records.clear()
        self._bytes = 0
        await self.hub.aclose()


# -- in Redis -------------------------------------------------------------------------

# KEYS: claim, the record's live marker. ARGV: value, ttl, live ttl. {1}: claimed; {0, value}: held.
# The marker is set with the claim, so a duplicate never finds a just-claimed record dead.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return {1}
end
return {0, redis.call('GET', KEYS[1]) or ''}
"""
# KEYS: claim. ARGV: the claim's value. Deletes the claim only if it is still that run's.
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisIdempotencyStore(_Recording):
    """Shared by every replica, on the app's stream hub (and its Redis client).
    ``hubbub:idem:<scope>:<key>`` holds the claim (fingerprint and token, 24 h); the record
    is the hub channel ``idem:<token>``, kept a minute longer than the claim."""

    def __init__(self, hub: "RedisStreamHub", ttl: int = TTL_SECONDS) -> None:
        self.hub = hub
        self._ttl = ttl
        self._claim = hub.redis.register_script(_CLAIM)
        self._let_go_script = hub.redis.register_script(_LET_GO)

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        name = f"hubbub:idem:{scope}:{key}"
        while True:
            token = uuid.uuid4().hex
            value = orjson.dumps({"f": fingerprint, "t": token}).decode()
            claim = Claim(True, name, token, value)
            reply = await self._claim(keys=[name, self.hub.live_key(claim.channel)],
                                      args=[value, self._ttl, self.hub.live_ttl])
            if int(reply[0]) == 1:
                await self.hub.open(claim.channel, ttl=self._ttl + 60, max_events=0)
                return claim
            raw = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
            if not raw:
                continue  # it expired or was released in between: try again
            held = orjson.loads(raw)
            if held["f"] != fingerprint:
                raise Conflict("Idempotency-Key was already used for a different request")
            return Claim(False, name, held["t"], raw)

    async def release(self, claim: Claim) -> None:
        try:
            await self._let_go(claim)
        finally:
            await self.hub.discard(claim.channel)  # waiting duplicates end, and claim again

    async def _let_go(self, claim: Claim) -> None:
        await self._let_go_script(keys=[claim.key], args=[claim.held])

    async def aclose(self) -> None:
        """Nothing of its own: the hub and its client belong to the app."""


def build_store(hub: StreamHub) -> IdempotencyStore:
    """On the app's hub when it is Redis (any replica replays any record), else in memory."""
    from hubbub.streams.redis import RedisStreamHub

    if isinstance(hub, RedisStreamHub):
        return RedisIdempotencyStore(hub)
    return MemoryIdempotencyStore()
