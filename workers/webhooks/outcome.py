"""Classify a webhook attempt and decide what follows. Pure.

2xx delivered. Timeouts, connection errors, 5xx and 429 are transient: retry with
exponential backoff and jitter (honouring Retry-After) until the delivery's lifetime
runs out. 410 Gone disables the endpoint. Other 4xx (and 3xx: redirects are not
followed) fail this event without retry.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus

from core.emails.scheduling import retry_delay
from core.webhooks.delivery_store import DELIVERED, FAILED, RETRYING, AttemptOutcome


class Kind(enum.Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    GONE = "gone"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    hint: timedelta | None = None  # the endpoint's Retry-After


@dataclass(frozen=True)
class WebhookRetryPolicy:
    min_backoff: timedelta
    max_backoff: timedelta
    lifetime: timedelta
    disable_after: timedelta


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - now)


def classify(status_code: int | None, retry_after: str | None = None, now: datetime | None = None) -> Verdict:
    """None: no answer (timeout, connection error, refused address): transient."""
    if status_code is None:
        return Verdict(Kind.TRANSIENT)
    if 200 <= status_code < 300:
        return Verdict(Kind.DELIVERED)
    if status_code == HTTPStatus.GONE:
        return Verdict(Kind.GONE)
    if status_code == HTTPStatus.TOO_MANY_REQUESTS or status_code >= 500:
        return Verdict(Kind.TRANSIENT, parse_retry_after(retry_after, now or datetime.now(UTC)))
    return Verdict(Kind.PERMANENT)


def describe(status_code: int | None, error: str) -> str:
    if error:
        return error
    if status_code is None:
        return ""
    try:
        return f"HTTP {status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        return f"HTTP {status_code}"


def decide(
    verdict: Verdict,
    *,
    attempts: int,
    created_at: datetime,
    now: datetime,
    policy: WebhookRetryPolicy,
    status_code: int | None,
    latency_ms: int,
    error: str = "",
    rng: random.Random | None = None,
) -> AttemptOutcome:
    """The outcome to record: delivered, retrying (with its time) or failed."""
    text = describe(status_code, error)
    common = {"status_code": status_code, "latency_ms": latency_ms, "disable_after": policy.disable_after}
    if verdict.kind is Kind.DELIVERED:
        return AttemptOutcome(DELIVERED, error="", success=True, **common)  # type: ignore[arg-type]
    if verdict.kind is Kind.GONE:
        return AttemptOutcome(FAILED, error=text, disable=f"the endpoint answered {text}", **common)  # type: ignore[arg-type]
    if verdict.kind is Kind.PERMANENT:
        return AttemptOutcome(FAILED, error=text, **common)  # type: ignore[arg-type]
    delay = retry_delay(attempts, min_backoff=policy.min_backoff, max_backoff=policy.max_backoff, hint=verdict.hint, rng=rng)
    if now + delay > created_at + policy.lifetime:
        return AttemptOutcome(FAILED, error=f"gave up after {attempts} attempts: {text}", **common)  # type: ignore[arg-type]
    return AttemptOutcome(RETRYING, error=text, next_attempt_at=now + delay, **common)  # type: ignore[arg-type]
