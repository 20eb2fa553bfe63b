"""Typed exceptions for failed calls, one class per gRPC status code, raised by both
`Client` and `AsyncClient` (the way google.api_core.exceptions maps codes to classes).

Every exception carries the status `code`, the server's `message`, the field
violations of a `google.rpc.BadRequest` detail (`violations`, a list of
`FieldViolation(field, description)`) and, when the server said when to come back
(`google.rpc.RetryInfo`, or the `retry-after` metadata of a rate-limited call),
`retry_after` in seconds; `attempts` says how many attempts the client made. Classes
also inherit from the matching built-in where one fits: `InvalidArgument` is a
`ValueError`, `NotFound` a `LookupError`, `Unavailable` a `ConnectionError`,
`DeadlineExceeded` a `TimeoutError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DETAILS_KEY = "grpc-status-details-bin"


class FieldViolation(NamedTuple):
    """One invalid field of a request (e.g. `to[1]`) and why; unpacks as a pair."""

    field: str
    description: str


class PostwireError(Exception):
    """A call failed with a gRPC status other than OK."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        violations: Sequence[tuple[str, str]] = (),
        *,
        code: grpc.StatusCode | None = None,
        retry_after: float | None = None,
        details: Sequence[any_pb2.Any] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = [FieldViolation(*v) for v in violations]
        self.retry_after = retry_after
        self.details = list(details)
        self.attempts = 1  # how many attempts the client made before giving up
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.violations:
            text += " (" + "; ".join(f"{v.field}: {v.description}" for v in self.violations) + ")"
        return text


class Cancelled(PostwireError):
    code = grpc.StatusCode.CANCELLED


class Unknown(PostwireError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(PostwireError, ValueError):
    """Bad input; `violations` lists every invalid field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(PostwireError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(PostwireError, LookupError):
    """No such message (or it belongs to another account)."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PostwireError):
    """The idempotency key was already used for a different request."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(PostwireError):
    """The key is valid but lacks the scope the call needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PostwireError):
    """Over a rate limit or the stream budget; see `retry_after`."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PostwireError):
    """The email is not in a state that allows the call (e.g. cancel a sent email)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(PostwireError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(PostwireError):
    """A cursor older than the event retention period."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(PostwireError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(PostwireError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(PostwireError, ConnectionError):
    """The server, or a dependency of it, cannot be reached; retrying may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(PostwireError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(PostwireError):
    """Missing, unknown, revoked or expired API key."""

    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[PostwireError]] = {
    cls.code: cls
    for cls in (
        Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists, PermissionDenied,
        ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal, Unavailable,
        DataLoss, Unauthenticated,
    )
}

# The names of the first SDK, kept so existing code keeps working.
InvalidArgumentError = InvalidArgument
UnauthenticatedError = Unauthenticated
NotFoundError = NotFound
UnavailableError = Unavailable
AlreadyExistsError = AlreadyExists
FailedPreconditionError = FailedPrecondition


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def from_send_error(error: Any) -> PostwireError:
    """The typed exception for one email's `SendError` (in a SendResult or a
    SendStreamAck), as Send would have raised it."""
    code = _CODES.get(error.code, grpc.StatusCode.UNKNOWN)
    violations = [(v.field, v.description) for v in error.field_violations]
    return exception_class(code)(error.message, violations, code=code)


def exception_class(code: grpc.StatusCode) -> type[PostwireError]:
    """The exception class for a status code (`PostwireError` for OK or anything unmapped)."""
    return _BY_CODE.get(code, PostwireError)


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status of the trailers, even when its message differs from the
    call's details (grpcio-status refuses those; a proxy may have rewritten one)."""
    try:
        return rpc_status.from_call(error)
    except ValueError:
        pass
    for key, value in _trailers(error):
        if key == DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def _trailers(error: grpc.RpcError) -> Iterable[tuple[str, Any]]:
    trailing = getattr(error, "trailing_metadata", None)
    return tuple(trailing() or ()) if callable(trailing) else ()


def from_status(
    code: grpc.StatusCode,
    message: str,
    details: Sequence[any_pb2.Any] = (),
    trailing_metadata: Iterable[tuple[str, Any]] = (),
) -> PostwireError:
    """The typed exception for a status: violations from BadRequest, `retry_after` from
    RetryInfo (or the `retry-after` metadata)."""
    violations: list[FieldViolation] = []
    retry_after: float | None = None
    for detail in details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = info.retry_delay.ToMilliseconds() / 1000
    if retry_after is None:
        for key, value in trailing_metadata:
            if key == "retry-after":
                try:
                    retry_after = float(value)
                except (TypeError, ValueError):
                    pass
    cls = exception_class(code)
    return cls(
        message or code.name,
        violations,
        code=code if cls is PostwireError else None,
        retry_after=retry_after,
        details=details,
    )


def from_rpc_error(error: grpc.RpcError) -> PostwireError:
    """The typed exception for a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`)."""
    code_of = getattr(error, "code", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details_of = getattr(error, "details", None)
    message = (details_of() if callable(details_of) else None) or str(error)
    status = _rich_status(error)
    return from_status(code, message, list(status.details) if status else (), _trailers(error))


__all__ = [
    "Aborted", "AlreadyExists", "Cancelled", "DataLoss", "DeadlineExceeded", "FailedPrecondition", "FieldViolation",
    "Internal", "InvalidArgument", "NotFound", "OutOfRange", "PermissionDenied", "PostwireError",
    "ResourceExhausted", "Unauthenticated", "Unavailable", "Unimplemented", "Unknown", "exception_class",
    "from_rpc_error", "from_status",
    "AlreadyExistsError", "FailedPreconditionError", "InvalidArgumentError", "NotFoundError",
    "UnauthenticatedError", "UnavailableError",
]
