"""The ``hubbub`` command: ``serve`` (more subcommands arrive with their issues)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import sys
from pathlib import Path
from typing import Any

from hubbub import __version__


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings(args: argparse.Namespace) -> Any:
    from hubbub.settings import Settings

    given: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "database_url", "redis_url", "log_format"):
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    if getattr(args, "config", None):
        given["config_file"] = args.config
    if getattr(args, "insecure", False):
        given["insecure"] = True
    return Settings(**given)


async def _with_keys(settings: Any, action: Any) -> Any:
    """Run ``action(KeyRepository)`` against the configured database (migrated first)."""
    from hubbub.storage.db import create_engine, migrate
    from hubbub.storage.keys import KeyRepository

    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        return await action(KeyRepository(engine))
    finally:
        await engine.dispose()


def keys(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.keys_command == "create":
        async def create(repo: Any) -> Any:
            return await repo.create(args.name, admin=args.admin, rpm=args.rpm, tpm=args.tpm,
                                     daily_tokens=args.daily_tokens)

        key, plaintext = asyncio.run(_with_keys(settings, create))
        print(plaintext)
        print(f"created {'admin' if key.is_admin else 'user'} key {key.id} ({key.name}); "
              "the key above is shown only now", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        async def list_(repo: Any) -> Any:
            return await repo.list()

        for key in asyncio.run(_with_keys(settings, list_)):
            state = "revoked" if key.revoked_at else "active"
            limits = f"rpm={key.rpm} tpm={key.tpm} daily={key.daily_tokens}"
            print(f"{key.id}\t{key.prefix}…\t{'admin' if key.is_admin else 'user'}\t{state}\t{key.name}\t{limits}")
        return 0

    async def revoke(repo: Any) -> Any:
        return await repo.revoke(args.id)

    if not asyncio.run(_with_keys(settings, revoke)):
        print(f"hubbub: no active key {args.id}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}", file=sys.stderr)
    return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hubbub.app import create_app
    from hubbub.http.server import uvicorn_config
    from hubbub.logs import configure

    settings = _settings(args)
    configure(settings.log_level, settings.log_format)

    async def count(repo: Any) -> Any:
        return await repo.active_count()

    if not _is_loopback(settings.host) and not settings.insecure and asyncio.run(_with_keys(settings, count)) == 0:
        # With no key the server is open to anyone who can reach it: loopback only.
        print(
            f"hubbub: refusing to listen on {settings.host} with no API keys configured: anyone could use it.\n"
            "Create a key (hubbub keys create --name NAME) or pass --insecure to serve it open anyway.",
            file=sys.stderr,
        )
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"hubbub {__version__}: listening on http://{settings.host}:{settings.port}", flush=True)
    app = create_app(settings)
    grace = settings.shutdown_grace_seconds

    class Server(uvicorn.Server):
        """uvicorn, tuned for a long-running server process, ending stored-chat turns from the moment a shutdown begins.

        uvicorn's own shutdown stops accepting, waits for open responses, and only then runs
        the app's lifespan shutdown; a builder stream stays open as long as its turn runs, so
        the turns must be drained alongside that wait, not after it: they get ``grace``
        seconds, the rest end ``interrupted`` and their streams end with ``done``."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # Everything loaded so far (the app, the model, the libraries) lives as long as the
            # process: move it out of the collector's sight, and collect the young generation
            # less often. The collector was 20-25% of the CPU of a proxied request (bench/overhead.py).
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 100)

        async def shutdown(self, sockets: Any = None) -> None:
            container = getattr(app.state, "container", None)
            drain = asyncio.ensure_future(container.turns.shutdown(grace)) if container is not None else None
            try:
                await super().shutdown(sockets)
            finally:
                if drain is not None:
                    await drain

    # A little longer than ``grace``: the drained turns' last events reach their clients before
    # uvicorn cancels whatever still runs (stateless streams get the same grace, plus this margin).
    # The rest of uvicorn's configuration (logging, slow-client and WebSocket limits): http/server.py.
    Server(uvicorn_config(app, settings, timeout_graceful_shutdown=int(grace) + 2)).run()
    return 0


def ingest(args: argparse.Namespace) -> int:
    from hubbub.rag.cli import ingest_paths

    failed = asyncio.run(ingest_paths(_settings(args), args.paths, args.owner))
    return 1 if failed else 0


def _limit(text: str) -> int:
    """A key's limit: 1 .. 2^31 - 1 (what ``POST /api/keys`` takes; the column is 32 bits)."""
    from hubbub.api.admin import LIMIT_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"must be between 1 and {LIMIT_MAX}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description="A self-hosted chat API server.")
    parser.add_argument("--version", action="version", version=f"hubbub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the HTTP server")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; env HUBBUB_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000; env HUBBUB_PORT)")
    p.add_argument("--data-dir", type=Path, help="where SQLite and other state live (default ./data)")
    p.add_argument("--config", type=Path, help="TOML config file (default ./hubbub.toml if present)")
    p.add_argument("--database-url", help="e.g. postgresql://user@host/db (default SQLite in the data dir)")
    p.add_argument("--redis-url", help="e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address with no API keys")
    p.add_argument("--log-format", choices=("auto", "json", "text"),
                   help="log lines as JSON objects or text (default auto: text on a terminal, else JSON)")
    p.set_defaults(func=serve)

    k = sub.add_parser("keys", help="manage API keys")
    k.add_argument("--data-dir", type=Path, help="data dir of the server (SQLite)")
    k.add_argument("--config", type=Path, help="TOML config file")
    k.add_argument("--database-url", help="the server's database")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key and print it (once)")
    kc.add_argument("--name", required=True)
    kc.add_argument("--admin", action="store_true", help="an admin key sees and manages everything")
    kc.add_argument("--rpm", type=_limit, help="requests per minute")
    kc.add_argument("--tpm", type=_limit, help="tokens per minute (prompt + completion)")
    kc.add_argument("--daily-tokens", type=_limit, help="tokens per UTC day")
    ksub.add_parser("list", help="list keys (never the keys themselves)")
    kr = ksub.add_parser("revoke", help="revoke a key")
    kr.add_argument("id")
    k.set_defaults(func=keys)

    i = sub.add_parser("ingest", help="add files or folders (txt, md, html, pdf, json) to the document index")
    i.add_argument("paths", nargs="+", type=Path)
    i.add_argument("--owner", help="API key id that will own the documents (default: admin-only)")
    i.add_argument("--data-dir", type=Path, help="data dir of the server (SQLite)")
    i.add_argument("--config", type=Path, help="TOML config file")
    i.add_argument("--database-url", help="the server's database")
    i.set_defaults(func=ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
