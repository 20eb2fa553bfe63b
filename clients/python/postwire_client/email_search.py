"""ListEmails on `Client` and `AsyncClient` (mixins): the account's emails, newest
first, filtered, one page per call or every page through an iterator. Needs a key
with the `read` scope; retried on UNAVAILABLE like every read.

    page = client.list_emails(status="bounced", tag="welcome", page_size=100)
    for email in client.iter_emails(recipient="ada@example.com", metadata={"plan": "pro"}): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import email_pb2, email_service_pb2_grpc
from postwire.v1 import email_service_pb2 as pb
from postwire_client.paging import every, every_async
from postwire_client.times import timestamp

T = TypeVar("T")


def email_status(value: int | str) -> int:
    """An `EmailStatus` from itself, its name (`EMAIL_STATUS_BOUNCED`) or a short name
    (`bounced`); ValueError otherwise."""
    if isinstance(value, int):
        return value
    name = value.strip().upper()
    try:
        return email_pb2.EmailStatus.Value(name if name.startswith("EMAIL_STATUS_") else f"EMAIL_STATUS_{name}")
    except ValueError:
        known = ", ".join(n.removeprefix("EMAIL_STATUS_").lower() for n in email_pb2.EmailStatus.keys()[1:])
        raise ValueError(f"unknown email status {value!r}: use {known}") from None


def _many(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return [value] if isinstance(value, (str, int)) else list(value)


def list_emails_request(*, status: int | str | Iterable[int | str] | None = None, recipient: str = "",
                        from_address: str = "", tag: str | Iterable[str] | None = None,
                        metadata: Mapping[str, str] | Iterable[str] | None = None, template_id: str = "",
                        created_after: datetime | Timestamp | None = None,
                        created_before: datetime | Timestamp | None = None, page_size: int = 0,
                        page_token: str = "") -> pb.ListEmailsRequest:
    pairs = [f"{k}={v}" for k, v in metadata.items()] if isinstance(metadata, Mapping) else _many(metadata)
    return pb.ListEmailsRequest(
        status=[email_status(s) for s in _many(status)], recipient=recipient, from_address=from_address,
        tag=_many(tag), metadata=pairs, template_id=template_id,
        created_after=timestamp(created_after, "created_after/created_before"),
        created_before=timestamp(created_before, "created_after/created_before"),
        page_size=page_size, page_token=page_token,
    )


class EmailSearchMethods:
    """`list_emails` and `iter_emails` on the blocking `Client`."""

    stub: email_service_pb2_grpc.EmailServiceStub

    if TYPE_CHECKING:
        def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
                   retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    def list_emails(self, *, timeout: float | None = None, **filters: Any) -> pb.ListEmailsResponse:
        """One page, newest first. Filters (all optional, combined with AND): `status`
        (one or several: `EmailStatus` values or names such as `bounced`), `recipient`
        (in to, cc or bcc), `from_address`, `tag` (one or several, all required),
        `metadata` (a dict, or `key=value` strings), `template_id`,
        `created_after`/`created_before` (aware datetimes); then `page_size` (50, at most
        1000) and `page_token` (only with the filters it came with)."""
        request = list_emails_request(**filters)
        return self._unary("ListEmails", self.stub.ListEmails, request, timeout)

    def iter_emails(self, *, timeout: float | None = None, **filters: Any) -> Iterator[pb.EmailSummary]:
        """Every email matching the filters (as `list_emails`), page after page."""
        return every(lambda token: self.list_emails(timeout=timeout, **filters, page_token=token), "emails")


class AsyncEmailSearchMethods:
    """The calls of `EmailSearchMethods` on `AsyncClient`."""

    stub: email_service_pb2_grpc.EmailServiceStub

    if TYPE_CHECKING:
        async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                         retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    async def list_emails(self, *, timeout: float | None = None, **filters: Any) -> pb.ListEmailsResponse:
        request = list_emails_request(**filters)
        return await self._unary("ListEmails", self.stub.ListEmails, request, timeout)

    async def iter_emails(self, *, timeout: float | None = None, **filters: Any) -> AsyncIterator[pb.EmailSummary]:
        async for email in every_async(lambda token: self.list_emails(timeout=timeout, **filters, page_token=token),
                                       "emails"):
            yield email
