"""Steps that follow a commit, which must never turn an accepted email into an error.

Once an email is committed it is accepted: the scheduler publishes every committed,
unpublished email after the grace period (core.delivery.store.publish_due). So what
comes after the commit (publishing its id, recording it as published, waking
listeners) is best effort: a failure of any kind, a timeout, or a cancellation that
came from inside the step is logged and swallowed. Only the caller's own cancellation
(the client went away) goes on, because then no one is left to answer.

Every accept path (Send today; batches, streams and SMTP submission later) runs its
post-commit work through `best_effort`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def best_effort(step: Callable[[], Awaitable[object]], *, what: str, timeout: float) -> bool:
    """Run `step` within `timeout` seconds; True when it completed, False (logged) when
    it failed in any way. Re-raises only the cancellation of the calling task."""
    me = asyncio.current_task()
    try:
        async with asyncio.timeout(timeout):  # no extra task on the hot path
            await step()
        return True
    except asyncio.CancelledError:
        if me is not None and me.cancelling():
            raise  # our caller is being cancelled: not ours to swallow
        log.warning("%s was cancelled; the scheduler will do it", what)
    except TimeoutError:
        log.warning("%s took over %.1fs; the scheduler will do it", what, timeout)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the email stays accepted
        log.warning("%s failed (%s); the scheduler will do it", what, type(exc).__name__, exc_info=True)
    return False
