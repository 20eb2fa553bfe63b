"""The operator commands of `postwire`: run the service (dev, server, worker,
scheduler), manage it (migrate, keys, prune), inspect it (config, check).

The `postwire` command itself is the client SDK's (postwire_client.cli: send, status,
cancel, events). This package registers its commands there through the entry point
group `postwire.commands` (pyproject.toml), so installing the service adds them and the
SDK never imports the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from postwire_service import account_commands, inbound_command, submission_command

if TYPE_CHECKING:  # server-side settings are imported lazily: client commands stay light
    from core.settings import Settings

__all__ = ["main", "register"]

T = TypeVar("T")


def _server_settings() -> Settings:
    from core.settings import Settings

    return Settings()


def _serving_settings() -> Settings:
    """Settings for server, worker and scheduler: they refuse to start with a missing,
    empty or weak POSTWIRE_SECRET_KEY (`postwire dev` makes and keeps its own)."""
    from pydantic import ValidationError

    from postwire_service.check import (
        GENERATE_HINT,
        secret_key_problem,
        settings_errors,
    )

    try:
        settings = _server_settings()
    except ValidationError as exc:
        raise SystemExit("error: " + "\nerror: ".join(settings_errors(exc))) from None
    problem = secret_key_problem(settings.secret_key.get_secret_value())
    if problem:
        raise SystemExit(f"error: POSTWIRE_SECRET_KEY {problem}; {GENERATE_HINT}")
    return settings


def _logging() -> None:
    """POSTWIRE_LOG_FORMAT and POSTWIRE_LOG_LEVEL (core/observability/logs.py). Only those two are read
    here: the command builds, and checks, the full settings itself."""
    from pydantic import ValidationError

    from core.observability.logs import setup_logging
    from core.settings import Settings

    try:
        settings = Settings(secret_key="not-needed-for-logging")  # type: ignore[arg-type]
        setup_logging(settings.log_format, settings.log_level)
    except ValidationError:  # the command's own settings check names the culprit
        setup_logging()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter


# Operator commands ----------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace) -> int:
    from postwire_service.embedded import dev_settings, run_dev

    _logging()
    asyncio.run(run_dev(dev_settings(Path(args.data_dir)), with_envoy=not args.no_envoy))
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from server.main import run_server

    settings = _serving_settings()
    _logging()
    run_server(settings, _logging)
    return 0


def _serve_until_signal(run: Callable[[Settings, threading.Event], None]) -> int:
    """Run a blocking service (worker, scheduler) until SIGINT or SIGTERM."""
    settings = _serving_settings()
    _logging()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run(settings, stop)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.app import run_worker

    return _serve_until_signal(run_worker)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run_scheduler

    return _serve_until_signal(run_scheduler)


def cmd_prune(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from core.events.retention import prune
    from core.storage.db import make_engine
    from core.times import utcnow

    settings = _server_settings()
    events_age = timedelta(seconds=args.events_older_than) if args.events_older_than is not None else timedelta(
        days=settings.events_retention_days
    )
    bodies_age = timedelta(seconds=args.bodies_older_than) if args.bodies_older_than is not None else timedelta(
        days=settings.body_retention_days
    )

    async def run() -> None:
        engine = make_engine(settings.database_url)
        try:
            now = utcnow()
            pruned = await prune(engine, now - events_age, now - bodies_age)
            print(f"pruned {pruned.events} events, {pruned.bodies} bodies and {pruned.reports} inbound reports")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.storage.migrate import upgrade

    upgrade(_server_settings().database_url)
    print("database schema is up to date")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from postwire_service.check import main

    return main(args)


def cmd_config(args: argparse.Namespace) -> int:
    """Print the settings the server, worker and scheduler would run with, secrets masked."""
    from pydantic import ValidationError

    try:
        settings = _server_settings()
    except ValidationError as exc:
        for error in exc.errors():
            field, *inner = (str(part) for part in error["loc"])
            where = f" [{'.'.join(inner)}]" if inner else ""
            print(f"error: POSTWIRE_{field.upper()}{where}: {error['msg']}", file=sys.stderr)
        return 2
    for name, value in settings.masked().items():
        print(f"{name}={value}")
    return 0


async def on_keys(database_url: str, secret_key: str, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run `work(key_store, key_manager)` on that database, then close it (the keys
    commands, and tests/support/keys.py for the stacks it makes keys on)."""
    from core.keys.manager import KeyManager
    from core.keys.store import KeyStore
    from core.storage.db import make_engine

    store = KeyStore(make_engine(database_url))
    try:
        return await work(store, KeyManager(store, secret_key))
    finally:
        await store.close()


def _with_keys(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run `work(key_store, key_manager)` on the configured database, then close it."""
    settings = _server_settings()
    return asyncio.run(on_keys(settings.database_url, settings.secret_key.get_secret_value(), work))


def key_creator(args: argparse.Namespace) -> Callable[[Any, Any], Awaitable[str]]:
    """What `postwire keys create` does with its arguments, as `on_keys` work: returns the key."""
    from datetime import datetime

    from core.keys.manager import KeyOptions

    options = KeyOptions(
        name=args.name,
        kind=args.kind,
        scopes=frozenset(args.scope or ["send", "read", "events"]),
        expires_at=datetime.fromisoformat(args.expires_at) if args.expires_at else None,
        send_per_minute=args.send_per_minute,
        read_per_minute=args.read_per_minute,
        max_streams=args.max_streams,
    )

    async def create(store: Any, keys: Any) -> str:
        _, secret = await keys.create(await store.find_or_create_account(args.account), options)
        return str(secret)

    return create


def cmd_keys_create(args: argparse.Namespace) -> int:
    print(_with_keys(key_creator(args)))
    print("Store this key now: it is shown only once.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    async def listing(store: Any, keys: Any) -> None:
        for record in await keys.list(await store.find_or_create_account(args.account)):
            state = "revoked" if record.revoked_at else "active"
            print(f"{record.public_id}\t{record.prefix}…\t{record.kind}\t{','.join(sorted(record.scopes))}"
                  f"\t{state}\t{record.name}")

    _with_keys(listing)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async def revoke(store: Any, keys: Any) -> None:
        await keys.revoke(await store.find_or_create_account(args.account), args.key_id)

    _with_keys(revoke)
    print(f"revoked {args.key_id}")
    return 0


def register(sub: Any) -> None:
    """Add the operator commands to the `postwire` command's subparsers."""
    dev = sub.add_parser("dev", help="run everything in one process (SQLite, local SMTP capture)")
    dev.add_argument("--data-dir", default=".postwire")
    dev.add_argument("--no-envoy", action="store_true", help="do not start Envoy on :8080")
    dev.set_defaults(func=cmd_dev)
    sub.add_parser("server", help="run a gRPC server (POSTWIRE_* settings)").set_defaults(func=cmd_server)
    sub.add_parser("worker", help="run a delivery worker (POSTWIRE_* settings)").set_defaults(func=cmd_worker)
    sub.add_parser("scheduler", help="run the scheduler: retries, scheduled sends, recovery").set_defaults(
        func=cmd_scheduler
    )
    prune_cmd = sub.add_parser("prune", help="apply the retention policy now (the scheduler does it every 10 min)")
    prune_cmd.add_argument("--events-older-than", type=float, metavar="SECONDS", help="override the event retention")
    prune_cmd.add_argument("--bodies-older-than", type=float, metavar="SECONDS", help="override the body retention")
    prune_cmd.set_defaults(func=cmd_prune)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(func=cmd_migrate)
    sub.add_parser(
        "config", help="print the effective POSTWIRE_* settings (NAME=value, secrets masked)"
    ).set_defaults(func=cmd_config)
    check = sub.add_parser(
        "check", help="check the deployment: database schema, RabbitMQ, Redis, SMTP relays, secret key (exit 1 on failure)"
    )
    from postwire_service.check import add_arguments

    add_arguments(check)
    check.set_defaults(func=cmd_check)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create an API key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--account", default="default", help="account name (created if missing)")
    create.add_argument("--kind", default="live", choices=["live", "test"], help="test: nothing reaches SMTP")
    create.add_argument("--scope", action="append", choices=["send", "read", "events", "admin"],
                        help="repeatable; default send, read and events")
    create.add_argument("--expires-at", help="ISO 8601 time with offset")
    create.add_argument("--send-per-minute", type=int)
    create.add_argument("--read-per-minute", type=int)
    create.add_argument("--max-streams", type=int)
    create.set_defaults(func=cmd_keys_create)
    listing = keys.add_parser("list", help="list an account's keys (never their secrets)")
    listing.add_argument("--account", default="default")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its id (key_...)")
    revoke.add_argument("key_id")
    revoke.add_argument("--account", default="default")
    revoke.set_defaults(func=cmd_keys_revoke)
    account_commands.register(sub)  # postwire accounts ...
    inbound_command.register(sub)  # postwire inbound
    submission_command.register(sub)  # postwire submission


def main(argv: list[str] | None = None) -> int:
    """`python -m postwire_service ...`: the same as `postwire ...`."""
    from postwire_client.cli import main as postwire

    return postwire(argv)


if __name__ == "__main__":
    sys.exit(main())
