"""Time rules: validating send_at/expires_at, and the retry schedule. Pure."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from core.errors import FieldViolation


def schedule_violations(
    send_at: datetime | None, expires_at: datetime | None, now: datetime, horizon: timedelta
) -> list[FieldViolation]:
    violations = []
    if send_at is not None and send_at > now + horizon:
        violations.append(FieldViolation("send_at", f"must be at most {horizon.days} days ahead"))
    if expires_at is not None:
        if expires_at <= now:
            violations.append(FieldViolation("expires_at", "must be in the future"))
        elif send_at is not None and expires_at <= send_at:
            violations.append(FieldViolation("expires_at", "must be after send_at"))
    return violations


def retry_delay(
    attempts: int,
    *,
    min_backoff: timedelta,
    max_backoff: timedelta,
    hint: timedelta | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """Exponential backoff (min × 2^(attempts-1), capped) with ±20% jitter; a server's
    hinted delay is honoured when longer."""
    base = min(max_backoff, min_backoff * (2 ** max(0, attempts - 1)))
    jitter = (rng or random).uniform(0.8, 1.2)
    delay = min(max_backoff, base * jitter)
    if hint is not None and hint > delay:
        delay = min(hint, max_backoff * 4)
    return delay
