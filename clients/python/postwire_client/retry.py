"""When the clients retry a failed call, and how long they wait: pure logic, shared by
`Client` and `AsyncClient`.

Retried: `UNAVAILABLE` for every unary call, and `DEADLINE_EXCEEDED` for `Send` only
(the server may have accepted the email before the deadline hit; the idempotency key
makes the retry answer the original response). `Send` is retried only when it carries
an idempotency key — the clients make one up when the caller gives none — so a retry
can never create a second email. Waits grow exponentially with jitter, never shorter
than the server's `RetryInfo` hint, and stop after `max_attempts` or `total_timeout`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from postwire_client.errors import PostwireError, from_rpc_error

log = logging.getLogger("postwire_client")

# Status codes after which `follow_events` reconnects and resumes from its cursor.
RESUMABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
})

# Channel options: reconnect quickly once the server listens again (gRPC's own backoff
# between connection attempts otherwise grows to two minutes).
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
    ("grpc.primary_user_agent", "postwire-python"),
)


def new_idempotency_key() -> str:
    """A random idempotency key, as `send` makes one when the caller gives none."""
    return f"pwc-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    The n-th retry (n = 0, 1, ...) waits `min(max_backoff, initial_backoff * multiplier**n)`
    scaled by a random factor in `[1 - jitter, 1]` (jitter 1.0 is "full jitter"), or the
    server's `retry_after` hint when that is longer. A call makes at most `max_attempts`
    attempts and gives up rather than wait past `total_timeout` seconds from its start.
    `RetryPolicy(max_attempts=1)` turns retries off.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5
    total_timeout: float | None = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError("need 0 <= initial_backoff <= max_backoff and multiplier >= 1")

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number `retry` (0 for the first retry)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier**retry)
        return ceiling * (1.0 - self.jitter * rng())

    def delay(
        self,
        error: PostwireError,
        *,
        retry: int,
        elapsed: float,
        retry_deadline_exceeded: bool = False,
        rng: Callable[[], float] = random.random,
    ) -> float | None:
        """How long to wait before retrying a call that failed with `error` after
        `retry` retries and `elapsed` seconds, or None to give up and raise it."""
        if not is_retryable(error.code, retry_deadline_exceeded=retry_deadline_exceeded):
            return None
        if retry + 1 >= self.max_attempts:
            return None
        wait = self.backoff(retry, rng)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        if self.total_timeout is not None and elapsed + wait > self.total_timeout:
            return None
        return wait


def wait_or_raise(
    policy: RetryPolicy,
    name: str,
    error: grpc.RpcError,
    *,
    attempt: int,
    started: float,
    retry: bool,
    retry_deadline_exceeded: bool,
) -> float:
    """After attempt number `attempt` (0 for the first) of call `name` failed with
    `error`: the wait before the next attempt, or the typed exception raised. The one
    retry decision of both clients, the blocking and the asyncio one."""
    exc = from_rpc_error(error)
    exc.attempts = attempt + 1
    wait = policy.delay(
        exc, retry=attempt, elapsed=time.monotonic() - started, retry_deadline_exceeded=retry_deadline_exceeded
    ) if retry else None
    if wait is None:
        raise exc from None
    log.info("%s failed with %s (%s); retry %d in %.2f s", name, exc.code.name, exc.message, attempt + 1, wait)
    return wait


def is_retryable(code: grpc.StatusCode, *, retry_deadline_exceeded: bool = False) -> bool:
    """UNAVAILABLE always; DEADLINE_EXCEEDED only when the caller says the call is safe
    to repeat after it may have taken effect (Send with an idempotency key)."""
    return code == grpc.StatusCode.UNAVAILABLE or (
        retry_deadline_exceeded and code == grpc.StatusCode.DEADLINE_EXCEEDED
    )


def reconnect_delay(error: PostwireError | None, failures: int, max_backoff: float,
                    rng: Callable[[], float] = random.random) -> float:
    """The wait before `follow_events` reconnects after `failures` consecutive failed or
    ended streams: 0.2 s doubling up to `max_backoff`, half jittered, at least the
    server's `retry_after` (a stream budget that is full, say)."""
    policy = RetryPolicy(initial_backoff=min(0.2, max_backoff), max_backoff=max_backoff, jitter=0.5)
    wait = policy.backoff(min(failures, 32), rng)
    if error is not None and error.retry_after is not None:
        wait = max(wait, error.retry_after)
    return wait


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)
