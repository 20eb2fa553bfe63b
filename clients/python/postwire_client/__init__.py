"""Python client for Postwire: a thin typed wrapper over the generated gRPC stubs."""

from postwire_client.sdk import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    PostwireError,
    UnauthenticatedError,
    UnavailableError,
)

__all__ = [
    "Client",
    "InvalidArgumentError",
    "NotFoundError",
    "PostwireError",
    "UnauthenticatedError",
    "UnavailableError",
]
