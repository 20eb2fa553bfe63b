"""Running the gRPC server until SIGINT/SIGTERM, in one process or several.

Python runs one thread of Python at a time, so one server process uses about one core.
With POSTWIRE_SERVER_PROCESSES=N the parent starts N server processes on the same port
(gRPC sets SO_REUSEPORT on Linux, so the kernel spreads connections across them) and
passes signals on. Each process has its own pools; each serves Prometheus metrics on
POSTWIRE_METRICS_PORT + its index.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable

from core.settings import Settings

log = logging.getLogger(__name__)


async def _serve(settings: Settings, ready: Callable[[str], None]) -> None:
    from server.app import Server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before start: a SIGTERM then still stops cleanly
        loop.add_signal_handler(sig, stop.set)
    server = Server(settings)
    await server.start()
    ready(server.address)
    await stop.wait()
    await server.stop()


def _child(index: int, configure_logging: Callable[[], None]) -> None:
    configure_logging()
    settings = Settings()
    update: dict[str, object] = {}
    if settings.metrics_port:
        update["metrics_port"] = settings.metrics_port + index
    asyncio.run(_serve(settings.model_copy(update=update), lambda address: None))


def run_server(settings: Settings, configure_logging: Callable[[], None]) -> None:
    """Serve until SIGINT or SIGTERM; prints "listening on ADDRESS" once serving."""
    processes = settings.server_processes
    if processes <= 1:
        asyncio.run(_serve(settings, lambda address: print(f"listening on {address}", flush=True)))
        return
    if not settings.grpc_port:
        sys.exit("POSTWIRE_SERVER_PROCESSES > 1 needs a fixed POSTWIRE_GRPC_PORT")
    spawn = multiprocessing.get_context("spawn")  # gRPC must not be forked once started
    children = [spawn.Process(target=_child, args=(i, configure_logging), name=f"server-{i}") for i in range(processes)]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.pid is not None and child.is_alive():
                child.terminate()  # SIGTERM: each finishes in-flight calls and ends its streams

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    for child in children:
        child.start()
    print(f"listening on {settings.grpc_host}:{settings.grpc_port} ({processes} processes)", flush=True)
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(0.5)
            if not stopping and child.exitcode not in (None, 0):
                log.error("server process %s exited with %s; stopping the others", child.name, child.exitcode)
                forward(signal.SIGTERM, None)
