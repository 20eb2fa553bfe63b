"""A delivery message carrying several email ids (the server's publisher coalesces
concurrent publishes): their attempts run together on the worker's event loop, so
their claims, SENDING events and outcomes share group commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from workers.delivery.actor import Deliverer

log = logging.getLogger(__name__)


async def deliver_batch(deliverer: Deliverer, email_ids: list[int], enqueue_alone: Callable[[int], Awaitable[None]]) -> None:
    """Attempt every email of the batch. An attempt that crashed (its claim released)
    is handed to a message of its own, so its Dramatiq retries do not repeat the others'
    (a repeat would be a no-op anyway: the claim is atomic). Should that hand-off fail,
    the first crash is raised and Dramatiq retries the whole batch."""
    results = await asyncio.gather(*(deliverer.deliver(i) for i in email_ids), return_exceptions=True)
    crashed = [(i, r) for i, r in zip(email_ids, results, strict=True) if isinstance(r, BaseException)]
    for email_id, error in crashed:
        if not isinstance(error, Exception):
            raise error  # cancelled, or the worker is stopping
        log.warning("email %s: attempt crashed in a batch; retried alone", email_id, exc_info=error)
    try:
        for email_id, _ in crashed:
            await enqueue_alone(email_id)
    except Exception:
        log.warning("could not hand crashed attempts to their own messages; retrying the batch", exc_info=True)
        raise crashed[0][1] from None
