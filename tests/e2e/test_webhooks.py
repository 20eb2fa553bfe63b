"""Webhooks end to end: real server, workers and scheduler POSTing to a local receiver
that verifies Standard Webhooks signatures on its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from postwire.v1 import email_service_pb2, email_service_pb2_grpc, event_pb2, webhook_pb2
from postwire.v1 import webhook_service_pb2 as wpb
from postwire.v1 import webhook_service_pb2_grpc
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import code_of, create_key, md, server_process
from tests.support.envoy import run_envoy
from tests.support.webhooks import Receiver, verify

SEND = {"from_address": "a@example.com", "to": ["hooks@example.com"], "subject": "s", "text_body": "t"}
EVENT = event_pb2

@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r

class Account:
    """A fresh account with an admin key and a sending key."""

    def __init__(self, stack: Stack) -> None:
        name = "wh-" + secrets.token_hex(3)
        self.admin = create_key(stack, name, "--scope", "admin")
        self.key = create_key(stack, name)
        channel = grpc.insecure_channel(stack.address)
        self.hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        self.emails = email_service_pb2_grpc.EmailServiceStub(channel)

    def create(self, url: str, *types: int) -> wpb.CreateWebhookEndpointResponse:
        request = wpb.CreateWebhookEndpointRequest(url=url, description="test", event_types=list(types))
        return self.hooks.CreateWebhookEndpoint(request, metadata=md(self.admin))

    def send(self) -> str:
        return self.emails.Send(email_service_pb2.SendRequest(**SEND), metadata=md(self.key)).message_id

    def attempts(self, endpoint_id: str, **extra: object) -> list[webhook_pb2.WebhookAttempt]:
        request = wpb.ListWebhookAttemptsRequest(endpoint_id=endpoint_id, **extra)
        return list(self.hooks.ListWebhookAttempts(request, metadata=md(self.admin)).attempts)

    def endpoint(self, endpoint_id: str) -> webhook_pb2.WebhookEndpoint:
        listed = self.hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md(self.admin)).endpoints
        return next(e for e in listed if e.endpoint_id == endpoint_id)

def path() -> str:
    return "/hook/" + secrets.token_hex(4)

def about(message_id: str):  # noqa: ANN201
    return lambda got: [r for r in got if r.payload["data"].get("message_id") == message_id]

def wait_until(condition, timeout: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)

def test_signed_events_with_stable_ids_reach_the_endpoint(stack: Stack, receiver: Receiver) -> None:
    account, where = Account(stack), path()
    created = account.create(receiver.route(where))
    secret = created.secret
    assert secret.startswith("whsec_") and created.endpoint.endpoint_id.startswith("whk_")
    assert created.endpoint.state == webhook_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED
    listed = account.hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md(account.admin))
    assert secret not in str(listed) and [e.endpoint_id for e in listed.endpoints] == [created.endpoint.endpoint_id]

    message_id = account.send()
    types = {"email.queued", "email.sending", "email.sent"}
    got = receiver.wait_for(where, lambda g: types <= {r.payload["type"] for r in about(message_id)(g)})
    mine = about(message_id)(got)
    for request in mine:
        verify(secret, request.headers, request.body)
        assert request.headers["content-type"] == "application/json"
        assert request.webhook_id.startswith("evt_")
        data = request.payload["data"]
        assert data["type"] == "EVENT_TYPE_" + request.payload["type"].split(".")[1].upper()
        assert data["cursor"] and request.payload["timestamp"]
    assert len({r.webhook_id for r in mine}) == len(mine)  # one id per event
    sent = next(r for r in mine if r.payload["type"] == "email.sent")
    assert sent.payload["data"]["recipient"] == "hooks@example.com" and sent.payload["data"]["smtp_code"] == 250

def test_failures_are_retried_with_the_same_id_and_attempts_are_listed(stack: Stack, receiver: Receiver) -> None:
    account, where = Account(stack), path()
    created = account.create(receiver.route(where, 500, 503), EVENT.EVENT_TYPE_SENT)
    message_id = account.send()
    got = receiver.wait_for(where, lambda g: any(r.answered == 200 for r in g))
    assert [r.answered for r in got] == [500, 503, 200]
    assert len({r.webhook_id for r in got}) == 1 and {r.payload["type"] for r in got} == {"email.sent"}
    for request in got:
        verify(created.secret, request.headers, request.body)
    assert got[0].payload["data"]["message_id"] == message_id
    endpoint_id = created.endpoint.endpoint_id
    wait_until(lambda: len(account.attempts(endpoint_id)) == 3)
    attempts = account.attempts(endpoint_id)
    assert [a.status_code for a in attempts] == [200, 503, 500]  # newest first
    assert [a.attempt for a in attempts] == [3, 2, 1]
    assert [a.outcome for a in attempts] == [
        webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_DELIVERED,
        webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_RETRYING,
        webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_RETRYING,
    ]
    assert all(a.latency_ms >= 0 and a.webhook_id == got[0].webhook_id and a.message_id == message_id for a in attempts)
    assert "503" in attempts[1].error
    page = account.attempts(endpoint_id, page_size=2)
    assert len(page) == 2
    assert account.endpoint(endpoint_id).HasField("failing_since") is False

def test_gone_disables_the_endpoint_with_an_event_and_enable_brings_it_back(stack: Stack, receiver: Receiver) -> None:
    account, where = Account(stack), path()
    url = receiver.route(where, 410)
    endpoint_id = account.create(url, EVENT.EVENT_TYPE_QUEUED).endpoint.endpoint_id
    account.send()
    receiver.wait_for(where, lambda g: len(g) == 1)
    wait_until(lambda: account.endpoint(endpoint_id).state == webhook_pb2.WEBHOOK_ENDPOINT_STATE_DISABLED)
    endpoint = account.endpoint(endpoint_id)
    assert "410" in endpoint.disabled_reason and endpoint.HasField("disabled_at")

    stream = account.emails.StreamEvents(
        email_service_pb2.StreamEventsRequest(types=[EVENT.EVENT_TYPE_WEBHOOK_DISABLED]), metadata=md(account.key), timeout=15
    )
    event = next(r.event for r in stream if r.HasField("event"))
    stream.cancel()
    assert event.type == EVENT.EVENT_TYPE_WEBHOOK_DISABLED and event.message_id == ""
    assert endpoint_id in event.detail

    account.send()  # nothing goes to a disabled endpoint
    time.sleep(1.5)
    assert len(receiver.received(where)) == 1

    enabled = account.hooks.EnableWebhookEndpoint(wpb.EnableWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(account.admin))
    assert enabled.endpoint.state == webhook_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED and not enabled.endpoint.disabled_reason
    message_id = account.send()
    receiver.wait_for(where, about(message_id))

def test_other_client_errors_fail_that_event_without_retry(stack: Stack, receiver: Receiver) -> None:
    account, where = Account(stack), path()
    endpoint_id = account.create(receiver.route(where, default=422), EVENT.EVENT_TYPE_QUEUED).endpoint.endpoint_id
    account.send()
    receiver.wait_for(where, lambda g: len(g) == 1)
    time.sleep(2.0)  # several backoffs' worth
    assert len(receiver.received(where)) == 1
    attempts = account.attempts(endpoint_id)
    assert [(a.status_code, a.outcome) for a in attempts] == [(422, webhook_pb2.WEBHOOK_ATTEMPT_OUTCOME_FAILED)]
    endpoint = account.endpoint(endpoint_id)
    assert endpoint.state == webhook_pb2.WEBHOOK_ENDPOINT_STATE_ENABLED and endpoint.HasField("failing_since")

def test_test_event_and_secret_rotation_sign_with_both_secrets(stack: Stack, receiver: Receiver) -> None:
    account, where = Account(stack), path()
    created = account.create(receiver.route(where), EVENT.EVENT_TYPE_BOUNCED)
    endpoint_id, old = created.endpoint.endpoint_id, created.secret
    test_id = account.hooks.TestWebhookEndpoint(wpb.TestWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(account.admin)).webhook_id
    first = receiver.wait_for(where, lambda g: len(g) == 1)[0]
    assert first.webhook_id == test_id and first.payload["type"] == "webhook.test"
    assert len(first.headers["webhook-signature"].split(" ")) == 1
    verify(old, first.headers, first.body)

    rotated = account.hooks.RotateWebhookSecret(wpb.RotateWebhookSecretRequest(endpoint_id=endpoint_id), metadata=md(account.admin))
    new = rotated.secret
    assert new.startswith("whsec_") and new != old
    overlap = rotated.previous_secret_expires_at.ToSeconds() - time.time()
    assert 86_000 < overlap <= 86_400
    account.hooks.TestWebhookEndpoint(wpb.TestWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(account.admin))
    second = receiver.wait_for(where, lambda g: len(g) == 2)[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 2
    verify(new, second.headers, second.body)
    verify(old, second.headers, second.body)
    attempts = account.attempts(endpoint_id, webhook_id=test_id)
    assert [(a.status_code, a.event_type) for a in attempts] == [(200, "webhook.test")]

def test_update_changes_url_and_filter(stack: Stack, receiver: Receiver) -> None:
    account, first, second = Account(stack), path(), path()
    endpoint_id = account.create(receiver.route(first), EVENT.EVENT_TYPE_BOUNCED).endpoint.endpoint_id
    updated = account.hooks.UpdateWebhookEndpoint(
        wpb.UpdateWebhookEndpointRequest(endpoint_id=endpoint_id, url=receiver.route(second),
                                         update_mask=FieldMask(paths=["url", "event_types"])),
        metadata=md(account.admin),
    ).endpoint
    assert updated.url.endswith(second) and list(updated.event_types) == [] and updated.description == "test"
    message_id = account.send()
    receiver.wait_for(second, lambda g: {"email.queued", "email.sent"} <= {r.payload["type"] for r in about(message_id)(g)})
    assert receiver.received(first) == []
    with pytest.raises(grpc.RpcError) as caught:
        account.hooks.UpdateWebhookEndpoint(
            wpb.UpdateWebhookEndpointRequest(endpoint_id=endpoint_id, update_mask=FieldMask(paths=["secret"])),
            metadata=md(account.admin),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    account.hooks.DeleteWebhookEndpoint(wpb.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(account.admin))
    assert account.hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md(account.admin)).endpoints == []

def test_accounts_cannot_see_or_touch_each_others_endpoints(stack: Stack, receiver: Receiver) -> None:
    a, b = Account(stack), Account(stack)
    endpoint_id = a.create(receiver.route(path())).endpoint.endpoint_id
    calls = {
        "update": lambda: b.hooks.UpdateWebhookEndpoint(wpb.UpdateWebhookEndpointRequest(endpoint_id=endpoint_id, description="x"), metadata=md(b.admin)),
        "delete": lambda: b.hooks.DeleteWebhookEndpoint(wpb.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(b.admin)),
        "test": lambda: b.hooks.TestWebhookEndpoint(wpb.TestWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(b.admin)),
        "attempts": lambda: b.hooks.ListWebhookAttempts(wpb.ListWebhookAttemptsRequest(endpoint_id=endpoint_id), metadata=md(b.admin)),
        "rotate": lambda: b.hooks.RotateWebhookSecret(wpb.RotateWebhookSecretRequest(endpoint_id=endpoint_id), metadata=md(b.admin)),
        "enable": lambda: b.hooks.EnableWebhookEndpoint(wpb.EnableWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=md(b.admin)),
    }
    assert {name: code_of(call) for name, call in calls.items()} == {name: grpc.StatusCode.NOT_FOUND for name in calls}
    assert b.hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md(b.admin)).endpoints == []
    assert a.endpoint(endpoint_id).description == "test"
    no_admin = lambda: a.hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md(a.key))  # noqa: E731
    assert code_of(no_admin) == grpc.StatusCode.PERMISSION_DENIED

def _violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    out = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out

def test_private_addresses_are_refused_unless_allowed(stack: Stack, tmp_path: Path) -> None:
    account = Account(stack)
    process, address = server_process(stack, tmp_path, webhook_allow_private="false")
    try:
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(grpc.insecure_channel(address))
        for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.0.0.1/", "http://169.254.169.254/latest",
                    "http://[::1]/", "ftp://example.com/"):
            with pytest.raises(grpc.RpcError) as caught:
                hooks.CreateWebhookEndpoint(wpb.CreateWebhookEndpointRequest(url=url), metadata=md(account.admin))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
            assert "url" in _violations(caught.value), url
    finally:
        process.stop()

def test_json_routes_through_envoy(stack: Stack, receiver: Receiver, tmp_path: Path) -> None:
    account, where = Account(stack), path()
    port = int(stack.address.rsplit(":", 1)[1])
    headers = {"x-api-key": account.admin}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10, headers=headers) as http:
        created = http.post("/v1/webhooks", json={"url": receiver.route(where), "event_types": ["EVENT_TYPE_SENT"]})
        assert created.status_code == 200, created.text
        endpoint_id = created.json()["endpoint"]["endpoint_id"]
        assert created.json()["secret"].startswith("whsec_")
        assert [e["endpoint_id"] for e in http.get("/v1/webhooks").json()["endpoints"]] == [endpoint_id]
        patched = http.patch(f"/v1/webhooks/{endpoint_id}", json={"description": "renamed"})
        assert patched.status_code == 200 and patched.json()["endpoint"]["description"] == "renamed"
        assert http.post(f"/v1/webhooks/{endpoint_id}:test", json={}).status_code == 200
        receiver.wait_for(where, lambda g: len(g) == 1)
        wait_until(lambda: len(http.get(f"/v1/webhooks/{endpoint_id}/attempts").json().get("attempts", [])) == 1)
        rotated = http.post(f"/v1/webhooks/{endpoint_id}:rotateSecret", json={})
        assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
        assert http.post(f"/v1/webhooks/{endpoint_id}:enable", json={}).status_code == 200
        assert http.delete(f"/v1/webhooks/{endpoint_id}").status_code == 200
        assert http.delete(f"/v1/webhooks/{endpoint_id}").status_code == 404
        refused = http.post("/v1/webhooks", json={"url": "gopher://x"})
        assert refused.status_code == 400

