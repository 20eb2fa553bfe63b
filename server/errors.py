"""The one place domain errors become gRPC statuses (with rich details and metadata)."""

from __future__ import annotations

import collections
import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from core.errors import InvalidArgument, PostwireError, ResourceExhausted


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def _pack(message: object) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)  # type: ignore[arg-type]
    return detail


def rate_limit_metadata(limit: int, remaining: int, reset_after: float, retry_after: float | None = None) -> list[tuple[str, str]]:
    """The x-ratelimit-* (and retry-after) metadata; Envoy turns it into HTTP headers."""
    metadata = [
        ("x-ratelimit-limit", str(limit)),
        ("x-ratelimit-remaining", str(max(0, remaining))),
        ("x-ratelimit-reset", str(math.ceil(reset_after))),
    ]
    if retry_after is not None:
        metadata.append(("retry-after", str(max(1, math.ceil(retry_after)))))
    return metadata


def to_status(error: PostwireError) -> grpc.Status:
    code = grpc.StatusCode[error.code]
    status = status_pb2.Status(code=code.value[0], message=error.message)
    extra: list[tuple[str, str]] = []
    if isinstance(error, InvalidArgument):
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, ResourceExhausted):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, math.ceil(error.retry_after * 1000)))
        status.details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        status.details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[error_details_pb2.QuotaFailure.Violation(subject=error.budget, description=error.message)]
                )
            )
        )
        extra = rate_limit_metadata(error.limit, error.remaining, error.reset_after, error.retry_after)
    converted = rpc_status.to_status(status)
    return _Status(converted.code, converted.details, tuple(converted.trailing_metadata) + tuple(extra))


def internal_status() -> grpc.Status:
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))
