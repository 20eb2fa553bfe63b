"""Mapping gRPC statuses to the SDK's typed exceptions, with their rich details."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

import postwire_client as pc
from postwire_client.errors import FieldViolation, exception_class, from_rpc_error, from_status

C = grpc.StatusCode


def packed(message: object) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)  # type: ignore[arg-type]
    return detail


class FakeError(grpc.RpcError):
    """What grpcio raises: a failed call with code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers


@pytest.mark.parametrize(("code", "cls"), [
    (C.INVALID_ARGUMENT, pc.InvalidArgument), (C.UNAUTHENTICATED, pc.Unauthenticated),
    (C.PERMISSION_DENIED, pc.PermissionDenied), (C.NOT_FOUND, pc.NotFound), (C.ALREADY_EXISTS, pc.AlreadyExists),
    (C.FAILED_PRECONDITION, pc.FailedPrecondition), (C.RESOURCE_EXHAUSTED, pc.ResourceExhausted),
    (C.UNAVAILABLE, pc.Unavailable), (C.OUT_OF_RANGE, pc.OutOfRange), (C.DEADLINE_EXCEEDED, pc.DeadlineExceeded),
    (C.INTERNAL, pc.Internal), (C.UNKNOWN, pc.Unknown), (C.CANCELLED, pc.Cancelled), (C.ABORTED, pc.Aborted),
    (C.UNIMPLEMENTED, pc.Unimplemented), (C.DATA_LOSS, pc.DataLoss),
])
def test_every_status_code_has_its_own_exception_class(code: grpc.StatusCode, cls: type) -> None:
    exc = from_status(code, "what happened")
    assert type(exc) is cls and exc.code == code and exc.message == "what happened"
    assert isinstance(exc, pc.PostwireError) and exception_class(code) is cls


def test_exceptions_also_inherit_the_matching_builtin() -> None:
    assert isinstance(from_status(C.UNAVAILABLE, "x"), ConnectionError)
    assert isinstance(from_status(C.DEADLINE_EXCEEDED, "x"), TimeoutError)
    assert isinstance(from_status(C.NOT_FOUND, "x"), LookupError)
    assert isinstance(from_status(C.INVALID_ARGUMENT, "x"), ValueError)


def test_the_first_sdks_names_still_work() -> None:
    assert pc.InvalidArgumentError is pc.InvalidArgument and pc.UnavailableError is pc.Unavailable
    assert pc.NotFoundError is pc.NotFound and pc.UnauthenticatedError is pc.Unauthenticated
    assert pc.AlreadyExistsError is pc.AlreadyExists and pc.FailedPreconditionError is pc.FailedPrecondition


def test_bad_request_details_become_field_violations() -> None:
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="to[1]", description="not an address"),
        error_details_pb2.BadRequest.FieldViolation(field="subject", description="contains CR or LF"),
    ])
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="2 invalid fields", details=[packed(bad)])
    error = FakeError(C.INVALID_ARGUMENT, "2 invalid fields",
                      (("grpc-status-details-bin", status.SerializeToString()),))
    exc = from_rpc_error(error)
    assert isinstance(exc, pc.InvalidArgument)
    assert exc.violations == [FieldViolation("to[1]", "not an address"), FieldViolation("subject", "contains CR or LF")]
    field, description = exc.violations[0]  # unpacks like the first SDK's pairs
    assert (field, description) == ("to[1]", "not an address")
    assert "to[1]: not an address" in str(exc)


def test_retry_info_becomes_retry_after_seconds() -> None:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000))
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="slow down", details=[packed(info)])
    error = FakeError(C.RESOURCE_EXHAUSTED, "slow down", (("grpc-status-details-bin", status.SerializeToString()),
                                                         ("retry-after", "2")))
    assert from_rpc_error(error).retry_after == pytest.approx(1.5)


def test_retry_after_metadata_is_used_without_retry_info() -> None:
    error = FakeError(C.RESOURCE_EXHAUSTED, "slow down", (("retry-after", "4"),))
    assert from_rpc_error(error).retry_after == 4.0


def test_details_are_read_even_when_the_status_message_was_rewritten() -> None:
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="after", description="not a cursor")])
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="original", details=[packed(bad)])
    error = FakeError(C.INVALID_ARGUMENT, "rewritten by a proxy",
                      (("grpc-status-details-bin", status.SerializeToString()),))
    exc = from_rpc_error(error)
    assert exc.message == "rewritten by a proxy" and exc.violations == [("after", "not a cursor")]


def test_an_error_without_details_or_metadata_still_maps() -> None:
    exc = from_rpc_error(FakeError(C.UNAVAILABLE, "", None))  # type: ignore[arg-type]
    assert isinstance(exc, pc.Unavailable) and exc.message and exc.violations == [] and exc.retry_after is None
