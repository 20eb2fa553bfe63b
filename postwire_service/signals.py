"""Waiting on the event loop for the signal that stops a process."""

from __future__ import annotations

import asyncio
import signal


async def until_stopped() -> None:
    """Return when SIGINT or SIGTERM arrives (what Ctrl-C, `docker stop` and systemd send)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
