"""`postwire submission`: the SMTP submission listener (server/submission.py), composed
from the settings with the same accept path and rate limiter as the gRPC server
(server/composition.py). `postwire dev` runs it in-process (postwire_service/embedded.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the command runs: the client commands stay light
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
        from core.storage.db import make_engine
        from server.composition import (
            email_service,
            rate_defaults,
            rate_limiters,
            send_limits,
        )
        from server.submission import SubmissionHandler, SubmissionListener, tls_context

        self.settings = settings
        engine = make_engine(settings.database_url)
        self.store = Store(engine)
        self.publisher = Publisher(broker, settings)
        self.service = email_service(settings, engine, self.store, self.publisher, VerifiedSenders(DomainStore(engine)))
        self.limiter, self.slots = rate_limiters(settings)
        handler = SubmissionHandler(
            KeyManager(KeyStore(engine), settings.secret_key.get_secret_value()), self.limiter, self.service,
            send_limits(settings), failures_per_minute=settings.auth_failures_per_minute,
            defaults=rate_defaults(settings) if settings.rate_limits else None,
        )
        tls = None
        if settings.submission_tls_cert:
            tls = tls_context(settings.submission_tls_cert, settings.submission_tls_key or settings.submission_tls_cert)
        self.listener = SubmissionListener(
            handler, hostname=settings.sending_hostname(), max_bytes=settings.max_message_bytes,
            timeout=settings.submission_timeout, tls=tls, allow_plain_auth=settings.submission_allow_plain_auth,
        )
        self.metrics = MetricsEndpoint(settings.metrics_host, settings.submission_metrics_port, "submission")

    def ports(self) -> dict[str, int]:
        """The configured ports by mode; 0 ones left out."""
        s = self.settings
        ports = {"starttls": s.submission_port, "implicit": s.submission_tls_port, "plain": s.submission_plain_port}
        return {mode: port for mode, port in ports.items() if port}

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
        await self.listener.stop()
        await self.service.close()
        for closable in (self.limiter, self.slots):
            close = getattr(closable, "close", None)
            if close is not None:
                await close()
        await self.publisher.close()
        await self.store.close()
        self.metrics.stop()


PORT_NAMES = {"starttls": "STARTTLS", "implicit": "implicit TLS", "plain": "plain + STARTTLS"}


def describe(host: str, bound: dict[str, int]) -> str:
    return ", ".join(f"{host}:{port} ({PORT_NAMES[mode]})" for mode, port in bound.items())


async def serve(settings: Settings, host: str | None, ports: dict[str, int | None] | None = None) -> None:
    from core.delivery.queue import close_broker, make_broker
    from postwire_service.signals import until_stopped

    try:  # a certificate that does not load, a port taken, TLS ports without one
        service = SubmissionService(settings, make_broker(settings))
    except OSError as exc:
        raise SystemExit(f"error: submission listener: {exc}") from None
    broker = service.publisher.broker
    try:
        chosen = {**service.ports(), **{m: p for m, p in (ports or {}).items() if p is not None}}
        bound = await service.start(host, {m: p for m, p in chosen.items() if p})
    except (OSError, ValueError) as exc:
        await service.stop()
        close_broker(broker)
        raise SystemExit(f"error: submission listener: {exc}") from None
    print(f"Postwire submission: SMTP on {describe(host or settings.submission_host, bound)}", flush=True)
    try:
        await until_stopped()
    finally:
        await service.stop()
        close_broker(broker)


def cmd_submission(args: argparse.Namespace) -> int:
    from postwire_service.cli import _logging, _serving_settings

    settings = _serving_settings()
    _logging()
    asyncio.run(serve(settings, args.host, {"starttls": args.port, "implicit": args.tls_port, "plain": args.plain_port}))
    return 0


def register(sub: Any) -> None:
    submission = sub.add_parser(
        "submission", help="run the SMTP submission listener: AUTH with an API key, then send (POSTWIRE_* settings)"
    )
    submission.add_argument("--host", help="bind address (default POSTWIRE_SUBMISSION_HOST)")
    submission.add_argument("--port", type=int, help="STARTTLS port (default POSTWIRE_SUBMISSION_PORT; 0: off)")
    submission.add_argument("--tls-port", type=int, help="implicit TLS port (default POSTWIRE_SUBMISSION_TLS_PORT)")
    submission.add_argument("--plain-port", type=int, help="plain + STARTTLS port (default POSTWIRE_SUBMISSION_PLAIN_PORT)")
    submission.set_defaults(func=cmd_submission)
