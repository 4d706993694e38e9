"""The ``hubbub`` command: ``serve`` (more subcommands arrive with their issues)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
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
    for name in ("host", "port", "data_dir", "database_url", "redis_url"):
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    if getattr(args, "config", None):
        given["config_file"] = args.config
    if getattr(args, "insecure", False):
        given["insecure"] = True
    return Settings(**given)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hubbub.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not _is_loopback(settings.host) and not settings.insecure:
        # Auth arrives with API keys; until a key exists the server is open, so it stays on loopback.
        print(
            f"hubbub: refusing to listen on {settings.host} with no API keys configured: anyone could use it.\n"
            "Create a key (hubbub keys create --name NAME) or pass --insecure to serve it open anyway.",
            file=sys.stderr,
        )
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"hubbub {__version__}: listening on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=30,
    )
    return 0


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
    p.set_defaults(func=serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
