"""What the SMTP listener commands share (`postwire submission`, `postwire inbound`):
one builder for the database engine and the publisher on a broker, and one way to run
a listener service until SIGINT/SIGTERM with the broker made and closed around it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:  # imported when a command runs: the client commands stay light
    import dramatiq
    from sqlalchemy.ext.asyncio import AsyncEngine

    from core.delivery.queue import Publisher
    from core.settings import Settings

P = TypeVar("P", bound="Publisher")


class Backing(Generic[P]):
    """A listener's database engine and its publisher on `broker` (the caller's: the
    command makes and closes it, `postwire dev` shares its own)."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker, publisher: Callable[..., P]) -> None:
        from core.storage.db import make_engine

        self.broker = broker
        self.engine: AsyncEngine = make_engine(settings.database_url)
        self.publisher: P = publisher(broker, settings)

    async def close(self) -> None:
        await self.publisher.close()
        await self.engine.dispose()


class ListenerService(Protocol):
    async def stop(self) -> None: ...


S = TypeVar("S", bound=ListenerService)


async def run_listener(settings: Settings, build: Callable[[Settings, dramatiq.Broker], S],
                       start: Callable[[S], Awaitable[str]], error: str) -> None:
    """Make the broker, build the service, `start` it (its returned text, if any, is
    printed: what it listens on), then serve until stopped. An OSError or ValueError from
    building or starting (a certificate that does not load, a port taken) ends the
    process with `error: <error>: <reason>`, everything closed."""
    from core.delivery.queue import close_broker, make_broker
    from postwire_service.signals import until_stopped

    broker = make_broker(settings)
    try:
        service = build(settings, broker)
    except OSError as exc:
        close_broker(broker)
        raise SystemExit(f"error: {error}: {exc}") from None
    try:
        listening = await start(service)
    except (OSError, ValueError) as exc:
        await service.stop()
        close_broker(broker)
        raise SystemExit(f"error: {error}: {exc}") from None
    if listening:
        print(listening, flush=True)
    try:
        await until_stopped()
    finally:
        await service.stop()
        close_broker(broker)
