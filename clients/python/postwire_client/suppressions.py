"""The SuppressionService calls of `Client` and `AsyncClient` (mixins).

Reads need a key with the `read` scope, changes the `admin` scope. Every call is
retried on UNAVAILABLE: adding is idempotent (an address already listed keeps its
entry), and a `remove_suppression` retry that answers NOT_FOUND after a failed attempt
counts as success. In a retried `remove_suppressions`, an address reported NOT_FOUND
may have been removed by the attempt that failed.

    client.add_suppression("ada@example.com", reason="asked by phone")
    for entry in client.iter_suppressions(kind="hard_bounce"): ...
    results = client.remove_suppressions(["ada@example.com", "bob@example.org"]).results
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import suppression_pb2, suppression_service_pb2_grpc
from postwire.v1 import suppression_service_pb2 as spb
from postwire_client.errors import NotFound
from postwire_client.paging import every, every_async
from postwire_client.times import timestamp

T = TypeVar("T")
MAX_BATCH = 1000  # addresses per batch call

_KIND_NAMES = {
    "hard_bounce": suppression_pb2.SUPPRESSION_KIND_HARD_BOUNCE,
    "bounce": suppression_pb2.SUPPRESSION_KIND_HARD_BOUNCE,
    "complaint": suppression_pb2.SUPPRESSION_KIND_COMPLAINT,
    "unsubscribe": suppression_pb2.SUPPRESSION_KIND_UNSUBSCRIBE,
    "manual": suppression_pb2.SUPPRESSION_KIND_MANUAL,
}


def suppression_kind(value: int | str | None) -> int:
    """A `SuppressionKind` value from itself, its name (`SUPPRESSION_KIND_COMPLAINT`) or
    a short name (`hard_bounce`, `complaint`, `unsubscribe`, `manual`; `-` for `_`);
    0 (any) for None or ""; ValueError otherwise."""
    if value is None or value == "":
        return suppression_pb2.SUPPRESSION_KIND_UNSPECIFIED
    if isinstance(value, int):
        return value
    short = _KIND_NAMES.get(value.strip().lower().replace("-", "_"))
    if short is not None:
        return short
    try:
        return suppression_pb2.SuppressionKind.Value(value.strip().upper())
    except ValueError:
        raise ValueError(f"unknown suppression kind {value!r}: use hard_bounce, complaint, unsubscribe or manual") from None


def list_request(*, kind: int | str | None = None, created_after: datetime | Timestamp | None = None,
                 created_before: datetime | Timestamp | None = None, address_prefix: str = "", page_size: int = 0,
                 page_token: str = "") -> spb.ListSuppressionsRequest:
    return spb.ListSuppressionsRequest(
        kind=suppression_kind(kind), created_after=timestamp(created_after, "created_after/created_before"),
        created_before=timestamp(created_before, "created_after/created_before"),
        address_prefix=address_prefix, page_size=page_size, page_token=page_token,
    )


class SuppressionMethods:
    """The account's suppression list (SuppressionService) on the blocking `Client`."""

    suppression_stub: suppression_service_pb2_grpc.SuppressionServiceStub

    if TYPE_CHECKING:
        def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
                   retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    def _add_suppression_stubs(self, channel: Any) -> None:
        self.suppression_stub = suppression_service_pb2_grpc.SuppressionServiceStub(channel)

    def list_suppressions(self, *, timeout: float | None = None, **filters: Any) -> spb.ListSuppressionsResponse:
        """One page, newest first. Filters: `kind` (a `SuppressionKind` or `hard_bounce`,
        `complaint`, `unsubscribe`, `manual`), `created_after`/`created_before` (aware
        datetimes), `address_prefix`; then `page_size` (50, at most 1000) and `page_token`
        (only with the filters it came with)."""
        request = list_request(**filters)
        return self._unary("ListSuppressions", self.suppression_stub.ListSuppressions, request, timeout)

    def iter_suppressions(self, *, timeout: float | None = None, **filters: Any) -> Iterator[suppression_pb2.Suppression]:
        """Every entry matching the filters (as `list_suppressions`), page after page."""
        return every(lambda token: self.list_suppressions(timeout=timeout, **filters, page_token=token),
                     "suppressions")

    def get_suppression(self, address: str, *, timeout: float | None = None) -> spb.GetSuppressionResponse:
        """The entry of one address; NotFound when it is not on the list."""
        request = spb.GetSuppressionRequest(address=address)
        return self._unary("GetSuppression", self.suppression_stub.GetSuppression, request, timeout)

    def add_suppression(self, address: str, *, reason: str = "",
                        timeout: float | None = None) -> spb.AddSuppressionResponse:
        """Suppress an address by hand (kind MANUAL); `created` is False when it was already listed."""
        request = spb.AddSuppressionRequest(address=address, reason=reason)
        return self._unary("AddSuppression", self.suppression_stub.AddSuppression, request, timeout)

    def add_suppressions(self, addresses: Iterable[str], *, reason: str = "",
                         timeout: float | None = None) -> spb.BatchAddSuppressionsResponse:
        """Suppress up to 1,000 addresses; one result per address, in order."""
        request = spb.BatchAddSuppressionsRequest(addresses=list(addresses), reason=reason)
        return self._unary("BatchAddSuppressions", self.suppression_stub.BatchAddSuppressions, request, timeout)

    def remove_suppression(self, address: str, *, timeout: float | None = None) -> spb.RemoveSuppressionResponse:
        """Take an address off the list; the answer is the removed entry (empty when a
        retry found the work done)."""
        request = spb.RemoveSuppressionRequest(address=address)
        try:
            return self._unary("RemoveSuppression", self.suppression_stub.RemoveSuppression, request, timeout)
        except NotFound as exc:
            if exc.attempts > 1:  # the attempt that failed had removed it
                return spb.RemoveSuppressionResponse()
            raise

    def remove_suppressions(self, addresses: Iterable[str], *,
                            timeout: float | None = None) -> spb.BatchRemoveSuppressionsResponse:
        """Remove up to 1,000 addresses; one result per address, in order."""
        request = spb.BatchRemoveSuppressionsRequest(addresses=list(addresses))
        return self._unary("BatchRemoveSuppressions", self.suppression_stub.BatchRemoveSuppressions, request, timeout)


class AsyncSuppressionMethods:
    """The calls of `SuppressionMethods` on `AsyncClient`, with the same retries."""

    suppression_stub: suppression_service_pb2_grpc.SuppressionServiceStub

    if TYPE_CHECKING:
        async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                         retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    def _add_suppression_stubs(self, channel: Any) -> None:
        self.suppression_stub = suppression_service_pb2_grpc.SuppressionServiceStub(channel)

    async def list_suppressions(self, *, timeout: float | None = None, **filters: Any) -> spb.ListSuppressionsResponse:
        request = list_request(**filters)
        return await self._unary("ListSuppressions", self.suppression_stub.ListSuppressions, request, timeout)

    async def iter_suppressions(self, *, timeout: float | None = None,
                                **filters: Any) -> AsyncIterator[suppression_pb2.Suppression]:
        async for entry in every_async(
                lambda token: self.list_suppressions(timeout=timeout, **filters, page_token=token), "suppressions"):
            yield entry

    async def get_suppression(self, address: str, *, timeout: float | None = None) -> spb.GetSuppressionResponse:
        request = spb.GetSuppressionRequest(address=address)
        return await self._unary("GetSuppression", self.suppression_stub.GetSuppression, request, timeout)

    async def add_suppression(self, address: str, *, reason: str = "",
                              timeout: float | None = None) -> spb.AddSuppressionResponse:
        request = spb.AddSuppressionRequest(address=address, reason=reason)
        return await self._unary("AddSuppression", self.suppression_stub.AddSuppression, request, timeout)

    async def add_suppressions(self, addresses: Iterable[str], *, reason: str = "",
                               timeout: float | None = None) -> spb.BatchAddSuppressionsResponse:
        request = spb.BatchAddSuppressionsRequest(addresses=list(addresses), reason=reason)
        return await self._unary("BatchAddSuppressions", self.suppression_stub.BatchAddSuppressions, request, timeout)

    async def remove_suppression(self, address: str, *, timeout: float | None = None) -> spb.RemoveSuppressionResponse:
        """As `Client.remove_suppression`."""
        request = spb.RemoveSuppressionRequest(address=address)
        try:
            return await self._unary("RemoveSuppression", self.suppression_stub.RemoveSuppression, request, timeout)
        except NotFound as exc:
            if exc.attempts > 1:
                return spb.RemoveSuppressionResponse()
            raise

    async def remove_suppressions(self, addresses: Iterable[str], *,
                                  timeout: float | None = None) -> spb.BatchRemoveSuppressionsResponse:
        request = spb.BatchRemoveSuppressionsRequest(addresses=list(addresses))
        return await self._unary("BatchRemoveSuppressions", self.suppression_stub.BatchRemoveSuppressions, request,
                                 timeout)
