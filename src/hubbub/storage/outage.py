"""Which failures mean "a backend is down" (a 503 to retry), as opposed to a bug (a 500).

The database (SQLite, PostgreSQL) and Redis raise their own exceptions when they cannot be
reached, and SQLAlchemy wraps some of them; ``unavailable`` looks through an exception and
its causes for one of those and names the backend. The route class (``http/routing.py``)
renders it as a 503 in the route's dialect shape, and ``/readyz`` reports the same backends
(``api/ops.py``). docs/security.md lists the cases.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Iterator

from hubbub.errors import Unavailable

# OSErrors that say "the other side is not there": refused, reset, unreachable, timed out.
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                   errno.ENETUNREACH, errno.ETIMEDOUT, errno.EPIPE, errno.ENOTCONN}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        node = node.__cause__ or node.__context__


def _database(exc: BaseException) -> bool:
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError)):
        return True  # OperationalError: "database is locked", a dropped or refused connection
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError,
                            asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                            asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                            asyncpg.InterfaceError))


def _redis(exc: BaseException) -> bool:
    from redis import exceptions as r

    return isinstance(exc, (r.ConnectionError, r.TimeoutError, r.BusyLoadingError))


def unavailable(exc: BaseException) -> Unavailable | None:
    """The ``Unavailable`` error ``exc`` stands for (database or Redis unreachable), else None."""
    for node in _chain(exc):
        if _redis(node):
            return Unavailable("Redis server")
        if _database(node):
            return Unavailable("database")
    for node in _chain(exc):
        # Raised bare while connecting (asyncpg and redis-py open sockets themselves): which
        # backend it was shows in the traceback.
        if isinstance(node, (ConnectionError, asyncio.TimeoutError)) or (
                isinstance(node, OSError) and node.errno in _NETWORK_ERRNOS):
            return Unavailable(_backend_in(node) or "database or Redis server")
    return None


def _backend_in(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "aiosqlite", "sqlalchemy")):
            return "database"
        if module.startswith("redis"):
            return "Redis server"
        tb = tb.tb_next
    return None
