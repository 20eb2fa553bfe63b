"""SendBatch on the full stack: up to 1,000 emails per call, each accepted or refused
on its own, idempotent per message, counted per message by the rate limit, isolated
per account, and reachable as JSON through the real Envoy."""

from __future__ import annotations

import secrets
from pathlib import Path

import grpc
import httpx
import pytest

from postwire.v1 import email_pb2, email_service_pb2_grpc
from postwire.v1 import email_service_pb2 as pb
from postwire_client import Client, InvalidArgumentError, NotFoundError
from postwire_client.errors import ResourceExhausted as ResourceExhaustedError
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status
from tests.e2e.test_keys_and_limits import create_key
from tests.support.envoy import run_envoy

SENT = email_pb2.EMAIL_STATUS_SENT


def message(to: str = "batch@example.com", **fields: object) -> pb.SendRequest:
    values: dict[str, object] = dict(from_address="batch@example.com", to=[to], subject="Batch", text_body="Hi")
    values.update(fields)
    return pb.SendRequest(**values)  # type: ignore[arg-type]


def test_one_bad_message_is_refused_alone_and_the_others_are_delivered_in_order(stack: Stack) -> None:
    tag = secrets.token_hex(4)
    requests = [
        message(f"first-{tag}@example.com"),
        message("not an address"),
        message(f"third-{tag}@example.com", subject="bad\u0000subject"),
        message(f"fourth-{tag}@example.com", headers={"X-Evil": "a\r\nBcc: victim@example.com"}),
        message(f"fifth-{tag}@example.com", tags=[tag]),
    ]
    with stack.client() as client:
        results = client.send_batch(requests)
        assert [r.WhichOneof("result") for r in results] == ["accepted", "error", "error", "error", "accepted"]
        for bad, field in ((results[1], "to[0]"), (results[2], "subject"), (results[3], "headers")):
            assert bad.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert any(v.field.startswith(field) for v in bad.error.field_violations), bad.error
        for index in (0, 4):
            assert wait_status(client, results[index].accepted.message_id, {SENT}).status == SENT
    assert stack.recorder.wait_for(results[0].accepted.message_id).rcpt_tos == [f"first-{tag}@example.com"]
    assert stack.recorder.wait_for(results[4].accepted.message_id).rcpt_tos == [f"fifth-{tag}@example.com"]


def test_a_retried_batch_creates_no_duplicates_and_a_changed_message_conflicts_alone(stack: Stack) -> None:
    keys = [f"batch-{secrets.token_hex(6)}-{n}" for n in range(3)]
    requests = [message(f"idem{n}@example.com", idempotency_key=key) for n, key in enumerate(keys)]
    with stack.client() as client:
        first = client.send_batch(requests)
        again = client.send_batch(requests)
        assert [r.accepted.message_id for r in again] == [r.accepted.message_id for r in first]
        changed = [requests[0], message("idem1@example.com", idempotency_key=keys[1], subject="changed"), requests[2]]
        mixed = client.send_batch(changed)
        assert mixed[0].accepted.message_id == first[0].accepted.message_id
        assert mixed[1].error.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
        assert mixed[2].accepted.message_id == first[2].accepted.message_id
        # The same keys under another account are that account's own: new emails.
        with stack.client(stack.key_b) as client_b:
            other = client_b.send_batch(requests)
            assert {r.accepted.message_id for r in other}.isdisjoint(r.accepted.message_id for r in first)
            with pytest.raises(NotFoundError):
                client_b.get_status(first[0].accepted.message_id)


def test_a_call_without_messages_or_over_the_limit_is_invalid(stack: Stack) -> None:
    with stack.client() as client:
        for count in (0, 1001):
            with pytest.raises(InvalidArgumentError) as raised:
                client.send_batch([message(f"many{n}@example.com") for n in range(count)])
            assert raised.value.violations[0].field == "messages"


def test_a_request_over_the_size_bound_is_refused_before_anything_is_stored(stack: Stack) -> None:
    huge = [message(text_body="x" * (21 * 1024 * 1024)), message(text_body="y" * (21 * 1024 * 1024))]
    channel = grpc.insecure_channel(stack.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    stub = email_service_pb2_grpc.EmailServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.SendBatch(pb.SendBatchRequest(messages=huge), metadata=(("x-api-key", stack.key_a),), timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()


def test_the_rate_limit_counts_messages_not_calls(stack: Stack) -> None:
    key = create_key(stack, "account-a", "--kind", "test", "--send-per-minute", "5")
    with Client(stack.address, key) as client:
        assert len(client.send_batch([message(f"rl{n}@example.com") for n in range(3)])) == 3
        with pytest.raises(ResourceExhaustedError):
            client.send_batch([message(f"rl{n}@example.com") for n in range(3)])  # 6 > 5
        assert len(client.send_batch([message("rl-last@example.com"), message("rl-last2@example.com")])) == 2


def test_a_batch_larger_than_the_keys_limit_says_so_instead_of_retry_later(stack: Stack) -> None:
    key = create_key(stack, "account-a", "--kind", "test", "--send-per-minute", "5")
    with Client(stack.address, key) as client:
        with pytest.raises(ResourceExhaustedError) as raised:
            client.send_batch([message(f"big{n}@example.com") for n in range(6)])
        assert "counts 6 emails, more than the send budget of key allows per minute (5)" in raised.value.message
        assert len(client.send_batch([message(f"fits{n}@example.com") for n in range(5)])) == 5


def test_send_batch_as_json_through_envoy(stack: Stack, tmp_path: Path) -> None:
    port = int(stack.address.rsplit(":", 1)[1])
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        reply = http.post(
            "/v1/emails:batchSend",
            headers={"x-api-key": stack.key_a},
            json={"messages": [
                {"from_address": "json@example.com", "to": ["json-batch@example.com"], "subject": "A", "text_body": "a"},
                {"from_address": "json@example.com", "to": ["nobody"], "subject": "B", "text_body": "b"},
            ]},
        )
        assert reply.status_code == 200, reply.text
        results = reply.json()["results"]
        assert results[0]["accepted"]["message_id"].startswith("msg_")
        assert results[0]["accepted"]["status"] == "EMAIL_STATUS_QUEUED"
        assert results[1]["error"]["code"] == 3 and results[1]["error"]["field_violations"][0]["field"].startswith("to")
        empty = http.post("/v1/emails:batchSend", headers={"x-api-key": stack.key_a}, json={"messages": []})
        assert empty.status_code == 400, empty.text
    with stack.client() as client:
        assert wait_status(client, results[0]["accepted"]["message_id"], {SENT}).status == SENT
