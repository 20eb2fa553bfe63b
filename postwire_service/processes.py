"""Running N copies of a listener process, the way `postwire server` does with
POSTWIRE_SERVER_PROCESSES (server/main.py): the parent starts N spawned children that
share the ports (SO_REUSEPORT, so the kernel spreads connections across them), passes
SIGINT/SIGTERM on, and stops the others when one exits with an error."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def supervise(name: str, target: Callable[..., None], args: tuple[Any, ...], count: int,
              on_ready: Callable[[], None], ready_timeout: float = 60.0) -> int:
    """Run `target(index, ready, *args)` in `count` spawned processes (`ready` is an
    Event the child sets once it listens); `on_ready` once all of them are. Returns
    when every child has ended: 0, or 1 if any ended with an error."""
    spawn = multiprocessing.get_context("spawn")
    ready = [spawn.Event() for _ in range(count)]
    children = [spawn.Process(target=target, args=(i, ready[i], *args), name=f"{name}-{i}") for i in range(count)]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.pid is not None and child.is_alive():
                child.terminate()  # SIGTERM: each closes its ports and finishes what it has in hand

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    for child in children:
        child.start()
    deadline, announced, failed = time.monotonic() + ready_timeout, False, False
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(0.2)
            if not stopping and child.exitcode not in (None, 0):
                log.error("%s exited with %s; stopping the others", child.name, child.exitcode)
                failed = True
                forward(signal.SIGTERM, None)
        if not announced and not stopping and all(event.is_set() for event in ready):
            announced = True
            on_ready()
        elif not announced and not stopping and time.monotonic() > deadline:
            log.error("%s processes not listening after %.0f s; stopping them", name, ready_timeout)
            failed = True
            forward(signal.SIGTERM, None)
    return 1 if failed or any(child.exitcode not in (0, -signal.SIGTERM) for child in children) else 0
