"""envoy/envoy.yaml, checked against a real Envoy.

A small grpc.aio EmailService defined here stands behind the Envoy the tests
start (tests/support/envoy.py), so these tests pin down what the JSON/HTTP API
looks like: how requests map onto the protos, the JSON shapes of responses,
errors and streams. The real service is tested end to end elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
try:  # tests/conftest.py normally puts gen/ and the repo root on sys.path
    import postwire.v1  # noqa: F401
except ImportError:
    for _path in (REPO_ROOT / "gen", REPO_ROOT):
        if str(_path) not in sys.path:
            sys.path.insert(0, str(_path))

import grpc
import httpx
import pytest
import pytest_asyncio
import yaml
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from postwire.v1 import email_pb2, email_service_pb2, email_service_pb2_grpc, event_pb2

from tests.support.envoy import (
    ENVOY_YAML,
    EnvoyInfo,
    envoy_binary,
    render_config,
    run_envoy,
    unique_base_id,
)
from tests.support.ports import free_port

pb = email_service_pb2
GOOGLE_RPC_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# Values of `after` / `subject` / `message_id` that make the fake service fail
# or behave in a particular way.
AFTER_ENDLESS = "endless"
AFTER_FAIL = "fail-mid-stream"
SUBJECT_INVALID = "trigger-invalid-argument"
SUBJECT_UNAUTHENTICATED = "trigger-unauthenticated"
MISSING_ID = "msg_missing"


# --------------------------------------------------------------------------
# The fake gRPC service behind Envoy
# --------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    request: Any
    metadata: dict[str, str]


@dataclass
class Backend:
    port: int
    calls: list[Call] = field(default_factory=list)
    # Set when an endless StreamEvents call ends because the client went away.
    stream_cancelled: threading.Event = field(default_factory=threading.Event)

    def last(self, method: str) -> Call:
        matching = [c for c in self.calls if c.method == method]
        assert matching, f"the gRPC server received no {method} call"
        return matching[-1]


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}


def _event(cursor: str, type_: int = event_pb2.EVENT_TYPE_SENT) -> event_pb2.Event:
    return event_pb2.Event(
        cursor=cursor,
        message_id="msg_1",
        type=type_,
        occurred_at=timestamp_pb2.Timestamp(seconds=1767322800),  # 2026-01-02T03:00:00Z
        smtp_code=250,
        smtp_message="2.0.0 Ok: queued",
    )


class FakeEmailService(email_service_pb2_grpc.EmailServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.backend.calls.append(Call(method, request, _metadata(context)))

    async def Send(self, request, context):
        self._record("Send", request, context)
        if request.subject == SUBJECT_INVALID:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="to", description="at least one recipient is required"
                        )
                    ]
                )
            )
            await context.abort_with_status(
                rpc_status.to_status(
                    status_pb2.Status(
                        code=code_pb2.INVALID_ARGUMENT,
                        message="the email is invalid",
                        details=[detail],
                    )
                )
            )
        if request.subject == SUBJECT_UNAUTHENTICATED:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown API key")
        return pb.SendResponse(message_id="msg_test1", status=email_pb2.EMAIL_STATUS_QUEUED)

    async def GetStatus(self, request, context):
        self._record("GetStatus", request, context)
        if request.message_id == MISSING_ID:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no email {request.message_id}")
        return pb.GetStatusResponse(
            message_id=request.message_id,
            status=email_pb2.EMAIL_STATUS_QUEUED,
            created_at=timestamp_pb2.Timestamp(seconds=1767322800),
            events=[_event("c1", event_pb2.EVENT_TYPE_QUEUED)],
        )

    async def StreamEvents(self, request, context):
        self._record("StreamEvents", request, context)
        if request.after == AFTER_ENDLESS:
            try:
                yield pb.StreamEventsResponse(event=_event("c1"))
                while True:
                    await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.backend.stream_cancelled.set()
                raise
        types = list(request.types) or [event_pb2.EVENT_TYPE_SENT]
        for i in range(3):
            yield pb.StreamEventsResponse(event=_event(f"c{i + 1}", types[i % len(types)]))
        if request.after == AFTER_FAIL:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "event store unavailable")


# --------------------------------------------------------------------------
# Fixtures: the gRPC server runs on the session event loop (pyproject:
# asyncio_mode=auto, session loop scope), so every HTTP call in the tests must
# be async (httpx.AsyncClient) to let it answer.
# --------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backend() -> AsyncIterator[Backend]:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    state = Backend(port=port)
    email_service_pb2_grpc.add_EmailServiceServicer_to_server(FakeEmailService(state), server)
    # A service the transcoder knows nothing about, to check that native gRPC
    # traffic still passes through Envoy.
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    await server.start()
    try:
        yield state
    finally:
        await server.stop(grace=None)


@pytest.fixture(scope="module")
def envoy(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyInfo]:
    with run_envoy(backend.port, tmp_path_factory.mktemp("envoy")) as info:
        yield info


@pytest.fixture(scope="module")
def envoy_sse(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyInfo]:
    with run_envoy(backend.port, tmp_path_factory.mktemp("envoy-sse"), sse=True) as info:
        yield info


@pytest_asyncio.fixture(loop_scope="session")
async def client(envoy: EnvoyInfo) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=envoy.base_url, timeout=10) as c:
        yield c


def assert_json_status(response: httpx.Response, http_status: int, code: int) -> dict[str, Any]:
    """The response is a JSON google.rpc.Status with this HTTP status and code."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


# --------------------------------------------------------------------------
# The config file itself
# --------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["as-shipped", "rendered-ndjson", "rendered-sse"])
def test_config_validates(variant: str, tmp_path: Path) -> None:
    if variant == "as-shipped":
        config = "envoy/envoy.yaml"  # relative descriptor path: run from the repo root
    else:
        config = str(tmp_path / "envoy.yaml")
        Path(config).write_text(
            render_config(50051, 8080, 9901, sse=variant == "rendered-sse")
        )
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", config, "--base-id", str(unique_base_id())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_config_does_not_cut_long_streams() -> None:
    config = yaml.safe_load(ENVOY_YAML.read_text())
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"
    ]
    tracking, route = hcm["route_config"]["virtual_hosts"][0]["routes"]  # /t/ (docs/tracking.md), then the rest
    assert tracking["match"] == {"prefix": "/t/"} and tracking["route"]["cluster"] == "postwire_tracking"
    assert route["route"]["timeout"] == "0s"  # default 15 s would end every stream
    assert int(hcm["stream_idle_timeout"].rstrip("s")) >= 3600
    assert int(route["route"]["idle_timeout"].rstrip("s")) >= 3600
    assert config["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "127.0.0.1", "port_value": 8080}


def test_render_config_rewrites_ports_and_descriptor() -> None:
    config = yaml.safe_load(render_config(1111, 2222, 3333, sse=True))
    assert config["admin"]["address"]["socket_address"]["port_value"] == 3333
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"]["port_value"] == 2222
    cluster, tracking = config["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 1111
    assert tracking["name"] == "postwire_tracking"
    filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    (transcoder,) = [f for f in filters if f["name"].endswith("grpc_json_transcoder")]
    descriptor = Path(transcoder["typed_config"]["proto_descriptor"])
    assert descriptor.is_absolute() and descriptor.is_file()
    options = transcoder["typed_config"]["print_options"]
    assert options.get("stream_sse_style_delimited") is True
    assert "stream_newline_delimited" not in options


# --------------------------------------------------------------------------
# Requests and responses
# --------------------------------------------------------------------------


async def test_send_maps_json_body_to_send_request(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    body = {
        "from_address": "Postwire <noreply@example.com>",
        "to": ["ann@example.com", "bob@example.com"],
        "cc": ["cc@example.com"],
        "bcc": ["bcc@example.com"],
        "reply_to": "support@example.com",
        "subject": "Your receipt",
        "text_body": "Thanks!",
        "html_body": "<p>Thanks!</p>",
        "headers": {"X-Campaign": "receipts", "X-Priority": "1"},
        "tags": ["receipt"],
        "metadata": {"order_id": "42"},
    }
    response = await client.post("/v1/emails", json=body, headers={"x-api-key": "pw_test"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message_id": "msg_test1", "status": "EMAIL_STATUS_QUEUED"}

    request = backend.last("Send").request
    assert request == pb.SendRequest(**body)


async def test_send_also_accepts_lower_camel_case_names(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    response = await client.post(
        "/v1/emails", json={"fromAddress": "a@example.com", "textBody": "hi", "to": ["b@example.com"]}
    )
    assert response.status_code == 200, response.text
    request = backend.last("Send").request
    assert request.from_address == "a@example.com" and request.text_body == "hi"


async def test_api_key_headers_reach_server_as_metadata(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    response = await client.post(
        "/v1/emails",
        json={"subject": "metadata"},
        headers={"x-api-key": "pw_live_abc", "authorization": "Bearer pw_live_def"},
    )
    assert response.status_code == 200, response.text
    metadata = backend.last("Send").metadata
    assert metadata["x-api-key"] == "pw_live_abc"
    assert metadata["authorization"] == "Bearer pw_live_def"


async def test_get_status_maps_path_parameter(client: httpx.AsyncClient, backend: Backend) -> None:
    response = await client.get("/v1/emails/msg_abc123")

    assert response.status_code == 200, response.text
    assert backend.last("GetStatus").request == pb.GetStatusRequest(message_id="msg_abc123")
    # Zero values are printed too (always_print_primitive_fields); unset
    # message fields (updated_at, sent_at) are left out.
    assert response.json() == {
        "message_id": "msg_abc123",
        "status": "EMAIL_STATUS_QUEUED",
        "attempts": 0,
        "last_error": "",
        "created_at": "2026-01-02T03:00:00Z",
        "events": [
            {
                "cursor": "c1",
                "message_id": "msg_1",
                "type": "EVENT_TYPE_QUEUED",
                "occurred_at": "2026-01-02T03:00:00Z",
                "smtp_code": 250,
                "smtp_message": "2.0.0 Ok: queued",
                "detail": "",
                "recipient": "",
            }
        ],
        "recipients": [],
        "template_id": "",
        "template_version": 0,
        "template_variant": "",
    }


async def test_stream_events_maps_query_and_streams_ndjson(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    url = (
        "/v1/events?message_ids=msg_a&message_ids=msg_b"
        "&types=EVENT_TYPE_SENT&types=EVENT_TYPE_BOUNCED&after=c0"
    )
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        raw = (await response.aread()).decode()

    assert backend.last("StreamEvents").request == pb.StreamEventsRequest(
        message_ids=["msg_a", "msg_b"],
        types=[event_pb2.EVENT_TYPE_SENT, event_pb2.EVENT_TYPE_BOUNCED],
        after="c0",
    )
    # NDJSON: one object per line, each ending in "\n"; no enclosing array.
    assert raw.endswith("\n")
    lines = raw.splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    assert all(set(e) == {"event"} for e in events)
    assert [e["event"]["cursor"] for e in events] == ["c1", "c2", "c3"]
    assert [e["event"]["type"] for e in events] == [
        "EVENT_TYPE_SENT",
        "EVENT_TYPE_BOUNCED",
        "EVENT_TYPE_SENT",
    ]
    assert events[0]["event"] == {
        "cursor": "c1",
        "message_id": "msg_1",
        "type": "EVENT_TYPE_SENT",
        "occurred_at": "2026-01-02T03:00:00Z",
        "smtp_code": 250,
        "smtp_message": "2.0.0 Ok: queued",
        "detail": "",
        "recipient": "",
    }


async def test_stream_events_arrive_before_the_stream_ends_and_cancel_upstream(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    backend.stream_cancelled.clear()
    async with client.stream("GET", f"/v1/events?after={AFTER_ENDLESS}") as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        first = await asyncio.wait_for(anext(lines), timeout=5)
        assert json.loads(first)["event"]["cursor"] == "c1"
    # Leaving the block closes the connection; Envoy must reset the upstream
    # stream so the server stops streaming to nobody.
    for _ in range(100):
        if backend.stream_cancelled.is_set():
            break
        await asyncio.sleep(0.05)
    assert backend.stream_cancelled.is_set(), "gRPC stream not cancelled after client left"


def _raw_http1_get(envoy: EnvoyInfo, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", envoy.http_port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_stream_error_after_first_event_is_reported_in_http1_trailers(
    envoy: EnvoyInfo,
) -> None:
    # Once events went out the HTTP status (200) cannot change; the gRPC status
    # arrives as chunked-encoding trailers (http_protocol_options.enable_trailers).
    raw = await asyncio.to_thread(_raw_http1_get, envoy, f"/v1/events?after={AFTER_FAIL}")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.count(b'{"event":') == 3
    assert body.endswith(b"0\r\ngrpc-status: 14\r\ngrpc-message: event store unavailable\r\n\r\n")


async def test_stream_events_as_server_sent_events(envoy_sse: EnvoyInfo) -> None:
    async with httpx.AsyncClient(base_url=envoy_sse.base_url, timeout=10) as c:
        response = await c.get("/v1/events?message_ids=msg_a&types=EVENT_TYPE_SENT&after=c0")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    frames = response.text.split("\n\n")
    assert frames[-1] == ""  # every frame ends with a blank line
    frames = frames[:-1]
    assert len(frames) == 3
    for i, frame in enumerate(frames, start=1):
        assert frame.startswith("data: ")
        assert "\n" not in frame
        assert json.loads(frame.removeprefix("data: "))["event"]["cursor"] == f"c{i}"


# --------------------------------------------------------------------------
# Errors from the service: convert_grpc_status
# --------------------------------------------------------------------------


async def test_invalid_argument_is_400_with_field_violations(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/emails", json={"subject": SUBJECT_INVALID})

    body = assert_json_status(response, 400, code_pb2.INVALID_ARGUMENT)
    assert body == {
        "code": 3,
        "message": "the email is invalid",
        "details": [
            {
                "@type": GOOGLE_RPC_BAD_REQUEST,
                # always_print_primitive_fields applies to details too.
                "field_violations": [
                    {"field": "to", "description": "at least one recipient is required", "reason": ""}
                ],
            }
        ],
    }


async def test_not_found_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/emails/{MISSING_ID}")
    body = assert_json_status(response, 404, code_pb2.NOT_FOUND)
    assert body == {"code": 5, "message": f"no email {MISSING_ID}", "details": []}


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/emails", json={"subject": SUBJECT_UNAUTHENTICATED})
    body = assert_json_status(response, 401, code_pb2.UNAUTHENTICATED)
    assert body["message"] == "missing or unknown API key"


# --------------------------------------------------------------------------
# Bad input rejected by Envoy itself: clear 4xx with the same JSON shape,
# and the gRPC server never sees the request.
# --------------------------------------------------------------------------

_JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "content", "http_status", "code", "message_part"),
    [
        ("POST", "/v1/emails", b"{not json", 400, 3, "Expected : between key:value pair"),
        ("POST", "/v1/emails", b'{"subject": 5}', 400, 3, "subject: invalid value 5"),
        ("POST", "/v1/emails", b'{"to": [1]}', 400, 3, "to[0]: invalid value 1"),
        ("POST", "/v1/emails", b'{"headers": ["X-A"]}', 400, 3, "Cannot bind a list to map"),
        ("POST", "/v1/emails", b"[]", 400, 3, "Root element must be a message"),
        ("GET", "/v1/emails/msg_1?foo=1", None, 400, 3, 'Could not find field "foo"'),
        ("GET", "/v1/events?types=EVENT_TYPE_NOPE", None, 400, 3, 'invalid value "EVENT_TYPE_NOPE"'),
        ("GET", "/v1/events?message_id=msg_1", None, 400, 3, 'Could not find field "message_id"'),
        ("GET", "/v1/messages", None, 404, 5, "Could not resolve /v1/messages to a method"),
        ("DELETE", "/v1/emails/msg_1", None, 404, 5, "Could not resolve"),
        ("GET", "/nope", None, 404, 5, "Could not resolve /nope to a method"),
    ],
    ids=[
        "malformed-json",
        "wrong-scalar-type",
        "wrong-list-item-type",
        "list-for-map",
        "array-root",
        "unknown-query-param",
        "unknown-enum-name",
        "misspelt-query-param",
        "no-such-route",
        "wrong-http-method",
        "unknown-path",
    ],
)
async def test_bad_input_is_a_json_4xx_from_envoy(
    client: httpx.AsyncClient,
    backend: Backend,
    method: str,
    path: str,
    content: bytes | None,
    http_status: int,
    code: int,
    message_part: str,
) -> None:
    calls_before = len(backend.calls)
    response = await client.request(
        method, path, content=content, headers=_JSON if content is not None else None
    )
    body = assert_json_status(response, http_status, code)
    assert message_part in body["message"]
    assert body["details"] == []
    assert len(backend.calls) == calls_before, "the request reached the gRPC server"


async def test_oversized_body_is_413(client: httpx.AsyncClient, backend: Backend) -> None:
    calls_before = len(backend.calls)
    response = await client.post("/v1/emails", json={"text_body": "x" * (41 * 1024 * 1024)})
    body = assert_json_status(response, 413, code_pb2.INVALID_ARGUMENT)
    assert "Payload Too Large" in body["message"]
    assert len(backend.calls) == calls_before


async def test_unknown_body_fields_are_dropped_not_rejected(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    """Envoy's transcoder ignores JSON fields the proto does not define (no
    option turns that off), and an empty body is an empty SendRequest: the
    service must validate required fields itself."""
    response = await client.post("/v1/emails", json={"subject": "unknown", "fromm": "typo"})
    assert response.status_code == 200
    assert backend.last("Send").request == pb.SendRequest(subject="unknown")

    response = await client.post("/v1/emails", content=b"")
    assert response.status_code == 200
    assert backend.last("Send").request == pb.SendRequest()


async def test_upstream_down_is_503_unavailable(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    with run_envoy(closed_port, tmp_path) as info:
        async with httpx.AsyncClient(base_url=info.base_url, timeout=10) as c:
            response = await c.get("/v1/emails/msg_1")
    body = assert_json_status(response, 503, code_pb2.UNAVAILABLE)
    assert "upstream connect error" in body["message"]


# --------------------------------------------------------------------------
# Native gRPC through the same listener is untouched by the transcoder and the
# JSON error mappers.
# --------------------------------------------------------------------------


async def test_native_grpc_passes_through(envoy: EnvoyInfo, backend: Backend) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{envoy.http_port}") as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        reply = await stub.Send(
            pb.SendRequest(subject="native"), metadata=[("x-api-key", "pw_native")], timeout=10
        )
        assert reply == pb.SendResponse(message_id="msg_test1", status=email_pb2.EMAIL_STATUS_QUEUED)
        assert backend.last("Send").metadata["x-api-key"] == "pw_native"

        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await stub.Send(pb.SendRequest(subject=SUBJECT_INVALID), timeout=10)
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(excinfo.value)
        assert status is not None and status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)

        events = [m async for m in stub.StreamEvents(pb.StreamEventsRequest(), timeout=10)]
        assert [m.event.cursor for m in events] == ["c1", "c2", "c3"]

        # A service outside `services:` (health, reflection) is not rejected
        # by reject_unknown_method: gRPC requests are never transcoded.
        health_stub = health_pb2_grpc.HealthStub(channel)
        check = await health_stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert check.status == health_pb2.HealthCheckResponse.SERVING


async def test_native_grpc_local_errors_stay_grpc(tmp_path: Path) -> None:
    closed_port = free_port()
    with run_envoy(closed_port, tmp_path) as info:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{info.http_port}") as channel:
            stub = email_service_pb2_grpc.EmailServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as excinfo:
                await stub.GetStatus(pb.GetStatusRequest(message_id="msg_1"), timeout=10)
    assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not excinfo.value.details().lstrip().startswith("{"), excinfo.value.details()
