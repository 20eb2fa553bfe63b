"""Stopping and starting this machine's real PostgreSQL, RabbitMQ and Redis (see
/work/shared/NOTES.md). Every `stop` here is paired with a `start` in a `finally` by the
callers, and `ensure_all()` brings back anything found down and waits until each
service answers: the rest of the suite, and the developers' machine, depend on them."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pika
import redis

from tests.support.stack import AMQP

WAIT = 90.0  # seconds a service gets to come back


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def _until(what: str, check, timeout: float = WAIT, interval: float = 0.2) -> float:  # type: ignore[no-untyped-def]
    """Poll `check()` until true; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not come back within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - started


# PostgreSQL -------------------------------------------------------------------------------


def pg_version() -> str:
    """The cluster version that has a `main` cluster under /etc/postgresql (newest)."""
    versions = sorted((p.parent.name for p in Path("/etc/postgresql").glob("*/main")), key=lambda v: [int(x) for x in v.split(".")])
    if not versions:
        raise AssertionError("no PostgreSQL cluster under /etc/postgresql")
    return versions[-1]


def pg_ready() -> bool:
    return _run("pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", timeout=10).returncode == 0


def restart_postgres() -> None:
    """A real restart, fast mode: every connection is cut."""
    result = _run("pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "restart", "-m", "fast", timeout=90)
    if result.returncode != 0:
        raise AssertionError(f"pg_ctlcluster restart failed: {result.stdout}{result.stderr}")


def ensure_postgres() -> None:
    if not pg_ready():
        _run("pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "start", timeout=90)
    _until("PostgreSQL (pg_isready)", pg_ready)


# RabbitMQ ---------------------------------------------------------------------------------


def _amqp_ok() -> bool:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP + "?connection_attempts=1&socket_timeout=2"))
    except Exception:
        return False
    connection.close()
    return True


def rabbit_stop_app() -> None:
    """Stops the RabbitMQ application (every connection closes); the Erlang node stays,
    durable queues and persistent messages stay on disk."""
    result = _run("rabbitmqctl", "-q", "stop_app")
    if result.returncode != 0:
        raise AssertionError(f"rabbitmqctl stop_app failed: {result.stdout}{result.stderr}")


def rabbit_start_app() -> None:
    _run("rabbitmqctl", "-q", "start_app")


def ensure_rabbitmq() -> None:
    """start_app (a no-op when running), or boot the node if it is gone; then wait for
    await_startup and a real AMQP connection."""
    if _run("rabbitmqctl", "-q", "start_app").returncode != 0 and not _amqp_ok():
        # The node itself is down (exit 69: not registered with epmd): boot it.
        _run("rabbitmq-server", "-detached")
    _until("RabbitMQ (await_startup)", lambda: _run("rabbitmqctl", "-q", "await_startup", timeout=30).returncode == 0, interval=1.0)
    _until("RabbitMQ (AMQP connect)", _amqp_ok)


# Redis ------------------------------------------------------------------------------------


def redis_ping() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def redis_shutdown() -> None:
    _run("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
    _until("Redis shutdown", lambda: not _tcp_open(6379), timeout=15, interval=0.05)


def redis_start() -> None:
    """Exactly the command of /work/shared/NOTES.md."""
    _run("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no")


def ensure_redis() -> None:
    if not redis_ping():
        redis_start()
    _until("Redis (PING)", redis_ping)


def ensure_all() -> None:
    """Bring back whatever is down and wait until all three answer."""
    errors = []
    for ensure in (ensure_postgres, ensure_rabbitmq, ensure_redis):
        try:
            ensure()
        except Exception as exc:  # try the others anyway
            errors.append(f"{ensure.__name__}: {exc}")
    if errors:
        raise AssertionError("services not back: " + "; ".join(errors))
