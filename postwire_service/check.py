"""`postwire check`: is this deployment ready? One line per check, with the effective
POSTWIRE_* settings (the ones `postwire server`, `worker` and `scheduler` would use):

    ok    secret key: 64 characters
    ok    postgresql: reachable (PostgreSQL 15.10), schema at head 0005
    FAIL  rabbitmq: queue postwire.deliver not declared (no server or worker has connected yet)
    skip  redis: not configured (per-process rate limits)
    ok    smtp relay smtp.example.com:587: EHLO, STARTTLS and AUTH accepted
    ok    server 127.0.0.1:50051: SERVING

`--json` prints the same as one JSON object. The exit status is 1 when any check
failed, 0 otherwise. Also home of the secret-key rule the long-running processes
enforce at start-up (`secret_key_problem`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

    from core.settings import RelaySettings, Settings

MIN_SECRET_LENGTH = 32
# Low enough that a random hex value never trips it (32 hex characters show fewer than 6
# distinct ones about once in 10^12 draws; fewer than 10, about once in 10,000).
MIN_DISTINCT_CHARACTERS = 6
# Values copied from examples and templates instead of generated.
PLACEHOLDERS = ("changeme", "replaceme", "yoursecret", "secretkey", "password", "example", "xxxxxxxx")
GENERATE_HINT = "generate one with: openssl rand -hex 32"


def secret_key_problem(secret: str) -> str | None:
    """Why POSTWIRE_SECRET_KEY is too weak to run with, or None when it is fine."""
    if not secret.strip():
        return "is empty"
    squashed = re.sub(r"[^a-z0-9]", "", secret.lower())
    for placeholder in PLACEHOLDERS:
        if placeholder in squashed:
            return f"is a placeholder (contains {placeholder!r}), not a random value"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is too short ({len(secret)} characters; at least {MIN_SECRET_LENGTH})"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return f"is not random (only {len(set(secret))} distinct characters)"
    period = repeating_unit(secret)
    if period:
        return f"is not random (the same {period} characters repeated)"
    return None


def repeating_unit(text: str) -> int:
    """The length of the shortest unit `text` repeats (0 when it repeats none): the
    "01234567" in "0123456701234567012345670123".."""
    for period in range(1, len(text) // 2 + 1):
        if text[period:] == text[:-period]:
            return period
    return 0


def settings_errors(exc: ValidationError) -> list[str]:
    """`POSTWIRE_NAME [inner.path]: message` for each invalid or missing setting."""
    lines = []
    for error in exc.errors():
        field, *inner = (str(part) for part in error["loc"])
        where = f" [{'.'.join(inner)}]" if inner else ""
        lines.append(f"POSTWIRE_{field.upper()}{where}: {error['msg']}")
    return lines


@dataclass
class Result:
    name: str
    status: str  # ok, fail, skip
    detail: str


class Failed(Exception):
    """A check's failure; the message is the reason shown."""


def _reason(exc: BaseException) -> str:
    from server.health import describe

    return exc.args[0] if isinstance(exc, Failed) else describe(exc)


# The checks: each returns its detail line or raises (Failed or whatever went wrong) ---


def check_secret(settings: Settings) -> str:
    problem = secret_key_problem(settings.secret_key.get_secret_value())
    if problem:
        raise Failed(f"POSTWIRE_SECRET_KEY {problem}; {GENERATE_HINT}")
    return f"{len(settings.secret_key.get_secret_value())} characters"


def check_database(settings: Settings, timeout: float) -> str:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from core.storage.db import sync_url
    from core.storage.migrate import alembic_config

    url = sync_url(settings.database_url)
    connect_args = {} if settings.is_sqlite else {"connect_timeout": max(1, round(timeout))}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            version = "SQLite" if settings.is_sqlite else str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    where = f"reachable ({version if settings.is_sqlite else f'PostgreSQL {version}'})"
    if not current:
        raise Failed(f"{where}, but no schema: run `postwire migrate`")
    if current != heads:
        raise Failed(f"{where}, schema at {', '.join(sorted(current))} but the code needs "
                     f"{', '.join(sorted(heads))}: run `postwire migrate`")
    return f"{where}, schema at head {', '.join(sorted(heads))}"


def check_broker(settings: Settings, timeout: float) -> str:
    import pika.exceptions

    from core.delivery.queue import deliver_queue, webhook_queue
    from server.health import broker_connect

    connection = broker_connect(settings.broker_url, timeout)
    try:
        queues = []
        for queue in (deliver_queue(settings), webhook_queue(settings)):
            channel = connection.channel()
            try:
                declared = channel.queue_declare(queue, passive=True).method
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code == 404:
                    raise Failed(f"reachable, but queue {queue} is not declared "
                                 "(declared when a worker or server first connects)") from None
                raise
            consumers = declared.consumer_count
            queues.append(f"{queue}: {declared.message_count} ready, {consumers} consumer{'s' * (consumers != 1)}"
                          + ("" if consumers else " (is a worker running?)"))
            channel.close()
    finally:
        connection.close()
    return "reachable; " + "; ".join(queues)


def check_redis(settings: Settings, timeout: float) -> str:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    finally:
        client.close()
    return f"reachable (Redis {version})"


def check_relay(relay: RelaySettings, timeout: float) -> str:
    """The connection set-up the workers do (workers/delivery/pool.py), then QUIT."""
    from workers.delivery.pool import RelayPool

    async def probe() -> None:
        pool = RelayPool(relay.model_copy(update={"timeout": min(relay.timeout, timeout)}),
                         size=1, max_messages=1, idle_timeout=1)
        conn = await pool.acquire()
        await pool.release(conn, reusable=True)  # max_messages=1: QUIT

    asyncio.run(asyncio.wait_for(probe(), timeout * 4))
    steps = ["EHLO"] + (["STARTTLS"] if relay.tls == "starttls" else []) + (["AUTH"] if relay.username else [])
    tls = " over TLS" if relay.tls == "implicit" else ""
    return f"{', '.join(steps[:-1]) + ' and ' if len(steps) > 1 else ''}{steps[-1]} accepted{tls}"


def check_server(address: str, timeout: float) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from server.app import SERVICE_NAMES

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        not_serving = []
        for service in ("", *SERVICE_NAMES):
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise Failed(f"unreachable: {exc.code().name}: {exc.details()}") from None
                status = "unknown service"
            if status != "SERVING":
                not_serving.append(f"{service or 'overall'} {status}")
    if not_serving:
        raise Failed("; ".join(not_serving) + " (see the server's log for the unreachable dependency)")
    return "SERVING"


# Running them ------------------------------------------------------------------------


def check_dns(settings: Settings) -> str:
    """The resolver direct-to-MX delivery uses answers (an MX lookup of the sending host's
    own domain, which may well have none: any answer, NXDOMAIN included, will do)."""
    from core.domains.resolver import PermanentDnsError, Resolver

    resolver = Resolver.from_settings(settings, cache=False)
    domain = settings.sending_hostname().partition(".")[2] or settings.sending_hostname()
    try:
        hosts = asyncio.run(resolver.mail_hosts(domain))
    except PermanentDnsError:
        hosts = []
    servers = ", ".join(settings.dns_servers) or "the system resolver"
    return f"{servers} answers (MX of {domain}: {', '.join(hosts) or 'none'}); EHLO as {settings.sending_hostname()}"


def run_checks(settings: Settings, server: str = "", timeout: float = 5.0) -> list[Result]:
    checks: list[tuple[str, Callable[[], str] | str]] = [
        ("secret key", lambda: check_secret(settings)),
        ("postgresql" if not settings.is_sqlite else "database", lambda: check_database(settings, timeout)),
    ]
    if settings.broker_url.startswith("stub://"):
        checks.append(("rabbitmq", "not used (in-process stub broker)"))
    else:
        checks.append(("rabbitmq", lambda: check_broker(settings, timeout)))
    if settings.redis_url:
        checks.append(("redis", lambda: check_redis(settings, timeout)))
    else:
        checks.append(("redis", "not configured (per-process rate limits)"))
    if settings.delivery_route == "mx":
        checks.append(("dns", lambda: check_dns(settings)))
    else:
        for relay in settings.relays():
            checks.append((f"smtp relay {relay.name}", lambda relay=relay: check_relay(relay, timeout)))  # type: ignore[misc]
    if server:
        checks.append((f"server {server}", lambda: check_server(server, timeout)))
    results = []
    for name, check in checks:
        if isinstance(check, str):
            results.append(Result(name, "skip", check))
            continue
        try:
            results.append(Result(name, "ok", check()))
        except Exception as exc:  # the reason is the answer
            results.append(Result(name, "fail", _reason(exc)))
    return results


def report(results: list[Result], as_json: bool) -> int:
    failed = any(r.status == "fail" for r in results)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(r) for r in results]}, indent=2))
    else:
        for r in results:
            print(f"{'FAIL' if r.status == 'fail' else r.status:<5} {r.name}: {r.detail}", flush=True)
    return 1 if failed else 0


def main(args: argparse.Namespace) -> int:
    """The `postwire check` command."""
    import logging

    from pydantic import ValidationError

    from core.settings import Settings

    logging.basicConfig(level=logging.CRITICAL)  # pika and aiosmtplib narrate their failures
    try:
        settings = Settings()
    except ValidationError as exc:
        return report([Result("settings", "fail", line) for line in settings_errors(exc)], args.json)
    return report(run_checks(settings, args.server, args.timeout), args.json)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="", metavar="ADDR", help="also check a running server's gRPC health")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per check (default 5)")


if __name__ == "__main__":  # python -m postwire_service.check
    parser = argparse.ArgumentParser(prog="postwire check", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
