"""The clients' retry schedule: which codes are retried, how long they wait, when they stop."""

from __future__ import annotations

import grpc
import pytest

from postwire_client.errors import from_status
from postwire_client.retry import RetryPolicy, is_retryable, new_idempotency_key, reconnect_delay

C = grpc.StatusCode
NO_JITTER = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, jitter=0.0, max_attempts=10,
                        total_timeout=None)


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    assert [NO_JITTER.backoff(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
def test_jitter_scales_the_wait_down_by_at_most_the_jitter_fraction(draw: float) -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0, jitter=0.5)
    wait = policy.backoff(2, rng=lambda: draw)
    assert wait == pytest.approx(4.0 * (1 - 0.5 * draw))
    assert 2.0 < wait <= 4.0


def test_full_jitter_can_wait_anywhere_down_to_zero() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0, jitter=1.0)
    assert policy.backoff(0, rng=lambda: 0.999) == pytest.approx(0.001)


def test_unavailable_is_retried_until_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=0.0, total_timeout=None)
    error = from_status(C.UNAVAILABLE, "down")
    assert policy.delay(error, retry=0, elapsed=0) == pytest.approx(0.1)
    assert policy.delay(error, retry=1, elapsed=0) == pytest.approx(0.2)
    assert policy.delay(error, retry=2, elapsed=0) is None  # that was the third attempt


@pytest.mark.parametrize("code", [C.INVALID_ARGUMENT, C.UNAUTHENTICATED, C.PERMISSION_DENIED, C.NOT_FOUND,
                                  C.ALREADY_EXISTS, C.FAILED_PRECONDITION, C.RESOURCE_EXHAUSTED, C.INTERNAL,
                                  C.UNKNOWN, C.OUT_OF_RANGE, C.CANCELLED])
def test_other_codes_are_never_retried(code: grpc.StatusCode) -> None:
    assert NO_JITTER.delay(from_status(code, "x"), retry=0, elapsed=0, retry_deadline_exceeded=True) is None


def test_deadline_exceeded_is_retried_only_when_the_call_says_it_is_safe() -> None:
    error = from_status(C.DEADLINE_EXCEEDED, "slow")
    assert NO_JITTER.delay(error, retry=0, elapsed=0) is None
    assert NO_JITTER.delay(error, retry=0, elapsed=0, retry_deadline_exceeded=True) == pytest.approx(0.1)
    assert is_retryable(C.UNAVAILABLE) and not is_retryable(C.DEADLINE_EXCEEDED)


def test_a_retry_waits_at_least_the_servers_retry_info() -> None:
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2)))
    error = from_status(C.UNAVAILABLE, "db down", [detail])
    assert NO_JITTER.delay(error, retry=0, elapsed=0) == pytest.approx(2.0)


def test_no_retry_would_end_past_the_total_timeout() -> None:
    policy = RetryPolicy(jitter=0.0, total_timeout=1.0, max_attempts=100)
    error = from_status(C.UNAVAILABLE, "down")
    assert policy.delay(error, retry=0, elapsed=0.85) == pytest.approx(0.1)
    assert policy.delay(error, retry=0, elapsed=0.95) is None


def test_one_attempt_means_no_retries() -> None:
    assert RetryPolicy(max_attempts=1).delay(from_status(C.UNAVAILABLE, "x"), retry=0, elapsed=0) is None


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(jitter=1.5), dict(initial_backoff=2, max_backoff=1),
                                 dict(multiplier=0.5)])
def test_nonsense_policies_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_reconnects_back_off_up_to_the_cap_and_honour_retry_after() -> None:
    assert reconnect_delay(None, 0, 10.0, rng=lambda: 0.0) == pytest.approx(0.2)
    assert reconnect_delay(None, 3, 10.0, rng=lambda: 0.0) == pytest.approx(1.6)
    assert reconnect_delay(None, 40, 10.0, rng=lambda: 0.0) == pytest.approx(10.0)
    full = from_status(C.RESOURCE_EXHAUSTED, "too many streams", trailing_metadata=[("retry-after", "3")])
    assert reconnect_delay(full, 0, 10.0, rng=lambda: 0.0) == pytest.approx(3.0)


def test_generated_idempotency_keys_are_unique_and_short_enough() -> None:
    keys = {new_idempotency_key() for _ in range(1000)}
    assert len(keys) == 1000 and all(len(k) <= 200 for k in keys)
