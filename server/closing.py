"""Closing what a process opened, in order, whatever each one is: an object with an
async or plain `close()` is closed, one without (say a per-process rate limiter) is
left alone, None is skipped. Shared by the gRPC server (server/app.py) and the SMTP
listeners (postwire_service/)."""

from __future__ import annotations

import inspect


async def close_all(*closables: object) -> None:
    """Close each of `closables` in the order given."""
    for closable in closables:
        close = getattr(closable, "close", None)
        if close is None:
            continue
        result = close()
        if inspect.isawaitable(result):
            await result
