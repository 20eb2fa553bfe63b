"""Raw bytes on the wire: malformed protobuf to every method, and oversized messages.

grpcio parses the request before any of our code runs, and by itself answers a parse
error with UNKNOWN ("Unexpected <class 'DecodeError'>..."). server/decoding.py makes
it INVALID_ARGUMENT. The oracle here is the message class itself: bytes it cannot
parse must be INVALID_ARGUMENT; bytes it can parse get an ordinary answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwire.v1 import email_service_pb2, key_service_pb2, webhook_service_pb2
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import server_process
from tests.fuzz.conftest import assert_healthy, fuzz_key
from tests.fuzz.test_grpc_fuzz import CONTRACT

MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # server/app.py


def _methods() -> list[tuple[str, type[Message], bool]]:
    """(path, request class, server-streaming) for every method of our services, and Health/Check."""
    found = [("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, False)]
    for module in (email_service_pb2, key_service_pb2, webhook_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                request = getattr(module, method.input_type.name)
                found.append((f"/{service.full_name}/{method.name}", request, method.server_streaming))
    return found


METHODS = _methods()
WIRE = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


MALFORMED = {
    "truncated varint": tag(1, 2) + b"\xff",
    "ten-byte varint overflow": tag(2, 0) + b"\xff" * 10 + b"\x01",
    "length past the end": tag(1, 2) + varint(100) + b"ab",
    "invalid UTF-8 in a string": tag(1, 2) + varint(2) + b"\xff\xfe",
    "overlong UTF-8 NUL": tag(1, 2) + varint(2) + b"\xc0\x80",
    "UTF-8 surrogate": tag(1, 2) + varint(3) + b"\xed\xa0\x80",
    "field number 0": b"\x00\x01",
    "wire type 6": tag(1, 6) + b"\x00",
    "wire type 7": tag(1, 7),
    "end group without start": tag(1, 4),
    "unterminated group": tag(50, 3) + tag(1, 0) + b"\x01",
    "mismatched end group": tag(50, 3) + tag(51, 4),
    "deeply nested groups": tag(50, 3) * 20_000 + tag(50, 4) * 20_000,
    "truncated fixed64": tag(60, 1) + b"\x01\x02",
    "truncated fixed32": tag(60, 5) + b"\x01",
    "negative length": tag(1, 2) + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
}


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.address, options=[("grpc.max_send_message_length", -1)]) as ch:
        yield ch


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    return fuzz_key(stack)


def raw_call(channel: grpc.Channel, method: str, streaming: bool, data: bytes, key: str) -> tuple[grpc.StatusCode, str]:
    """Send `data` as the request body, as is; the status that comes back."""
    metadata = (("x-api-key", key),)
    try:
        if streaming:
            call = channel.unary_stream(method, request_serializer=None, response_deserializer=None)
            next(call(data, metadata=metadata, timeout=0.3))
        else:
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            call(data, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def parses(request: type[Message], data: bytes) -> bool:
    try:
        request.FromString(data)
    except (DecodeError, RecursionError):
        return False
    return True


@pytest.mark.parametrize("path,request_class,streaming", METHODS, ids=[m[0].rsplit("/", 2)[-1] for m in METHODS])
def test_malformed_protobuf_is_invalid_argument_on_every_method(
    stack: Stack, channel: grpc.Channel, key: str, path: str, request_class: type[Message], streaming: bool
) -> None:
    for name, data in MALFORMED.items():
        code, details = raw_call(channel, path, streaming, data, key)
        if parses(request_class, data):  # e.g. field 1 is unknown to an empty message: skipped
            assert code in CONTRACT | {grpc.StatusCode.DEADLINE_EXCEEDED}, f"{name}: {code} {details}"
        else:
            assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{name}: {code} {details}"
        assert "Traceback" not in details and "<class" not in details, details
    stack.server.check_alive()


@WIRE
@given(data=st.data())
def test_arbitrary_bytes_get_a_contract_status(stack: Stack, channel: grpc.Channel, key: str, data: st.DataObject) -> None:
    path, request_class, streaming = data.draw(st.sampled_from(METHODS))
    body = data.draw(st.one_of(
        st.binary(max_size=200),
        # a valid message, then corrupted: cut short, one byte changed, garbage appended
        st.builds(lambda raw, cut: raw[: cut % (len(raw) + 1)], st.just(_sample(request_class)), st.integers(0, 500)),
        st.builds(lambda raw, at, byte: raw[:at] + bytes([byte]) + raw[at + 1:],
                  st.just(_sample(request_class)), st.integers(0, 60), st.integers(0, 255)),
        st.builds(lambda raw, tail: raw + tail, st.just(_sample(request_class)), st.binary(max_size=20)),
    ))
    code, details = raw_call(channel, path, streaming, body, key)
    allowed = CONTRACT | ({grpc.StatusCode.DEADLINE_EXCEEDED} if streaming else set())
    assert code in allowed, f"{path} {body!r}: {code} {details}"
    if not parses(request_class, body):
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{path} {body!r}: {code} {details}"


def _sample(request_class: type[Message]) -> bytes:
    """A plausible serialized request of the class, with every string field filled."""
    message = request_class()
    for field in request_class.DESCRIPTOR.fields:
        if field.type == field.TYPE_STRING:
            if field.is_repeated:
                getattr(message, field.name).extend(["a@example.com", "é"])
            else:
                setattr(message, field.name, "Bob <b@example.com>")
    return message.SerializeToString()


def test_unknown_fields_are_ignored(stack: Stack, channel: grpc.Channel, key: str) -> None:
    """Proto3: fields the server does not know are skipped, whatever their wire type."""
    unknown = tag(900, 0) + varint(7) + tag(901, 2) + varint(3) + b"\xff\xfe\xfd" + tag(902, 5) + b"abcd" + tag(903, 1) + b"12345678"
    data = email_service_pb2.GetStatusRequest(message_id="msg_nope").SerializeToString() + unknown
    code, details = raw_call(channel, "/postwire.v1.EmailService/GetStatus", False, data, key)
    assert code == grpc.StatusCode.NOT_FOUND, details


def test_a_message_over_the_receive_limit_is_resource_exhausted_and_the_server_survives(
    stack: Stack, tmp_path: Path
) -> None:
    """Over MAX_MESSAGE_BYTES grpc itself refuses the message (RESOURCE_EXHAUSTED, the
    contract for oversize); the server neither crashes nor stops answering."""
    process, address = server_process(stack, tmp_path)
    try:
        key = fuzz_key(stack)
        with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)]) as ch:
            huge = email_service_pb2.SendRequest(
                from_address="a@example.com", to=["b@example.com"], text_body="x" * (MAX_MESSAGE_BYTES + 1024)
            ).SerializeToString()
            for data in (huge, b"\xff" * (MAX_MESSAGE_BYTES + 1)):
                started = time.monotonic()
                code, details = raw_call(ch, "/postwire.v1.EmailService/Send", False, data, key)
                assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
                assert time.monotonic() - started < 10
            process.check_alive()
            assert_healthy(address)
            code, _ = raw_call(ch, "/postwire.v1.EmailService/GetStatus", False,
                               email_service_pb2.GetStatusRequest(message_id="msg_x").SerializeToString(), key)
            assert code == grpc.StatusCode.NOT_FOUND
    finally:
        process.stop()
