"""gRPC health that follows the dependencies a server cannot work without.

A background task probes PostgreSQL (a fresh connection and `SELECT 1`) and RabbitMQ
(a fresh AMQP connection) every `health_check_interval` seconds, each within
`health_check_timeout`. While either cannot be reached, the overall health ("") and
every service report NOT_SERVING, so a load balancer or orchestrator that watches
gRPC health stops routing here; once both answer again they report SERVING. Each
change is logged once. The embedded mode's stub broker has nothing to probe.

The probes are also used by `postwire check`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

import pika
from grpc_health.v1 import health, health_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.settings import Settings

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Probe(Protocol):
    """Raises when the dependency cannot be reached within the probe's timeout."""

    async def __call__(self) -> None: ...

    async def close(self) -> None: ...


def describe(exc: BaseException) -> str:
    """A one-line reason: the exception's type and message (or its cause's; the driver's
    error rather than SQLAlchemy's wrapper)."""
    while exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    message = " ".join(str(exc).split()) or "no answer"
    return f"{type(exc).__name__}: {message}"[:300]


class DatabaseProbe:
    """Opens a new connection each time (never one from the server's busy pool)."""

    def __init__(self, url: str, timeout: float) -> None:
        connect_args = {} if url.startswith("sqlite") else {"connect_timeout": max(1, round(timeout))}
        self.engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
        self.timeout = timeout

    async def __call__(self) -> None:
        await asyncio.wait_for(self._select_one(), self.timeout)

    async def _select_one(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def broker_connect(url: str, timeout: float) -> pika.BlockingConnection:
    """A new AMQP connection with every pika timeout bounded by `timeout` (blocking)."""
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.retry_delay = 0
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.blocked_connection_timeout = timeout
    return pika.BlockingConnection(params)


class BrokerProbe:
    """Opens (and closes) a new AMQP connection: TCP, handshake and login."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    async def __call__(self) -> None:
        await asyncio.wait_for(asyncio.to_thread(self._connect_and_close), self.timeout + 1)

    def _connect_and_close(self) -> None:
        broker_connect(self.url, self.timeout).close()

    async def close(self) -> None:
        pass


class HealthMonitor:
    """Keeps `servicer`'s statuses for "" and `services` in step with the probes."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        services: Sequence[str],
        probes: dict[str, Probe],
        interval: float,
    ) -> None:
        self.servicer = servicer
        self.names = ("", *services)
        self.probes = probes
        self.interval = interval
        self.down: dict[str, str] = {}  # dependency -> why it is unreachable
        self.status: int | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, servicer: health.aio.HealthServicer, services: Sequence[str]) -> HealthMonitor:
        timeout = settings.health_check_timeout
        probes: dict[str, Probe] = {"PostgreSQL": DatabaseProbe(settings.database_url, timeout)}
        if not settings.broker_url.startswith("stub://"):
            probes["RabbitMQ"] = BrokerProbe(settings.broker_url, timeout)
        return cls(servicer, services, probes, settings.health_check_interval)

    async def check(self) -> int:
        """Probe every dependency once, update the statuses, log what changed."""
        results = await asyncio.gather(*(self._run(p) for p in self.probes.values()))
        went_down, came_back = [], []
        for name, problem in zip(self.probes, results):
            if problem and name not in self.down:
                went_down.append(f"{name} unreachable ({problem})")
            elif not problem and name in self.down:
                came_back.append(f"{name} reachable again")
            if problem:
                self.down[name] = problem
            else:
                self.down.pop(name, None)
        status = NOT_SERVING if self.down else SERVING
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        for change in went_down:
            log.warning("health: %s: %s", change, name)
        for change in came_back:
            log.info("health: %s: %s", change, name)
        if status != self.status:
            for service in self.names:
                await self.servicer.set(service, status)
            self.status = status
        return status

    @staticmethod
    async def _run(probe: Probe) -> str | None:
        try:
            await probe()
        except Exception as exc:  # any failure to reach it is the answer
            return describe(exc)
        return None

    async def start(self) -> None:
        """The first check now (so a server never claims SERVING unchecked), then more."""
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="postwire-health")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # never let the monitor die: the statuses would freeze
                log.exception("health check failed")

    async def stop(self) -> None:
        """Stop probing and report NOT_SERVING from now on (the server is going away)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.servicer.enter_graceful_shutdown()
        for probe in self.probes.values():
            await probe.close()
