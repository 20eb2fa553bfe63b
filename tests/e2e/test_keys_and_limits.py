"""Keys, scopes, test mode, rate limits across processes, and tenant isolation."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from postwire.v1 import api_key_pb2, email_pb2, email_service_pb2, email_service_pb2_grpc, key_service_pb2_grpc
from postwire.v1 import key_service_pb2 as kpb
from postwire_client import Client, NotFoundError, UnauthenticatedError
from tests.conftest import Stack
from tests.e2e.test_full_stack import send_simple, wait_status
from tests.support.envoy import run_envoy
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import Process, run, wait_serving
from tests.support.proxy import Proxy

SEND = {"from_address": "a@example.com", "to": ["limits@example.com"], "subject": "s", "text_body": "t"}
TERMINAL = {email_pb2.EMAIL_STATUS_SENT, email_pb2.EMAIL_STATUS_BOUNCED, email_pb2.EMAIL_STATUS_FAILED}


def create_key(stack: Stack, account: str, *flags: str) -> str:
    return make_key(stack.env, account, *flags)


def server_process(stack: Stack, tmp_path: Path, **overrides: str) -> tuple[Process, str]:
    env = dict(stack.env)
    env["POSTWIRE_GRPC_PORT"] = str(free_port())
    env.update({f"POSTWIRE_{k.upper()}": v for k, v in overrides.items()})
    process = Process(["server"], env, tmp_path / f"server-{secrets.token_hex(2)}.log")
    address = f"127.0.0.1:{env['POSTWIRE_GRPC_PORT']}"
    wait_serving(address, process)
    return process, address


@pytest.fixture(scope="module")
def second_server(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another server process on the same database and Redis."""
    process, address = server_process(stack, tmp_path_factory.mktemp("second"))
    yield address
    process.stop()


def emails(address: str) -> email_service_pb2_grpc.EmailServiceStub:
    return email_service_pb2_grpc.EmailServiceStub(grpc.insecure_channel(address))


def keys_stub(address: str) -> key_service_pb2_grpc.KeyServiceStub:
    return key_service_pb2_grpc.KeyServiceStub(grpc.insecure_channel(address))


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", key),)


def code_of(call) -> grpc.StatusCode:  # noqa: ANN001
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


# Scopes ----------------------------------------------------------------------------------


def test_each_rpc_needs_its_scope(stack: Stack) -> None:
    read_only = create_key(stack, "account-a", "--scope", "read")
    send_only = create_key(stack, "account-a", "--scope", "send")
    stub, keys = emails(stack.address), keys_stub(stack.address)
    assert code_of(lambda: stub.Send(email_service_pb2.SendRequest(**SEND), metadata=md(read_only))) == grpc.StatusCode.PERMISSION_DENIED
    message_id = stub.Send(email_service_pb2.SendRequest(**SEND), metadata=md(send_only)).message_id
    assert code_of(lambda: stub.GetStatus(email_service_pb2.GetStatusRequest(message_id=message_id), metadata=md(send_only))) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: stub.GetStatus(email_service_pb2.GetStatusRequest(message_id=message_id), metadata=md(read_only))) == grpc.StatusCode.OK
    assert code_of(lambda: next(stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=md(read_only)))) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=md(stack.key_a))) == grpc.StatusCode.PERMISSION_DENIED


def test_unknown_revoked_and_expired_keys_get_the_same_answer(stack: Stack) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=4)
    expiring = create_key(stack, "account-a", "--expires-at", expires.isoformat())
    stub = emails(stack.address)
    request = email_service_pb2.GetStatusRequest(message_id="msg_x")
    assert code_of(lambda: stub.GetStatus(request, metadata=md(expiring))) == grpc.StatusCode.NOT_FOUND
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.6)
    answers = set()
    for key in (expiring, "pw_live_" + "x" * 40, "nonsense"):
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetStatus(request, metadata=md(key))
        answers.add((caught.value.code(), caught.value.details()))
    assert answers == {(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key")}


# Key management ------------------------------------------------------------------------------


def test_admin_creates_lists_and_revokes_keys_and_revocation_reaches_every_process_within_a_second(
    stack: Stack, second_server: str
) -> None:
    admin = create_key(stack, "account-a", "--scope", "admin")
    keys = keys_stub(stack.address)
    created = keys.CreateApiKey(
        kpb.CreateApiKeyRequest(name="ci", scopes=[api_key_pb2.SCOPE_SEND, api_key_pb2.SCOPE_READ]), metadata=md(admin)
    )
    secret = created.secret
    assert secret.startswith("pw_live_") and created.api_key.key_id.startswith("key_")
    listed = keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=md(admin)).api_keys
    assert created.api_key.key_id in [k.key_id for k in listed]
    assert all(secret not in str(k) for k in listed)

    other = emails(second_server)
    request = email_service_pb2.GetStatusRequest(message_id="msg_x")
    assert code_of(lambda: other.GetStatus(request, metadata=md(secret))) == grpc.StatusCode.NOT_FOUND  # cached there now
    keys.RevokeApiKey(kpb.RevokeApiKeyRequest(key_id=created.api_key.key_id), metadata=md(admin))
    revoked_at = time.monotonic()
    while code_of(lambda: other.GetStatus(request, metadata=md(secret))) != grpc.StatusCode.UNAUTHENTICATED:
        assert time.monotonic() - revoked_at < 1.0, "revocation not seen by the second server within a second"
        time.sleep(0.05)

    with pytest.raises(grpc.RpcError) as caught:
        keys.CreateApiKey(kpb.CreateApiKeyRequest(name=""), metadata=md(admin))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_lists_and_revokes_keys(stack: Stack) -> None:
    key = create_key(stack, "cli-account")
    listing = run(["keys", "list", "--account", "cli-account"], stack.env)
    key_id = listing.split()[0]
    assert key_id.startswith("key_") and key[:16] in listing and key not in listing
    run(["keys", "revoke", key_id, "--account", "cli-account"], stack.env)
    time.sleep(0.6)
    with Client(stack.address, key) as client, pytest.raises(UnauthenticatedError):
        client.get_status("msg_x")


# Test keys -------------------------------------------------------------------------------------


def test_test_keys_store_and_report_delivery_but_nothing_reaches_smtp(stack: Stack) -> None:
    test_key = create_key(stack, "account-a", "--kind", "test")
    assert test_key.startswith("pw_test_")
    with Client(stack.address, test_key) as client:
        message_id = send_simple(client, to="sandbox@example.com")
        status = wait_status(client, message_id, TERMINAL)
    assert status.status == email_pb2.EMAIL_STATUS_SENT
    assert "test mode" in status.events[-1].smtp_message
    time.sleep(0.5)
    assert not stack.recorder.by_message_id(message_id) and not stack.backup.by_message_id(message_id)


# Rate limits -----------------------------------------------------------------------------------


def _send_with_call(stub: email_service_pb2_grpc.EmailServiceStub, key: str):  # noqa: ANN202
    try:
        _, call = stub.Send.with_call(email_service_pb2.SendRequest(**SEND), metadata=md(key))
        return grpc.StatusCode.OK, dict(call.initial_metadata()), None
    except grpc.RpcError as error:
        return error.code(), dict(error.trailing_metadata() or ()), error


def test_a_limit_holds_exactly_across_two_server_processes(stack: Stack, second_server: str) -> None:
    key = create_key(stack, "account-limits", "--kind", "test", "--send-per-minute", "100")
    stubs = [emails(stack.address), emails(second_server)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: _send_with_call(stubs[i % 2], key), range(160)))
    codes = [code for code, _, _ in results]
    assert codes.count(grpc.StatusCode.OK) == 100
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 60

    ok_metadata = [m for code, m, _ in results if code == grpc.StatusCode.OK]
    assert {m["x-ratelimit-limit"] for m in ok_metadata} == {"100"}
    assert sorted(int(m["x-ratelimit-remaining"]) for m in ok_metadata) == list(range(100))

    _, metadata, error = next(r for r in results if r[0] == grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert metadata["x-ratelimit-remaining"] == "0" and int(metadata["retry-after"]) >= 1
    assert int(metadata["x-ratelimit-reset"]) <= 60
    details = rpc_status.from_call(error).details
    retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert any(d.Unpack(retry) for d in details if d.Is(retry.DESCRIPTOR))
    assert any(d.Unpack(quota) for d in details if d.Is(quota.DESCRIPTOR))
    assert retry.retry_delay.seconds > 0 and quota.violations[0].subject.endswith(":send")


def test_send_and_read_budgets_are_separate(stack: Stack) -> None:
    key = create_key(stack, "account-a", "--kind", "test", "--send-per-minute", "2", "--read-per-minute", "3")
    stub = emails(stack.address)
    assert [_send_with_call(stub, key)[0] for _ in range(3)] == [grpc.StatusCode.OK] * 2 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    request = email_service_pb2.GetStatusRequest(message_id="msg_x")
    assert [code_of(lambda: stub.GetStatus(request, metadata=md(key))) for _ in range(4)] == [grpc.StatusCode.NOT_FOUND] * 3 + [
        grpc.StatusCode.RESOURCE_EXHAUSTED
    ]


def test_concurrent_event_streams_are_capped_per_key(stack: Stack) -> None:
    key = create_key(stack, "account-a", "--max-streams", "2")
    stub = emails(stack.address)
    first = stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=md(key))
    second = stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=md(key))
    time.sleep(0.5)  # both are open and holding their slots
    assert code_of(lambda: next(stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=md(key)))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
    time.sleep(0.5)
    third = stub.StreamEvents(email_service_pb2.StreamEventsRequest(), metadata=md(key))
    time.sleep(0.5)
    assert not third.done()  # still open: the freed slot was reusable
    second.cancel()
    third.cancel()


def test_redis_outage_falls_back_to_per_process_limits_and_recovers(stack: Stack, tmp_path: Path, second_server: str) -> None:
    key = create_key(stack, "account-a", "--kind", "test", "--read-per-minute", "5")
    with Proxy(6379) as redis_proxy:
        process, address = server_process(stack, tmp_path, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")
        try:
            stub = emails(address)
            request = email_service_pb2.GetStatusRequest(message_id="msg_x")
            redis_proxy.down()  # Redis unreachable: limits still hold, per process
            codes = [code_of(lambda: stub.GetStatus(request, metadata=md(key))) for _ in range(7)]
            assert codes.count(grpc.StatusCode.NOT_FOUND) == 5 and codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "degraded" in process.log() or "Redis" in process.log()

            redis_proxy.up()
            time.sleep(1.5)  # the limiter retries Redis at most once a second
            # Back on Redis: the budget is shared with the other server again, which has
            # not used any of it, so this process admits reads again until 5 in Redis.
            shared = [code_of(lambda: stub.GetStatus(request, metadata=md(key))) for _ in range(5)]
            other = emails(second_server)
            shared += [code_of(lambda: other.GetStatus(request, metadata=md(key))) for _ in range(2)]
            assert shared.count(grpc.StatusCode.NOT_FOUND) == 5
            assert shared[-2:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
        finally:
            process.stop()


def test_failed_authentications_are_limited_per_client_address(stack: Stack, tmp_path: Path) -> None:
    # Its own Redis prefix, so blocking 127.0.0.1 here does not block the other tests.
    process, address = server_process(stack, tmp_path, auth_failures_per_minute="5", queue_prefix=f"authfail_{secrets.token_hex(3)}")
    try:
        stub = emails(address)
        request = email_service_pb2.GetStatusRequest(message_id="msg_x")
        codes = [code_of(lambda: stub.GetStatus(request, metadata=md("pw_live_" + "y" * 40))) for _ in range(7)]
        assert codes[:5] == [grpc.StatusCode.UNAUTHENTICATED] * 5
        assert codes[5:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    finally:
        process.stop()


def test_envoy_answers_429_with_rate_limit_headers(stack: Stack, tmp_path: Path) -> None:
    key = create_key(stack, "account-a", "--read-per-minute", "2")
    port = int(stack.address.rsplit(":", 1)[1])
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        first = http.get("/v1/emails/msg_x", headers={"x-api-key": key})
        assert first.status_code == 404
        assert first.headers["x-ratelimit-limit"] == "2" and first.headers["x-ratelimit-remaining"] == "1"
        http.get("/v1/emails/msg_x", headers={"x-api-key": key})
        limited = http.get("/v1/emails/msg_x", headers={"x-api-key": key})
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-remaining"] == "0" and int(limited.headers["retry-after"]) >= 1
    assert "x-ratelimit-reset" in limited.headers
    types = {d["@type"].rsplit("/", 1)[1] for d in limited.json()["details"]}
    assert {"google.rpc.RetryInfo", "google.rpc.QuotaFailure"} <= types


# Tenant isolation --------------------------------------------------------------------------------


def test_isolation_matrix_every_rpc_denies_cross_account_access(stack: Stack) -> None:
    admin_a = create_key(stack, "account-a", "--scope", "admin")
    admin_b = create_key(stack, "account-b", "--scope", "admin")
    stub, keys = emails(stack.address), keys_stub(stack.address)
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    a_sent = stub.Send(email_service_pb2.SendRequest(**SEND), metadata=md(stack.key_a)).message_id
    a_scheduled = stub.Send(email_service_pb2.SendRequest(**SEND, send_at=later), metadata=md(stack.key_a)).message_id
    a_key_id = keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=md(admin_a)).api_keys[0].key_id

    b = md(stack.key_b)
    assert code_of(lambda: stub.GetStatus(email_service_pb2.GetStatusRequest(message_id=a_sent), metadata=b)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.CancelScheduled(email_service_pb2.CancelScheduledRequest(message_id=a_scheduled), metadata=b)) == grpc.StatusCode.NOT_FOUND
    with Client(stack.address, stack.key_b) as client_b:
        assert list(client_b.stream_events(message_ids=[a_sent, a_scheduled], idle_timeout=0.7)) == []
        assert all(e.message_id not in (a_sent, a_scheduled) for e in client_b.stream_events(idle_timeout=0.7))
    assert code_of(lambda: keys.RevokeApiKey(kpb.RevokeApiKeyRequest(key_id=a_key_id), metadata=md(admin_b))) == grpc.StatusCode.NOT_FOUND
    b_keys = {k.key_id for k in keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=md(admin_b)).api_keys}
    assert a_key_id not in b_keys
    # A's email and key are untouched by B's attempts.
    assert stub.GetStatus(email_service_pb2.GetStatusRequest(message_id=a_scheduled), metadata=md(stack.key_a)).status == email_pb2.EMAIL_STATUS_SCHEDULED
    assert code_of(lambda: keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=md(admin_a))) == grpc.StatusCode.OK
    with Client(stack.address, stack.key_a) as client_a, pytest.raises(NotFoundError):
        client_a.cancel_scheduled("msg_" + "z" * 24)
