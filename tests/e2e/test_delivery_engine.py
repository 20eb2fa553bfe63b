"""The delivery engine end to end: every SMTP outcome, scheduling, idempotency, recovery.

Real PostgreSQL, RabbitMQ and Redis; worker and scheduler processes; two in-process
aiosmtpd relays (primary and backup) with per-recipient fault injection.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import email_pb2, event_pb2
from postwire_client import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    UnavailableError,
)
from tests.conftest import Stack
from tests.e2e.test_full_stack import send_simple, wait_status
from tests.support.ports import free_port
from tests.support.processes import Process, wait_serving
from tests.support.proxy import Proxy

S = email_pb2
E = event_pb2
TERMINAL = {S.EMAIL_STATUS_SENT, S.EMAIL_STATUS_BOUNCED, S.EMAIL_STATUS_FAILED, S.EMAIL_STATUS_SUPPRESSED, S.EMAIL_STATUS_CANCELED}


def both_relays(stack: Stack, rcpt: str, replies: list[str]) -> None:
    stack.recorder.faults[rcpt] = list(replies)
    stack.backup.faults[rcpt] = list(replies)


def types(status: email_pb2.EmailStatus) -> list[int]:
    return [e.type for e in status.events]  # type: ignore[attr-defined]


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_421_then_ok_is_deferred_then_sent(stack: Stack) -> None:
    both_relays(stack, "busy@example.com", ["421 4.7.0 Try again later"])
    with stack.client() as client:
        message_id = send_simple(client, to="busy@example.com")
        status = wait_status(client, message_id, TERMINAL)
    assert status.status == S.EMAIL_STATUS_SENT
    assert types(status) == [E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENDING, E.EVENT_TYPE_DEFERRED, E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT]
    assert status.events[2].smtp_code == 421 and status.attempts == 2


def test_550_bounces_suppresses_and_the_next_send_is_suppressed(stack: Stack) -> None:
    stack.recorder.faults["gone@example.com"] = ["550 5.1.1 Mailbox does not exist"]
    with stack.client() as client:
        first = wait_status(client, send_simple(client, to="gone@example.com"), TERMINAL)
        assert first.status == S.EMAIL_STATUS_BOUNCED
        assert first.events[-1].type == E.EVENT_TYPE_BOUNCED and first.events[-1].smtp_code == 550
        assert first.events[-1].recipient == "gone@example.com"

        second_id = send_simple(client, to="gone@example.com", cc=["fine@example.com"])
        second = wait_status(client, second_id, TERMINAL)
        assert second.status == S.EMAIL_STATUS_SENT  # the other recipient still gets it
        by_address = {r.address: r.status for r in second.recipients}
        assert by_address == {"gone@example.com": S.EMAIL_STATUS_SUPPRESSED, "fine@example.com": S.EMAIL_STATUS_SENT}
        assert stack.recorder.wait_for(second_id).rcpt_tos == ["fine@example.com"]

        third = wait_status(client, send_simple(client, to="gone@example.com"), TERMINAL)
        assert third.status == S.EMAIL_STATUS_SUPPRESSED
        assert E.EVENT_TYPE_SUPPRESSED in types(third) and E.EVENT_TYPE_SENDING not in types(third)
    # Suppression lists are per account: account B can still send there.
    with stack.client(stack.key_b) as b:
        assert wait_status(b, send_simple(b, to="gone@example.com"), TERMINAL).status == S.EMAIL_STATUS_SENT


def test_one_of_three_recipients_refused_does_not_fail_the_others(stack: Stack) -> None:
    stack.recorder.rcpt_faults["nobody@example.com"] = ["550 5.1.1 No such user here"]
    with stack.client() as client:
        message_id = send_simple(client, to="one@example.com", cc=["nobody@example.com"], bcc=["three@example.com"])
        status = wait_status(client, message_id, TERMINAL)
    assert status.status == S.EMAIL_STATUS_SENT
    assert {r.address: r.status for r in status.recipients} == {
        "one@example.com": S.EMAIL_STATUS_SENT,
        "nobody@example.com": S.EMAIL_STATUS_BOUNCED,
        "three@example.com": S.EMAIL_STATUS_SENT,
    }
    assert sorted(stack.recorder.wait_for(message_id).rcpt_tos) == ["one@example.com", "three@example.com"]
    bounced = [e for e in status.events if e.type == E.EVENT_TYPE_BOUNCED]
    assert [(e.recipient, e.smtp_code) for e in bounced] == [("nobody@example.com", 550)]


@pytest.mark.parametrize("fault", ["STALL 4", "DISCONNECT"], ids=["timeout-mid-data", "disconnect-mid-data"])
def test_timeout_or_disconnect_mid_data_is_retried(stack: Stack, fault: str) -> None:
    rcpt = f"flaky-{fault.split()[0].lower()}@example.com"
    both_relays(stack, rcpt, [fault])
    with stack.client() as client:
        message_id = send_simple(client, to=rcpt)
        status = wait_status(client, message_id, TERMINAL, timeout=30)
    assert status.status == S.EMAIL_STATUS_SENT
    assert E.EVENT_TYPE_DEFERRED in types(status) and status.attempts == 2
    assert len(stack.recorder.by_message_id(message_id)) == 1


def test_relay_failover_on_4xx(stack: Stack) -> None:
    stack.recorder.faults["failover@example.com"] = ["451 4.3.0 Primary busy"]
    with stack.client() as client:
        message_id = send_simple(client, to="failover@example.com")
        status = wait_status(client, message_id, TERMINAL)
    assert status.status == S.EMAIL_STATUS_SENT and status.attempts == 1
    assert stack.backup.wait_for(message_id) and not stack.recorder.by_message_id(message_id)


def test_attachment_and_inline_image_round_trip(stack: Stack) -> None:
    pdf = bytes(range(256)) * 40
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    with stack.client() as client:
        message_id = client.send(
            from_address="files@example.com",
            to=["reader@example.com"],
            subject="Files",
            text_body="See attached.",
            html_body='<p>Logo: <img src="cid:logo@example.com"></p>',
            attachments=[
                email_pb2.Attachment(filename="Rechnung für Mai.pdf", content_type="application/pdf", content=pdf),
                email_pb2.Attachment(filename="logo.png", content_type="image/png", content=png, content_id="logo@example.com"),
            ],
        ).message_id
        message = stack.recorder.wait_for(message_id).message
    assert message.get_content_type() == "multipart/mixed"
    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [("Rechnung für Mai.pdf", "application/pdf")]
    assert attachments[0].get_content() == pdf
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    image = next(p for p in related.iter_parts() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo@example.com>" and image.get_content() == png
    assert message.get_body(("plain",)).get_content().strip() == "See attached."


def test_utf8_subject_display_name_and_international_domain(stack: Stack) -> None:
    with stack.client() as client:
        message_id = send_simple(
            client, to="Jörg Müller <joerg@bücher.example>", subject="Grüße aus Köln ✉", from_address="Zoë <zoe@example.com>"
        )
        received = stack.recorder.wait_for(message_id)
        assert received.rcpt_tos == ["joerg@xn--bcher-kva.example"]
        assert received.data.isascii()  # encoded words and IDNA: no SMTPUTF8 needed
        message = received.message
        assert message["Subject"] == "Grüße aus Köln ✉"
        assert message["To"].addresses[0].display_name == "Jörg Müller"
        assert message["From"].addresses[0].display_name == "Zoë"

        utf8_id = send_simple(client, to="пользователь@example.com")
        assert stack.recorder.wait_for(utf8_id).rcpt_tos == ["пользователь@example.com"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"headers": {"X-Note": "a\r\nBcc: spy@example.com"}}, 'headers["X-Note"]'),
        ({"to": ["victim@example.com\r\nBcc: spy@example.com"]}, "to[0]"),
        ({"subject": "Hi\nBcc: spy@example.com"}, "subject"),
        ({"headers": {"Bcc": "spy@example.com"}}, 'headers["Bcc"]'),
    ],
)
def test_header_injection_is_rejected(stack: Stack, fields: dict, field: str) -> None:
    request = {"from_address": "a@example.com", "to": ["b@example.com"], "subject": "s", "text_body": "t"}
    request.update(fields)
    with stack.client() as client, pytest.raises(InvalidArgumentError) as caught:
        client.send(**request)
    assert field in [f for f, _ in caught.value.violations]


def test_scheduled_send_is_held_until_due_and_cancel_stops_another(stack: Stack) -> None:
    with stack.client() as client:
        due = datetime.now(UTC) + timedelta(seconds=2)
        reply = client.send(
            from_address="a@example.com", to=["later-1@example.com"], subject="s", text_body="t", send_at=ts(due)
        )
        assert reply.status == S.EMAIL_STATUS_SCHEDULED
        assert client.get_status(reply.message_id).status == S.EMAIL_STATUS_SCHEDULED
        canceled = client.send(
            from_address="a@example.com", to=["later-2@example.com"], subject="s", text_body="t",
            send_at=ts(datetime.now(UTC) + timedelta(seconds=2)),
        ).message_id
        assert client.cancel_scheduled(canceled).status == S.EMAIL_STATUS_CANCELED

        status = wait_status(client, reply.message_id, TERMINAL)
        assert status.status == S.EMAIL_STATUS_SENT
        assert status.sent_at.ToDatetime(tzinfo=UTC) >= due
        assert types(status)[:2] == [E.EVENT_TYPE_SCHEDULED, E.EVENT_TYPE_QUEUED]

        time.sleep(1.5)
        assert client.get_status(canceled).status == S.EMAIL_STATUS_CANCELED
        assert not stack.recorder.by_message_id(canceled)
        with pytest.raises(FailedPreconditionError):
            client.cancel_scheduled(reply.message_id)
        with pytest.raises(InvalidArgumentError):
            client.send(from_address="a@example.com", to=["b@example.com"], text_body="t",
                        send_at=ts(datetime.now(UTC) + timedelta(days=31)))


def test_expired_email_fails_instead_of_sending_late(stack: Stack) -> None:
    both_relays(stack, "slowpoke@example.com", ["451 4.3.0 Later"] * 50)
    with stack.client() as client:
        message_id = client.send(
            from_address="a@example.com", to=["slowpoke@example.com"], subject="s", text_body="t",
            expires_at=ts(datetime.now(UTC) + timedelta(seconds=2)),
        ).message_id
        status = wait_status(client, message_id, TERMINAL, timeout=20)
    assert status.status == S.EMAIL_STATUS_FAILED


def test_idempotent_replay_returns_the_original_and_a_different_request_conflicts(stack: Stack) -> None:
    request = {"from_address": "a@example.com", "to": ["idem@example.com"], "subject": "once", "text_body": "t",
               "idempotency_key": "order-1001"}
    with stack.client() as client:
        first = client.send(**request)
        again = client.send(**request)
        assert again.message_id == first.message_id and again.status == first.status
        with pytest.raises(AlreadyExistsError):
            client.send(**{**request, "subject": "changed"})
        wait_status(client, first.message_id, TERMINAL)
    with stack.client(stack.key_b) as b:  # keys are per account
        assert b.send(**request).message_id != first.message_id
    time.sleep(0.5)
    assert len(stack.recorder.by_message_id(first.message_id)) == 1


def test_concurrent_duplicates_send_once(stack: Stack) -> None:
    request = {"from_address": "a@example.com", "to": ["race@example.com"], "subject": "race", "text_body": "t",
               "idempotency_key": "race-key"}

    def send(_: int) -> str:
        with Client(stack.address, stack.key_a) as client:
            return client.send(**request).message_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(send, range(16)))
    assert len(ids) == 1
    with stack.client() as client:
        wait_status(client, ids.pop(), TERMINAL)
    time.sleep(0.5)
    assert len([r for r in stack.recorder.received if "race@example.com" in r.rcpt_tos]) == 1


def test_per_domain_concurrency_is_capped(stack: Stack) -> None:
    # The stack allows 3 concurrent deliveries per domain; 8 worker threads are free.
    addresses = [f"slow{i}@slow.example.org" for i in range(8)]
    for address in addresses:
        stack.recorder.faults[address] = ["STALL 0.7"]
    with stack.client() as client:
        ids = [send_simple(client, to=address) for address in addresses]
        statuses = [wait_status(client, i, TERMINAL, timeout=30) for i in ids]
    assert {s.status for s in statuses} == {S.EMAIL_STATUS_SENT}
    assert 1 < stack.recorder.max_in_data["slow.example.org"] <= 3


def test_worker_killed_mid_send_is_released_after_the_lease_and_retried(stack: Stack) -> None:
    stack.recorder.faults["stall@example.com"] = ["STALL 60"]
    with stack.client() as client:
        message_id = send_simple(client, to="stall@example.com")
        deadline = time.monotonic() + 10
        while "stall@example.com" not in stack.recorder.stalled:
            assert time.monotonic() < deadline, "the delivery never reached DATA"
            time.sleep(0.05)
        stack.restart_workers()  # SIGKILL mid-DATA
        status = wait_status(client, message_id, TERMINAL, timeout=40)
    assert status.status == S.EMAIL_STATUS_SENT
    assert any(e.type == E.EVENT_TYPE_DEFERRED and "lease" in e.detail for e in status.events)
    assert len(stack.recorder.by_message_id(message_id)) == 1


def test_broker_down_at_accept_then_recovered_by_the_scheduler(stack: Stack, tmp_path) -> None:
    """Send succeeds while RabbitMQ is unreachable; the scheduler publishes it once back."""
    stack.scheduler.stop()  # only the schedulers behind the proxy may publish in this test
    with Proxy(5672) as broker:
        env = dict(stack.env)
        env["POSTWIRE_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:{broker.port}/%2F"
        env["POSTWIRE_GRPC_PORT"] = str(free_port())
        server = Process(["server"], env, tmp_path / "server.log")
        scheduler = Process(["scheduler"], env, tmp_path / "scheduler.log")
        address = f"127.0.0.1:{env['POSTWIRE_GRPC_PORT']}"
        try:
            wait_serving(address, server)
            broker.down()
            with Client(address, stack.key_a) as client:
                started = time.monotonic()
                reply = client.send(from_address="a@example.com", to=["outage@example.com"], subject="s", text_body="t")
                assert reply.status == S.EMAIL_STATUS_QUEUED
                assert time.monotonic() - started < 5
                time.sleep(3)
                assert client.get_status(reply.message_id).status == S.EMAIL_STATUS_QUEUED
                assert not stack.recorder.by_message_id(reply.message_id)
                broker.up()
                status = wait_status(client, reply.message_id, TERMINAL, timeout=30)
            assert status.status == S.EMAIL_STATUS_SENT
        finally:
            server.stop()
            scheduler.stop()
            stack.scheduler = Process(["scheduler"], stack.env, stack.logs / "scheduler-2.log")


def test_database_down_answers_unavailable(stack: Stack, tmp_path) -> None:
    from urllib.parse import urlsplit

    db = urlsplit(stack.env["POSTWIRE_DATABASE_URL"].replace("postgresql+psycopg", "postgresql"))
    with Proxy(db.port or 5432) as proxy:
        env = dict(stack.env)
        env["POSTWIRE_DATABASE_URL"] = stack.env["POSTWIRE_DATABASE_URL"].replace(f":{db.port}/", f":{proxy.port}/")
        env["POSTWIRE_GRPC_PORT"] = str(free_port())
        server = Process(["server"], env, tmp_path / "server.log")
        address = f"127.0.0.1:{env['POSTWIRE_GRPC_PORT']}"
        try:
            wait_serving(address, server)
            with Client(address, stack.key_a) as client:
                proxy.down()
                with pytest.raises(UnavailableError):
                    send_simple(client, to="dbdown@example.com")
                proxy.up()
                deadline = time.monotonic() + 10
                while True:
                    try:
                        message_id = send_simple(client, to="dbback@example.com")
                        break
                    except UnavailableError:
                        assert time.monotonic() < deadline
                        time.sleep(0.2)
                assert wait_status(client, message_id, TERMINAL).status == S.EMAIL_STATUS_SENT
        finally:
            server.stop()


def test_size_and_recipient_limits_answer_invalid_argument(stack: Stack) -> None:
    with stack.client() as client:
        with pytest.raises(InvalidArgumentError) as too_big:
            client.send(from_address="a@example.com", to=["b@example.com"], text_body="x" * (26 * 1024 * 1024))
        with pytest.raises(InvalidArgumentError) as too_many:
            client.send(from_address="a@example.com", to=[f"r{i}@example.com" for i in range(51)], text_body="t")
    assert too_big.value.violations and too_many.value.violations
    assert any("25" in d or "26214400" in d or "limit" in d for _, d in too_big.value.violations)


def test_a_lost_delivery_message_is_published_again(stack: Stack) -> None:
    """An email stuck QUEUED after its message was lost (say a worker gave up on it while
    the database was down) is published again once it has waited too long."""
    import psycopg

    with stack.client() as client:
        template = send_simple(client, to="lost@example.com")
        wait_status(client, template, TERMINAL)
        lost = "msg_lost" + secrets.token_hex(8)
        with psycopg.connect(stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO emails (public_id, account_id, status, content, attempts, last_error, created_at,"
                " updated_at, published_at, next_attempt_at, test_mode)"
                " SELECT %s, account_id, 'queued', content, 0, '', now(), now(), now() - interval '1 hour', now(), false"
                " FROM emails WHERE public_id = %s",
                (lost, template),
            )
        status = wait_status(client, lost, TERMINAL, timeout=30)
    assert status.status == S.EMAIL_STATUS_SENT
    assert stack.recorder.wait_for(lost)
