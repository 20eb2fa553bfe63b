"""The `postwire` command: run the service (dev, server, worker, migrate, keys), show
its effective settings (config) and call it (send, status, events). Client flags
default to POSTWIRE_ADDRESS and POSTWIRE_API_KEY, then to the embedded mode's
.postwire/dev-api-key."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf import json_format
from pydantic_settings import BaseSettings, SettingsConfigDict

from postwire.v1 import event_pb2

if TYPE_CHECKING:  # server-side settings are imported lazily: client commands stay light
    from core.settings import Settings


class ClientSettings(BaseSettings):
    """Where the CLI's client commands connect, and with which key."""

    model_config = SettingsConfigDict(env_prefix="POSTWIRE_", extra="ignore")
    address: str = "127.0.0.1:50051"
    api_key: str = ""


def _server_settings() -> Settings:
    from core.settings import Settings

    return Settings()


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter


# Operator commands ----------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace) -> int:
    from postwire_client.embedded import dev_settings, run_dev

    _logging()
    asyncio.run(run_dev(dev_settings(Path(args.data_dir)), with_envoy=not args.no_envoy))
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from server.app import Server

    _logging()
    settings = _server_settings()

    async def serve() -> None:
        server = Server(settings)
        await server.start()
        print(f"listening on {server.address}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())
    return 0


def _serve_until_signal(run: Callable[[Settings, threading.Event], None]) -> int:
    """Run a blocking service (worker, scheduler) until SIGINT or SIGTERM."""
    _logging()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run(_server_settings(), stop)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.app import run_worker

    return _serve_until_signal(run_worker)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from workers.scheduler import run_scheduler

    return _serve_until_signal(run_scheduler)


def cmd_prune(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from core.db import make_engine
    from core.retention import prune
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
            print(f"pruned {pruned.events} events and {pruned.bodies} bodies")
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from core.migrate import upgrade

    upgrade(_server_settings().database_url)
    print("database schema is up to date")
    return 0


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


def _keys(settings: Settings):  # noqa: ANN202
    from core.db import make_engine
    from core.key_store import KeyStore
    from core.keys import KeyManager

    store = KeyStore(make_engine(settings.database_url))
    return store, KeyManager(store, settings.secret_key.get_secret_value())


def cmd_keys_create(args: argparse.Namespace) -> int:
    from datetime import datetime

    from core.keys import KeyOptions

    settings = _server_settings()

    async def create() -> str:
        store, keys = _keys(settings)
        try:
            account_id = await store.find_or_create_account(args.account)
            _, secret = await keys.create(
                account_id,
                KeyOptions(
                    name=args.name,
                    kind=args.kind,
                    scopes=frozenset(args.scope or ["send", "read", "events"]),
                    expires_at=datetime.fromisoformat(args.expires_at) if args.expires_at else None,
                    send_per_minute=args.send_per_minute,
                    read_per_minute=args.read_per_minute,
                    max_streams=args.max_streams,
                ),
            )
            return secret
        finally:
            await store.close()

    print(asyncio.run(create()))
    print("Store this key now: it is shown only once.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    settings = _server_settings()

    async def listing() -> None:
        store, keys = _keys(settings)
        try:
            for record in await keys.list(await store.find_or_create_account(args.account)):
                state = "revoked" if record.revoked_at else "active"
                print(f"{record.public_id}\t{record.prefix}…\t{record.kind}\t{','.join(sorted(record.scopes))}"
                      f"\t{state}\t{record.name}")
        finally:
            await store.close()

    asyncio.run(listing())
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    settings = _server_settings()

    async def revoke() -> None:
        store, keys = _keys(settings)
        try:
            await keys.revoke(await store.find_or_create_account(args.account), args.key_id)
        finally:
            await store.close()

    asyncio.run(revoke())
    print(f"revoked {args.key_id}")
    return 0


# Client commands ------------------------------------------------------------------------


def _client(args: argparse.Namespace):  # noqa: ANN202
    from postwire_client.sdk import Client

    settings = ClientSettings()
    key = args.api_key or settings.api_key
    dev_key = Path(".postwire/dev-api-key")
    if not key and dev_key.exists():
        key = dev_key.read_text().strip()
    return Client(args.address or settings.address, key)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"{flag} takes NAME=VALUE, got {value!r}")
        out[name] = val
    return out


def _read(value: str | None) -> str:
    """A body flag's value, or a file's contents for @path."""
    if value and value.startswith("@"):
        return Path(value[1:]).read_text()
    return value or ""


def _attachment(spec: str, inline: bool):  # noqa: ANN202
    """PATH[:CONTENT_TYPE] (inline: PATH:CONTENT_ID[:CONTENT_TYPE])."""
    import mimetypes

    from postwire.v1 import email_pb2

    parts = spec.split(":")
    path = Path(parts[0])
    content_id = parts[1] if inline and len(parts) > 1 else ""
    rest = parts[2:] if inline else parts[1:]
    content_type = rest[0] if rest else (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    return email_pb2.Attachment(
        filename=path.name, content_type=content_type, content=path.read_bytes(), content_id=content_id
    )


def _timestamp(value: str | None):  # noqa: ANN202
    from datetime import datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    if not value:
        return None
    ts = Timestamp()
    ts.FromDatetime(datetime.fromisoformat(value))
    return ts


def cmd_send(args: argparse.Namespace) -> int:
    extra = {}
    if args.send_at:
        extra["send_at"] = _timestamp(args.send_at)
    if args.expires_at:
        extra["expires_at"] = _timestamp(args.expires_at)
    with _client(args) as client:
        response = client.send(
            from_address=args.from_address,
            to=args.to,
            cc=args.cc,
            bcc=args.bcc,
            reply_to=args.reply_to or "",
            subject=args.subject or "",
            text_body=_read(args.text),
            html_body=_read(args.html),
            headers=_pairs(args.header, "--header"),
            tags=args.tag,
            metadata=_pairs(args.meta, "--meta"),
            attachments=[_attachment(a, False) for a in args.attach] + [_attachment(a, True) for a in args.inline],
            idempotency_key=args.idempotency_key or "",
            **extra,
        )
    print(response.message_id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.get_status(args.message_id)
    print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.cancel_scheduled(args.message_id)
    print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    types = [event_pb2.EventType.Value(t if t.startswith("EVENT_TYPE_") else f"EVENT_TYPE_{t.upper()}") for t in args.type]
    with _client(args) as client:
        filters = {"message_ids": args.message_id, "types": types, "tags": args.tag, "from_now": args.from_now}
        if args.follow:  # resumes by cursor after disconnects and server restarts
            events = client.follow_events(after=args.after or "", **filters)
        else:
            events = client.stream_events(after=args.after or "", idle_timeout=1.0, **filters)
        try:
            for event in events:
                print(json_format.MessageToJson(event, preserving_proto_field_name=True, indent=None), flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postwire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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

    def client_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--address", default="", help="gRPC address (POSTWIRE_ADDRESS)")
        p.add_argument("--api-key", default="", help="API key (POSTWIRE_API_KEY)")
        return p

    send = client_flags(sub.add_parser("send", help="send an email"))
    send.add_argument("--from", dest="from_address", required=True)
    send.add_argument("--to", action="append", default=[])
    send.add_argument("--cc", action="append", default=[])
    send.add_argument("--bcc", action="append", default=[])
    send.add_argument("--reply-to")
    send.add_argument("--subject")
    send.add_argument("--text", help="plain-text body, or @file")
    send.add_argument("--html", help="HTML body, or @file")
    send.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    send.add_argument("--tag", action="append", default=[])
    send.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    send.add_argument("--attach", action="append", default=[], metavar="PATH[:TYPE]")
    send.add_argument("--inline", action="append", default=[], metavar="PATH:CONTENT_ID[:TYPE]")
    send.add_argument("--send-at", help="ISO 8601 time with offset, e.g. 2026-12-01T09:00:00+00:00")
    send.add_argument("--expires-at", help="ISO 8601 time with offset; undelivered by then → FAILED")
    send.add_argument("--idempotency-key", help="makes retrying this send safe (24 h)")
    send.set_defaults(func=cmd_send)

    cancel = client_flags(sub.add_parser("cancel", help="cancel a scheduled email"))
    cancel.add_argument("message_id")
    cancel.set_defaults(func=cmd_cancel)

    status = client_flags(sub.add_parser("status", help="show an email's status and events"))
    status.add_argument("message_id")
    status.set_defaults(func=cmd_status)

    events = client_flags(sub.add_parser("events", help="print events (NDJSON); --follow to keep streaming"))
    events.add_argument("--follow", action="store_true")
    events.add_argument("--after", help="resume after this cursor")
    events.add_argument("--message-id", action="append", default=[])
    events.add_argument("--type", action="append", default=[], help="e.g. sent, bounced")
    events.add_argument("--tag", action="append", default=[], help="only emails with this tag")
    events.add_argument("--from-now", action="store_true", help="skip stored events")
    events.set_defaults(func=cmd_events)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        from postwire_client.sdk import PostwireError

        if isinstance(exc, PostwireError):
            print(f"error: {exc.code.name}: {exc.message}", file=sys.stderr)
            for field, description in exc.violations:
                print(f"  {field}: {description}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
