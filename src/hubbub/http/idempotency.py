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

Records live 24 h. The memory store is bounded (oldest finished records go first);
the Redis store lets any replica replay any record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hubbub.http.sse import PING, SSEResponse, last_event_id
from hubbub.errors import Conflict, FieldProblem, InvalidRequest, Unauthorized

if TYPE_CHECKING:
    from hubbub.settings import Settings

log = logging.getLogger(__name__)

HEADER = "idempotency-key"
TTL_SECONDS = 24 * 3600
Headers = list[tuple[bytes, bytes]]


@dataclass
class Claim:
    """One request's hold on a key: ``first`` runs the request, the others replay it."""

    first: bool
    key: str  # the store key: scope and Idempotency-Key
    token: str  # names this run's record (a released key's next run gets a new one)
    state: Any = None  # the store's own bookkeeping


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
            await store.end(claim)  # also ends the claim's heartbeat
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


# -- in memory ------------------------------------------------------------------------


@dataclass
class _Record:
    fingerprint: str
    token: str
    created: float
    status: int | None = None
    headers: Headers = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    ended: bool = False
    released: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


class MemoryIdempotencyStore:
    """One process. Keeps at most ``max_records`` finished records and ``max_bytes`` of
    their bodies, dropping the oldest first, and none older than ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS, max_records: int = 10_000, max_bytes: int = 64 << 20) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._ttl, self._max_records, self._max_bytes = ttl, max_records, max_bytes
        self._bytes = 0  # held by finished records

    def __len__(self) -> int:
        return len(self._records)

    def _drop(self, key: str) -> None:
        record = self._records.pop(key)
        if record.ended:
            self._bytes -= record.size

    def _evict(self) -> None:
        now = time.monotonic()
        for key, record in list(self._records.items()):  # oldest first
            over = len(self._records) > self._max_records or self._bytes > self._max_bytes
            if now - record.created > self._ttl or (over and record.ended):
                self._drop(key)
            elif not over:
                break

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        self._evict()
        name = f"{scope}:{key}"
        record = self._records.get(name)
        if record is None:
            record = self._records[name] = _Record(fingerprint, uuid.uuid4().hex, time.monotonic())
            return Claim(True, name, record.token, record)
        if record.fingerprint != fingerprint:
            raise Conflict("Idempotency-Key was already used for a different request")
        return Claim(False, name, record.token, record)

    async def begin(self, claim: Claim, status: int, headers: Headers) -> None:
        record: _Record = claim.state
        record.status, record.headers = status, headers
        await record.notify()

    async def append(self, claim: Claim, chunk: bytes) -> None:
        record: _Record = claim.state
        record.chunks.append(chunk)
        record.size += len(chunk)
        await record.notify()

    async def end(self, claim: Claim) -> None:
        record: _Record = claim.state
        if record.ended:
            return
        record.ended = True
        if self._records.get(claim.key) is record:
            self._bytes += record.size
        await record.notify()
        self._evict()

    async def release(self, claim: Claim) -> None:
        record: _Record = claim.state
        record.released = True
        if self._records.get(claim.key) is record:
            self._drop(claim.key)
        await record.notify()

    async def head(self, claim: Claim) -> tuple[int, Headers] | None:
        record: _Record = claim.state
        async with record.changed:
            await record.changed.wait_for(lambda: record.status is not None or record.released)
        return None if record.status is None else (record.status, record.headers)

    async def body(self, claim: Claim) -> AsyncIterator[bytes]:
        record: _Record = claim.state
        sent = 0
        while True:
            while sent < len(record.chunks):
                sent += 1
                yield record.chunks[sent - 1]
            if record.ended:
                return
            async with record.changed:
                await record.changed.wait_for(lambda: len(record.chunks) > sent or record.ended)

    async def aclose(self) -> None:
        self._records.clear()
        self._bytes = 0


# -- in Redis -------------------------------------------------------------------------

# KEYS: claim, live. ARGV: value, ttl, live ttl. {1}: claimed; {0, value}: someone holds it.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return {1}
end
return {0, redis.call('GET', KEYS[1]) or ''}
"""
# KEYS: claim, record, live. ARGV: the claim's value. Deletes the claim only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[2], '*', 'r', '1')
redis.call('EXPIRE', KEYS[2], 60)
redis.call('DEL', KEYS[3])
return 1
"""


@dataclass
class _RedisState:
    value: str  # the claim's value, for compare-and-delete
    cursor: str = "0-0"  # how far this reader has read the record
    heartbeat: asyncio.Task[None] | None = None


class RedisIdempotencyStore:
    """Shared by every replica. ``hubbub:idem:<scope>:<key>`` holds the claim (fingerprint and
    token, 24 h); the record is the Redis Stream ``hubbub:idem-rec:<token>`` (entries ``s``:
    status and headers, ``c``: a chunk, ``e``: the end, ``r``: released). The first keeps
    ``hubbub:idem-live:<token>`` alive while it runs, so a duplicate whose first's replica
    died stops waiting (and claims again if nothing was recorded)."""

    def __init__(self, url: str, ttl: int = TTL_SECONDS, live_ttl: int = 30) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._ttl, self._live_ttl = ttl, live_ttl
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)
        self._beats: set[asyncio.Task[None]] = set()

    @staticmethod
    def _names(claim: Claim) -> tuple[str, str, str]:
        return claim.key, f"hubbub:idem-rec:{claim.token}", f"hubbub:idem-live:{claim.token}"

    async def claim(self, scope: str, key: str, fingerprint: str) -> Claim:
        name = f"hubbub:idem:{scope}:{key}"
        while True:
            token = uuid.uuid4().hex
            value = orjson.dumps({"f": fingerprint, "t": token}).decode()
            reply = await self._claim(keys=[name, f"hubbub:idem-live:{token}"],
                                      args=[value, self._ttl, self._live_ttl])
            if int(reply[0]) == 1:
                claim = Claim(True, name, token, _RedisState(value))
                claim.state.heartbeat = asyncio.get_running_loop().create_task(self._beat(claim))
                self._beats.add(claim.state.heartbeat)
                return claim
            raw = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
            if not raw:
                continue  # it expired or was released in between: try again
            held = orjson.loads(raw)
            if held["f"] != fingerprint:
                raise Conflict("Idempotency-Key was already used for a different request")
            return Claim(False, name, held["t"], _RedisState(raw))

    async def _beat(self, claim: Claim) -> None:
        live = self._names(claim)[2]
        while True:
            await asyncio.sleep(self._live_ttl / 3)
            with contextlib.suppress(Exception):
                await self._redis.set(live, "1", ex=self._live_ttl)

    def _stop_beat(self, claim: Claim) -> None:
        beat = claim.state.heartbeat
        if beat is not None:
            beat.cancel()
            self._beats.discard(beat)

    async def begin(self, claim: Claim, status: int, headers: Headers) -> None:
        record = self._names(claim)[1]
        encoded = orjson.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers])
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(record, {"s": str(status), "h": encoded})
            pipe.expire(record, self._ttl + 60)  # outlives the claim: a claim never names a lost record
            await pipe.execute()

    async def append(self, claim: Claim, chunk: bytes) -> None:
        await self._redis.xadd(self._names(claim)[1], {"c": chunk})

    async def end(self, claim: Claim) -> None:
        self._stop_beat(claim)
        _, record, live = self._names(claim)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(record, {"e": "1"})
            pipe.delete(live)
            await pipe.execute()

    async def release(self, claim: Claim) -> None:
        self._stop_beat(claim)
        await self._release(keys=list(self._names(claim)), args=[claim.state.value])

    async def _read(self, claim: Claim, count: int = 100) -> list[dict[bytes, bytes]] | None:
        """The record's next entries; None when there are none and nobody writes any more."""
        _, record, live = self._names(claim)
        reply = await self._redis.xread({record: claim.state.cursor}, count=count, block=1000)
        if not reply:
            if await self._redis.exists(live):
                return []
            reply = await self._redis.xread({record: claim.state.cursor}, count=count)  # a last look
            if not reply:
                return None
        entries = reply[0][1]
        claim.state.cursor = entries[-1][0].decode() if isinstance(entries[-1][0], bytes) else entries[-1][0]
        return [fields for _, fields in entries]

    async def head(self, claim: Claim) -> tuple[int, Headers] | None:
        while True:
            entries = await self._read(claim, count=1)  # only the head: ``body`` reads on from it
            if entries is None:  # the first's replica died before answering: free the key
                await self._release(keys=list(self._names(claim)), args=[claim.state.value])
                return None
            for fields in entries:
                if b"r" in fields:
                    return None
                if b"s" in fields:
                    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in orjson.loads(fields[b"h"])]
                    return int(fields[b"s"]), headers

    async def body(self, claim: Claim) -> AsyncIterator[bytes]:
        while True:
            entries = await self._read(claim)
            if entries is None:
                return  # its replica died mid-answer: what was recorded is all there is
            for fields in entries:
                if b"c" in fields:
                    yield fields[b"c"]
                elif b"e" in fields or b"r" in fields:
                    return

    async def aclose(self) -> None:
        for beat in list(self._beats):
            beat.cancel()
        await self._redis.aclose()


def build_store(settings: "Settings") -> IdempotencyStore:
    """Redis when configured (any replica replays any record), else memory."""
    if settings.redis_url:
        return RedisIdempotencyStore(settings.redis_url)
    return MemoryIdempotencyStore()
