"""Webhook signing (Standard Webhooks), secrets at rest, URL rules, outcome rules."""

from __future__ import annotations

import ipaddress
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from core.emails.model import EventRecord, EventType
from core.webhooks.delivery_store import DELIVERED, FAILED, RETRYING
from core.webhooks.events import event_body, payload_type, wants
from core.webhooks.signing import (
    SecretBox,
    generate_secret,
    secret_key_bytes,
    sign,
    webhook_headers,
)
from core.webhooks.urls import AddressRefused, refusal, resolve_allowed, url_violations
from tests.support.webhooks import VerificationError, verify
from workers.webhooks.outcome import (
    Kind,
    WebhookRetryPolicy,
    classify,
    decide,
    parse_retry_after,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = WebhookRetryPolicy(timedelta(seconds=5), timedelta(hours=1), timedelta(hours=24), timedelta(days=5))

# Signing ------------------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_example() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secrets_are_whsec_and_at_least_24_random_bytes() -> None:
    secrets = {generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(s.startswith("whsec_") and len(secret_key_bytes(s)) >= 24 for s in secrets)


def test_an_independent_verifier_accepts_our_headers_and_rejects_tampering() -> None:
    secret, body = generate_secret(), json.dumps({"type": "email.sent", "data": {"x": "é"}})
    now = int(time.time())
    headers = webhook_headers([secret], "evt_1", now, body)
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(now)
    verify(secret, headers, body.encode())
    with pytest.raises(VerificationError):
        verify(secret, headers, body.encode() + b" ")
    with pytest.raises(VerificationError):
        verify(generate_secret(), headers, body.encode())
    with pytest.raises(VerificationError):
        verify(secret, {**headers, "webhook-id": "evt_2"}, body.encode())
    with pytest.raises(VerificationError):
        verify(secret, {k: v for k, v in headers.items() if k != "webhook-signature"}, body.encode())


def test_verifier_rejects_timestamps_older_than_five_minutes() -> None:
    secret, body = generate_secret(), "{}"
    old = int(time.time()) - 301
    with pytest.raises(VerificationError, match="tolerance"):
        verify(secret, webhook_headers([secret], "evt_1", old, body), body.encode())
    verify(secret, webhook_headers([secret], "evt_1", old + 10, body), body.encode())


def test_during_rotation_both_secrets_sign() -> None:
    new, old = generate_secret(), generate_secret()
    now = int(time.time())
    headers = webhook_headers([new, old], "evt_9", now, "{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(new, headers, b"{}")
    verify(old, headers, b"{}")


def test_secrets_are_encrypted_at_rest_and_bound_to_their_endpoint() -> None:
    box, secret = SecretBox("server-secret"), generate_secret()
    sealed = box.seal(secret, "whk_a")
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert box.open(sealed, "whk_a") == secret
    assert box.seal(secret, "whk_a") != sealed  # fresh nonce
    with pytest.raises(ValueError):
        box.open(sealed, "whk_b")
    with pytest.raises(ValueError):
        SecretBox("another-secret").open(sealed, "whk_a")


# Payload ---------------------------------------------------------------------------------------


def test_body_carries_type_timestamp_and_the_event() -> None:
    event = EventRecord(id=42, message_id="msg_x", type=EventType.SENT, occurred_at=NOW, smtp_code=250,
                        smtp_message="ok", detail="via relay", recipient="b@example.com", txid=7)
    body = json.loads(event_body(event))
    assert body["type"] == "email.sent" and body["timestamp"] == "2026-01-01T00:00:00Z"
    assert body["data"]["message_id"] == "msg_x" and body["data"]["type"] == "EVENT_TYPE_SENT"
    assert body["data"]["smtp_code"] == 250 and body["data"]["recipient"] == "b@example.com"
    assert body["data"]["cursor"]
    assert payload_type(EventType.WEBHOOK_DISABLED) == "webhook.disabled"


def test_an_empty_filter_takes_every_type() -> None:
    assert wants(frozenset(), EventType.QUEUED)
    assert wants({EventType.SENT}, EventType.SENT)
    assert not wants({EventType.SENT}, EventType.BOUNCED)


# URLs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/postwire", True),
        ("http://hooks.example.com:8080/x?y=1", True),
        ("ftp://hooks.example.com/", False),
        ("file:///etc/passwd", False),
        ("https:///nohost", False),
        ("hooks.example.com/x", False),
        ("https://hooks.example.com:99999/", False),
        ("https://hooks.example.com/a b", False),
        ("https://hooks.example.com/#frag", False),
        ("", False),
        ("https://x.example/" + "a" * 2000, False),
    ],
)
def test_url_syntax(url: str, ok: bool) -> None:
    assert (url_violations(url) == []) is ok


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "not public"),
        ("93.184.216.34", ""),
        ("2606:4700::1111", ""),
    ],
)
def test_address_rules(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


async def test_resolution_refuses_private_hosts_unless_allowed() -> None:
    for host in ("127.0.0.1", "localhost", "[::1]", "10.0.0.8"):
        with pytest.raises(AddressRefused):
            await resolve_allowed(host, 80, allow_private=False)
    assert await resolve_allowed("127.0.0.1", 80, allow_private=True) == ["127.0.0.1"]
    with pytest.raises(AddressRefused, match="does not resolve"):
        await resolve_allowed("no-such-host.invalid", 80, allow_private=True)


# Outcomes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [(200, Kind.DELIVERED), (204, Kind.DELIVERED), (None, Kind.TRANSIENT), (500, Kind.TRANSIENT),
     (503, Kind.TRANSIENT), (429, Kind.TRANSIENT), (410, Kind.GONE), (400, Kind.PERMANENT),
     (401, Kind.PERMANENT), (404, Kind.PERMANENT), (301, Kind.PERMANENT)],
)
def test_classification(code: int | None, kind: Kind) -> None:
    assert classify(code, None, NOW).kind is kind


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", NOW) == timedelta(seconds=60)
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None
    assert classify(429, "30", NOW).hint == timedelta(seconds=30)


@pytest.mark.parametrize(("attempts", "base"), [(1, 5), (2, 10), (3, 20), (6, 160), (12, 3600), (30, 3600)])
def test_backoff_doubles_with_jitter_up_to_the_cap(attempts: int, base: float) -> None:
    for seed in range(10):
        outcome = decide(classify(503), attempts=attempts, created_at=NOW, now=NOW, policy=POLICY,
                         status_code=503, latency_ms=3, rng=random.Random(seed))
        assert outcome.status == RETRYING and outcome.error == "HTTP 503 Service Unavailable"
        delay = (outcome.next_attempt_at - NOW).total_seconds()  # type: ignore[operator]
        assert base * 0.8 <= delay <= min(base * 1.2, 3600)


def test_a_longer_retry_after_is_honoured() -> None:
    outcome = decide(classify(429, "600", NOW), attempts=1, created_at=NOW, now=NOW, policy=POLICY,
                     status_code=429, latency_ms=1)
    assert outcome.next_attempt_at == NOW + timedelta(seconds=600)


def test_retries_stop_after_the_lifetime() -> None:
    late = NOW + timedelta(hours=23, minutes=59, seconds=59)
    outcome = decide(classify(None), attempts=30, created_at=NOW, now=late, policy=POLICY,
                     status_code=None, latency_ms=10_000, error="timed out after 10 s")
    assert outcome.status == FAILED and "gave up after 30 attempts: timed out" in outcome.error


def test_gone_disables_other_4xx_fail_2xx_succeeds() -> None:
    gone = decide(classify(410), attempts=1, created_at=NOW, now=NOW, policy=POLICY, status_code=410, latency_ms=1)
    assert gone.status == FAILED and gone.disable == "the endpoint answered HTTP 410 Gone"
    bad = decide(classify(422), attempts=1, created_at=NOW, now=NOW, policy=POLICY, status_code=422, latency_ms=1)
    assert bad.status == FAILED and not bad.disable and not bad.success
    ok = decide(classify(200), attempts=1, created_at=NOW, now=NOW, policy=POLICY, status_code=200, latency_ms=1)
    assert ok.status == DELIVERED and ok.success
    assert bad.disable_after == POLICY.disable_after  # the store disables once failing that long
