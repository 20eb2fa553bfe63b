"""The one place domain errors become gRPC statuses (with rich details and metadata)."""

from __future__ import annotations

import collections
import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from core.errors import (
    FieldViolation,
    InvalidArgument,
    PostwireError,
    ResourceExhausted,
)
from postwire.v1 import email_service_pb2

# Trailers must fit the peer's metadata limit (grpcio's default is 8 KiB soft, 16 KiB
# hard; Envoy's is 60 KiB) or the caller sees RESOURCE_EXHAUSTED/INTERNAL from its own
# transport instead of our status. Messages and violations echo the caller's input
# (ids, header names), so both are cut to a budget in UTF-8 bytes.
MAX_STATUS_MESSAGE_BYTES = 1024
MAX_DETAIL_TEXT_BYTES = 256
MAX_VIOLATIONS_BYTES = 2048


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marked with "…" when cut."""
    if len(text.encode("utf-8", "surrogatepass")) <= limit:
        return text
    return text.encode("utf-8", "surrogatepass")[: limit - 3].decode("utf-8", "ignore") + "…"


def _field_violations(violations: list[FieldViolation]) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The violations that fit the budget, and a last one saying how many did not."""
    kept: list[error_details_pb2.BadRequest.FieldViolation] = []
    used = 0
    for index, violation in enumerate(violations):
        item = error_details_pb2.BadRequest.FieldViolation(
            field=truncate(violation.field, MAX_DETAIL_TEXT_BYTES),
            description=truncate(violation.description, MAX_DETAIL_TEXT_BYTES),
        )
        used += item.ByteSize()
        if used > MAX_VIOLATIONS_BYTES:
            rest = len(violations) - index
            kept.append(error_details_pb2.BadRequest.FieldViolation(
                field="", description=f"{rest} more violation{'s' if rest > 1 else ''} not shown"
            ))
            break
        kept.append(item)
    return kept


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
    status = status_pb2.Status(code=code.value[0], message=truncate(error.message, MAX_STATUS_MESSAGE_BYTES))
    extra: list[tuple[str, str]] = []
    if isinstance(error, InvalidArgument):
        status.details.append(_pack(error_details_pb2.BadRequest(field_violations=_field_violations(error.violations))))
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


def send_error(error: Exception) -> email_service_pb2.SendError:
    """One SendBatch message's error, as Send would have reported it alone."""
    if not isinstance(error, PostwireError):  # not the caller's doing; logged by the caller
        return email_service_pb2.SendError(code=code_pb2.INTERNAL, message="internal error: this email was not stored")
    code = grpc.StatusCode[error.code].value[0]
    violations = error.violations if isinstance(error, InvalidArgument) else []
    return email_service_pb2.SendError(
        code=code,
        message=truncate(error.message, MAX_STATUS_MESSAGE_BYTES),
        field_violations=[
            email_service_pb2.SendFieldViolation(field=v.field, description=v.description)
            for v in _field_violations(violations)
        ],
    )
