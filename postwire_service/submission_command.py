"""`postwire submission`: the SMTP submission listener (server/submission.py), composed
from the settings with the same accept path and rate limiter as the gRPC server
(server/composition.py). `postwire dev` runs it in-process (postwire_service/embedded.py).

With POSTWIRE_SUBMISSION_PROCESSES=N (default 1) the command starts N listener
processes sharing the ports (SO_REUSEPORT) and supervises them like `postwire server`
(postwire_service/processes.py): one Python process uses about one core. Each process
has its own pools; each serves metrics on POSTWIRE_SUBMISSION_METRICS_PORT + its index."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the command runs: the client commands stay light
    from multiprocessing.synchronize import Event

    import dramatiq

    from core.settings import Settings


class SubmissionService:
    """The listener, its database engine, publisher, limiter and metrics, on one event loop."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker) -> None:
        from core.delivery.queue import Publisher
        from core.domains.senders import VerifiedSenders
        from core.domains.store import DomainStore
        from core.emails.store import Store
        from core.keys.manager import KeyManager
        from core.keys.store import KeyStore
        from core.observability.metrics import MetricsEndpoint
        from postwire_service.listeners import Backing
        from server.composition import (
            email_service,
            rate_defaults,
            rate_limiters,
            send_limits,
        )
        from server.submission import SubmissionHandler, SubmissionListener, tls_context

        self.settings = settings
        tls = None  # first: a certificate that does not load opens nothing
        if settings.submission_tls_cert:
            tls = tls_context(settings.submission_tls_cert, settings.submission_tls_key or settings.submission_tls_cert)
        self.backing = Backing(settings, broker, Publisher)
        engine = self.backing.engine
        self.publisher = self.backing.publisher
        self.store = Store(engine)
        self.service = email_service(settings, engine, self.store, self.publisher, VerifiedSenders(DomainStore(engine)))
        self.limiter, self.slots = rate_limiters(settings)
        handler = SubmissionHandler(
            KeyManager(KeyStore(engine), settings.secret_key.get_secret_value()), self.limiter, self.service,
            send_limits(settings), failures_per_minute=settings.auth_failures_per_minute,
            defaults=rate_defaults(settings) if settings.rate_limits else None,
        )
        self.listener = SubmissionListener(
            handler, hostname=settings.sending_hostname(), max_bytes=settings.max_message_bytes,
            timeout=settings.submission_timeout, tls=tls, allow_plain_auth=settings.submission_allow_plain_auth,
            reuse_port=settings.submission_processes > 1,
        )
        self.metrics = MetricsEndpoint(settings.metrics_host, settings.submission_metrics_port, "submission")

    def ports(self) -> dict[str, int]:
        """The configured ports by mode; 0 ones left out."""
        return configured_ports(self.settings)

    async def start(self, host: str | None = None, ports: dict[str, int] | None = None,
                    metrics: bool = True, skip_taken: bool = False) -> dict[str, int]:
        """Listen on every port (mode -> port; the configured ones by default); the bound
        ports. With `skip_taken` (`postwire dev`) a port that cannot be bound is left out."""
        bound = {}
        for mode, port in (self.ports() if ports is None else ports).items():
            try:
                bound[mode] = await self.listener.start(host or self.settings.submission_host, port, mode)
            except OSError as exc:
                if not skip_taken:
                    raise
                print(f"Submission port {port} ({PORT_NAMES[mode]}): not started ({exc})")
        if metrics:
            self.metrics.start()
        return bound

    async def stop(self) -> None:
        from server.closing import close_all

        await self.listener.stop()
        await self.service.close()
        await close_all(self.limiter, self.slots, self.backing)
        self.metrics.stop()


PORT_NAMES = {"starttls": "STARTTLS", "implicit": "implicit TLS", "plain": "plain + STARTTLS"}


def configured_ports(settings: Settings) -> dict[str, int]:
    s = settings
    ports = {"starttls": s.submission_port, "implicit": s.submission_tls_port, "plain": s.submission_plain_port}
    return {mode: port for mode, port in ports.items() if port}


def describe(host: str, bound: dict[str, int]) -> str:
    return ", ".join(f"{host}:{port} ({PORT_NAMES[mode]})" for mode, port in bound.items())


async def serve(settings: Settings, host: str | None, ports: dict[str, int], ready: Event | None = None) -> None:
    """One listener process on `ports` (mode -> port) until SIGINT/SIGTERM."""
    from postwire_service.listeners import run_listener

    async def start(service: SubmissionService) -> str:
        bound = await service.start(host, ports)
        if ready is not None:  # one of several: the supervisor says what they listen on
            ready.set()
            return ""
        return f"Postwire submission: SMTP on {describe(host or settings.submission_host, bound)}"

    await run_listener(settings, SubmissionService, start, "submission listener")


def _child(index: int, ready: Event, host: str | None, ports: dict[str, int]) -> None:
    from postwire_service.cli import _logging, _serving_settings

    _logging()
    settings = _serving_settings()
    if settings.submission_metrics_port:
        settings = settings.model_copy(update={"submission_metrics_port": settings.submission_metrics_port + index})
    asyncio.run(serve(settings, host, ports, ready))


def cmd_submission(args: argparse.Namespace) -> int:
    from postwire_service.cli import _logging, _serving_settings
    from postwire_service.processes import supervise

    settings = _serving_settings()
    _logging()
    given = {"starttls": args.port, "implicit": args.tls_port, "plain": args.plain_port}
    chosen = {**configured_ports(settings), **{m: p for m, p in given.items() if p is not None}}
    ports = {m: p for m, p in chosen.items() if p}
    processes = settings.submission_processes
    if processes <= 1:
        asyncio.run(serve(settings, args.host, ports))
        return 0
    if not ports:
        raise SystemExit("error: submission listener: no port to listen on")
    host = args.host or settings.submission_host
    return supervise("submission", _child, (args.host, ports), processes, lambda: print(
        f"Postwire submission: SMTP on {describe(host, ports)} ({processes} processes)", flush=True))


def register(sub: Any) -> None:
    submission = sub.add_parser(
        "submission", help="run the SMTP submission listener: AUTH with an API key, then send (POSTWIRE_* settings)"
    )
    submission.add_argument("--host", help="bind address (default POSTWIRE_SUBMISSION_HOST)")
    submission.add_argument("--port", type=int, help="STARTTLS port (default POSTWIRE_SUBMISSION_PORT; 0: off)")
    submission.add_argument("--tls-port", type=int, help="implicit TLS port (default POSTWIRE_SUBMISSION_TLS_PORT)")
    submission.add_argument("--plain-port", type=int, help="plain + STARTTLS port (default POSTWIRE_SUBMISSION_PLAIN_PORT)")
    submission.set_defaults(func=cmd_submission)
