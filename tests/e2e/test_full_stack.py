"""End to end on the full stack: gRPC → PostgreSQL → RabbitMQ → worker process → SMTP."""

from __future__ import annotations

import time

import grpc
import pytest

from postwire.v1 import email_pb2, event_pb2
from postwire_client import Client, InvalidArgumentError, NotFoundError, UnauthenticatedError
from tests.conftest import Stack

SENT = email_pb2.EMAIL_STATUS_SENT
E = event_pb2


def wait_status(client: Client, message_id: str, wanted: set[int], timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_status(message_id)
        if status.status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def send_simple(client: Client, to: str = "rcpt@example.com", **extra) -> str:
    fields = dict(from_address="Sender <sender@example.com>", to=[to], subject="Hello", text_body="Hi there")
    fields.update(extra)
    return client.send(**fields).message_id


def test_send_delivers_exactly_that_message_and_reports_sent_with_events_in_order(stack: Stack) -> None:
    with stack.client() as client:
        reply = client.send(
            from_address="Ada Sender <ada@example.com>",
            to=["Bob <bob@example.com>", "carol@example.com"],
            cc=["dave@example.com"],
            bcc=["hidden@example.com"],
            reply_to="replies@example.com",
            subject="Your receipt ✓",
            text_body="Thanks for your order.",
            html_body="<p>Thanks for your <b>order</b>.</p>",
            headers={"X-Campaign": "receipts"},
            tags=["receipt"],
            metadata={"order": "42"},
        )
        assert reply.message_id.startswith("msg_")
        assert reply.status == email_pb2.EMAIL_STATUS_QUEUED

        received = stack.recorder.wait_for(reply.message_id)
        message = received.message
        assert received.mail_from == "ada@example.com"
        assert sorted(received.rcpt_tos) == sorted(
            ["bob@example.com", "carol@example.com", "dave@example.com", "hidden@example.com"]
        )
        assert message["From"] == "Ada Sender <ada@example.com>"
        assert message["To"] == "Bob <bob@example.com>, carol@example.com"
        assert message["Cc"] == "dave@example.com"
        assert message["Reply-To"] == "replies@example.com"
        assert message["Subject"] == "Your receipt ✓"
        assert message["X-Campaign"] == "receipts"
        assert message["Message-ID"].startswith(f"<{reply.message_id}@")
        assert message["Date"] and message["MIME-Version"] == "1.0"
        assert "Bcc" not in message and b"hidden@example.com" not in received.data
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)).get_content().strip() == "Thanks for your order."
        assert message.get_body(("html",)).get_content().strip() == "<p>Thanks for your <b>order</b>.</p>"

        status = wait_status(client, reply.message_id, {SENT})
        assert status.status == SENT
        assert status.attempts == 1
        assert status.sent_at.seconds > 0 and status.created_at.seconds > 0
        assert [e.type for e in status.events[:2]] == [E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENDING]
        sent = status.events[2:]
        assert {e.type for e in sent} == {E.EVENT_TYPE_SENT} and {e.smtp_code for e in sent} == {250}
        assert sorted(e.recipient for e in sent) == sorted(received.rcpt_tos)
        assert {r.address: r.status for r in status.recipients} == {r: SENT for r in received.rcpt_tos}


def test_stream_events_from_start_and_from_a_midway_cursor(stack: Stack) -> None:
    with stack.client() as client:
        message_id = send_simple(client)
        status = wait_status(client, message_id, {SENT})
        stored = list(status.events)

        streamed = list(client.stream_events(message_ids=[message_id], idle_timeout=1.0))
        assert [(e.cursor, e.type) for e in streamed] == [(e.cursor, e.type) for e in stored]

        later = list(client.stream_events(message_ids=[message_id], after=stored[0].cursor, idle_timeout=1.0))
        assert [e.type for e in later] == [E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT]

        only_sent = list(client.stream_events(message_ids=[message_id], types=[E.EVENT_TYPE_SENT], idle_timeout=1.0))
        assert [e.type for e in only_sent] == [E.EVENT_TYPE_SENT]


def test_stream_delivers_live_events_after_the_stored_ones(stack: Stack) -> None:
    with stack.client() as client:
        first = send_simple(client)
        wait_status(client, first, {SENT})
        cursor = client.get_status(first).events[-1].cursor
        events = client.stream_events(after=cursor)  # live: no idle timeout
        second = send_simple(client)
        seen = []
        for event in events:
            assert event.message_id == second  # nothing before the cursor comes back
            seen.append(event.type)
            if event.type == E.EVENT_TYPE_SENT:
                break
        assert seen == [E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT]


def test_invalid_send_answers_invalid_argument_with_field_violations(stack: Stack) -> None:
    with stack.client() as client, pytest.raises(InvalidArgumentError) as caught:
        client.send(from_address="not-an-address", to=["ok@example.com"], subject="x\r\nBcc: evil@example.com")
    fields = {field for field, _ in caught.value.violations}
    assert {"from_address", "subject", "text_body"} <= fields


def test_missing_or_unknown_api_key_is_unauthenticated(stack: Stack) -> None:
    for key in ("", "pw_live_unknownunknownunknown", "garbage"):
        with stack.client(key) as client, pytest.raises(UnauthenticatedError):
            send_simple(client)


def test_unknown_or_other_accounts_message_is_not_found(stack: Stack) -> None:
    with stack.client(stack.key_a) as a, stack.client(stack.key_b) as b:
        message_id = send_simple(a)
        with pytest.raises(NotFoundError):
            b.get_status(message_id)
        with pytest.raises(NotFoundError):
            a.get_status("msg_doesnotexist")
        assert list(b.stream_events(message_ids=[message_id], idle_timeout=0.5)) == []


def test_bad_cursor_is_invalid_argument(stack: Stack) -> None:
    with stack.client() as client, pytest.raises(InvalidArgumentError) as caught:
        list(client.stream_events(after="not-a-cursor", idle_timeout=1.0))
    assert caught.value.violations[0][0] == "after"


def test_permanent_smtp_failure_bounces_without_retry(stack: Stack) -> None:
    stack.recorder.faults["bounce@example.com"] = ["550 5.1.1 No such user"] * 5
    with stack.client() as client:
        message_id = send_simple(client, to="bounce@example.com")
        status = wait_status(client, message_id, {email_pb2.EMAIL_STATUS_BOUNCED})
    assert status.status == email_pb2.EMAIL_STATUS_BOUNCED
    assert status.attempts == 1
    assert status.events[-1].type == E.EVENT_TYPE_BOUNCED
    assert status.events[-1].smtp_code == 550
    assert "No such user" in status.last_error
    assert not stack.backup.by_message_id(message_id)  # a 5xx does not fail over


def test_transient_smtp_failure_is_retried_then_sent(stack: Stack) -> None:
    stack.recorder.faults["later@example.com"] = ["451 4.3.0 Try again later"]
    stack.backup.faults["later@example.com"] = ["451 4.3.0 Try again later"]
    with stack.client() as client:
        message_id = send_simple(client, to="later@example.com")
        status = wait_status(client, message_id, {SENT})
    assert status.status == SENT
    assert status.attempts == 2
    assert [e.type for e in status.events] == [
        E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENDING, E.EVENT_TYPE_DEFERRED,
        E.EVENT_TYPE_SENDING, E.EVENT_TYPE_SENT,
    ]
    assert status.events[2].smtp_code == 451
    assert len(stack.recorder.by_message_id(message_id)) == 1


def test_retry_lifetime_exhausted_ends_failed_with_an_event_and_a_dead_letter(stack: Stack) -> None:
    # Both relays answer 451 every time; the stack's retry lifetime is 6 s.
    stack.recorder.faults["never@example.com"] = ["451 4.3.0 Busy"] * 100
    stack.backup.faults["never@example.com"] = ["451 4.3.0 Busy"] * 100
    with stack.client() as client:
        message_id = send_simple(client, to="never@example.com")
        status = wait_status(client, message_id, {email_pb2.EMAIL_STATUS_FAILED}, timeout=30)
    assert status.status == email_pb2.EMAIL_STATUS_FAILED
    assert status.attempts >= 3
    assert status.events[-1].type == E.EVENT_TYPE_FAILED
    assert "451 4.3.0 Busy" in status.events[-1].detail
    assert E.EVENT_TYPE_DEFERRED in [e.type for e in status.events]
    # The dead letter is a copy published after FAILED is committed (the database holds
    # the facts first), so it may land a moment after GetStatus shows FAILED.
    deadline = time.monotonic() + 10
    while not any(d["message_id"] == message_id and "451" in d["reason"] for d in dead_letters(stack)):
        assert time.monotonic() < deadline, "no dead letter for the FAILED email within 10 s"
        time.sleep(0.1)


def dead_letters(stack: Stack) -> list[dict]:
    import json

    import pika

    connection = pika.BlockingConnection(pika.URLParameters(stack.env["POSTWIRE_BROKER_URL"]))
    try:
        channel = connection.channel()
        queue = stack.env["POSTWIRE_QUEUE_PREFIX"] + ".dead-letter"
        found = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append(json.loads(body))
        return found  # unacked: they go back to the queue when the connection closes
    finally:
        connection.close()


def test_health_and_reflection_need_no_key(stack: Stack) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(stack.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="postwire.v1.EmailService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
