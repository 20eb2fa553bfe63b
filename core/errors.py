"""Domain errors. Each carries the gRPC status name it maps to; server/ maps it.

core/ knows nothing of grpc: `code` is the name of a grpc.StatusCode member, and the
server's error interceptor is the one place that turns these into statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its path in the request (e.g. `to[1]`) and why."""

    field: str
    description: str


class PostwireError(Exception):
    """Base of every error the API reports to callers."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(PostwireError, ValueError):
    """The request is malformed; `violations` says which fields and why."""

    code = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        super().__init__(message or "; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = list(violations)


class Unauthenticated(PostwireError):
    """Missing, unknown or revoked API key. One message for all, on purpose."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "missing or invalid API key") -> None:
        super().__init__(message)


class NotFound(PostwireError, LookupError):
    """The named resource does not exist for the caller's account."""

    code = "NOT_FOUND"


class Unavailable(PostwireError, ConnectionError):
    """A dependency (database, broker) is unreachable; the caller may retry."""

    code = "UNAVAILABLE"


class AlreadyExists(PostwireError):
    """The idempotency key was already used for a different request."""

    code = "ALREADY_EXISTS"


class FailedPrecondition(PostwireError):
    """The resource is not in a state that allows the operation."""

    code = "FAILED_PRECONDITION"


class PermissionDenied(PostwireError):
    """The key is valid but lacks the scope this call needs."""

    code = "PERMISSION_DENIED"


class ResourceExhausted(PostwireError):
    """A rate limit or quota was hit; retry after `retry_after` seconds."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(
        self, message: str, *, budget: str, limit: int, remaining: int, retry_after: float, reset_after: float
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit = limit
        self.remaining = remaining
        self.retry_after = retry_after
        self.reset_after = reset_after


class OutOfRange(PostwireError):
    """A position (such as a stream cursor) outside what is still kept."""

    code = "OUT_OF_RANGE"
