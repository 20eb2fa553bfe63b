"""Python client for Postwire: a thin typed wrapper over the generated gRPC stubs."""

from postwire_client.sdk import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PostwireError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
    "AlreadyExistsError",
    "Client",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PostwireError",
    "UnauthenticatedError",
    "UnavailableError",
]
