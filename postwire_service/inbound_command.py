"""`postwire inbound`: the inbound SMTP listener for bounces, complaints and mailto
unsubscribes (server/inbound.py), composed from the settings. `postwire dev` runs the
same service in-process (postwire_service/embedded.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the command runs: the client commands stay light
    import dramatiq

    from core.settings import Settings


class InboundService:
    """The listener, its database engine and its report publisher, on one event loop."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker) -> None:
        from core.returns.inbound import InboundStore, ReportPublisher
        from postwire_service.listeners import Backing
        from server.inbound import InboundHandler, InboundListener

        self.settings = settings
        self.backing = Backing(settings, broker, ReportPublisher)
        self.engine, self.publisher = self.backing.engine, self.backing.publisher
        store = InboundStore.from_settings(self.engine, settings)
        handler = InboundHandler(store, self.publisher.publish, settings.publish_timeout_seconds)
        self.listener = InboundListener(handler, hostname=settings.sending_hostname(),
                                        max_bytes=settings.inbound_max_bytes, timeout=settings.inbound_timeout)

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        return await self.listener.start(host or self.settings.inbound_host,
                                         self.settings.inbound_port if port is None else port)

    async def stop(self) -> None:
        await self.listener.stop()
        await self.backing.close()


async def serve(settings: Settings, host: str | None, port: int | None) -> None:
    from postwire_service.listeners import run_listener

    async def start(service: InboundService) -> str:
        bound = await service.start(host, port)
        return f"Postwire inbound: SMTP on {host or settings.inbound_host}:{bound}"

    await run_listener(settings, InboundService, start, "inbound listener")


def cmd_inbound(args: argparse.Namespace) -> int:
    from postwire_service.cli import _logging, _serving_settings

    settings = _serving_settings()
    _logging()
    asyncio.run(serve(settings, args.host, args.port))
    return 0


def register(sub: Any) -> None:
    inbound = sub.add_parser(
        "inbound", help="run the inbound SMTP listener: bounces, complaints, mailto unsubscribes (POSTWIRE_* settings)"
    )
    inbound.add_argument("--host", help="bind address (default POSTWIRE_INBOUND_HOST)")
    inbound.add_argument("--port", type=int, help="port (default POSTWIRE_INBOUND_PORT)")
    inbound.set_defaults(func=cmd_inbound)
