"""Retry schedule, send_at/expires_at rules, and how recipients add up to a status."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from core.emails.model import RecipientState, Status, overall
from core.emails.scheduling import retry_delay, schedule_violations

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MIN, MAX = timedelta(seconds=30), timedelta(hours=1)


@pytest.mark.parametrize(("attempts", "base"), [(1, 30), (2, 60), (3, 120), (5, 480), (8, 3600), (20, 3600)])
def test_backoff_doubles_from_the_minimum_with_jitter_and_a_cap(attempts: int, base: float) -> None:
    for seed in range(20):
        delay = retry_delay(attempts, min_backoff=MIN, max_backoff=MAX, rng=random.Random(seed))
        assert base * 0.8 <= delay.total_seconds() <= min(base * 1.2, 3600)


def test_jitter_spreads_retries() -> None:
    delays = {retry_delay(3, min_backoff=MIN, max_backoff=MAX, rng=random.Random(s)) for s in range(10)}
    assert len(delays) > 5


def test_a_longer_server_hint_is_honoured_and_a_shorter_one_ignored() -> None:
    hinted = retry_delay(1, min_backoff=MIN, max_backoff=MAX, hint=timedelta(minutes=10), rng=random.Random(1))
    assert hinted == timedelta(minutes=10)
    short = retry_delay(4, min_backoff=MIN, max_backoff=MAX, hint=timedelta(seconds=1), rng=random.Random(1))
    assert short > timedelta(seconds=100)


@pytest.mark.parametrize(
    ("send_at", "expires_at", "fields"),
    [
        (None, None, []),
        (NOW + timedelta(days=29), None, []),
        (NOW + timedelta(days=31), None, ["send_at"]),
        (None, NOW - timedelta(seconds=1), ["expires_at"]),
        (NOW + timedelta(hours=2), NOW + timedelta(hours=1), ["expires_at"]),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2), []),
    ],
)
def test_schedule_rules(send_at: datetime | None, expires_at: datetime | None, fields: list[str]) -> None:
    violations = schedule_violations(send_at, expires_at, NOW, timedelta(days=30))
    assert [v.field for v in violations] == fields


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([Status.SENT, Status.BOUNCED], Status.SENT),
        ([Status.BOUNCED, Status.SUPPRESSED], Status.BOUNCED),
        ([Status.FAILED, Status.SUPPRESSED], Status.FAILED),
        ([Status.SUPPRESSED, Status.SUPPRESSED], Status.SUPPRESSED),
        ([Status.SENT, Status.FAILED], Status.SENT),
    ],
)
def test_email_status_from_its_recipients(statuses: list[Status], expected: Status) -> None:
    assert overall({f"r{i}@x.example": RecipientState(s) for i, s in enumerate(statuses)}) is expected
