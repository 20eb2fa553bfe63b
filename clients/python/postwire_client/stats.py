"""The StatsService call of `Client` and `AsyncClient` (mixins): the account's counts of
accepted, delivered, bounced, ... emails per hour or day, by tag or template, and the
most frequent failures (a key with the `read` scope). Retried on UNAVAILABLE (a read).

    stats = client.get_stats(start=now - timedelta(days=30), granularity="day", group_by="tag")
    for group in stats.groups: print(group.tag, group.totals.delivered)

Groups come in pages (`page_size`, at most 1000 buckets a page); `get_all_stats` takes
the same arguments and follows `next_page_token`, returning one response with every group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import stats_pb2, stats_service_pb2_grpc
from postwire.v1 import stats_service_pb2 as pb
from postwire_client.times import timestamp

T = TypeVar("T")

_GRANULARITIES = {"hour": stats_pb2.STATS_GRANULARITY_HOUR, "day": stats_pb2.STATS_GRANULARITY_DAY}
_GROUPINGS = {"none": stats_pb2.STATS_GROUP_BY_NONE, "tag": stats_pb2.STATS_GROUP_BY_TAG,
              "template": stats_pb2.STATS_GROUP_BY_TEMPLATE, "variant": stats_pb2.STATS_GROUP_BY_TEMPLATE_VARIANT,
              "template_variant": stats_pb2.STATS_GROUP_BY_TEMPLATE_VARIANT}


def _enum(value: int | str | None, names: dict[str, int], what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    found = names.get(value.strip().lower().replace("-", "_"))
    if found is None:
        raise ValueError(f"unknown {what} {value!r}: use {', '.join(sorted(names))}")
    return found


def stats_request(*, start: datetime | Timestamp | None = None, end: datetime | Timestamp | None = None,
                  granularity: int | str | None = None, group_by: int | str | None = None, tag: str = "",
                  template_id: str = "", page_size: int = 0, page_token: str = "") -> pb.GetStatsRequest:
    """`granularity`: `hour` or `day` (default); `group_by`: `none` (default), `tag`,
    `template` or `variant` (or their enum values). Times are aware datetimes."""
    return pb.GetStatsRequest(
        start_time=timestamp(start, "start/end"), end_time=timestamp(end, "start/end"),
        granularity=_enum(granularity, _GRANULARITIES, "granularity"),
        group_by=_enum(group_by, _GROUPINGS, "grouping"), tag=tag, template_id=template_id,
        page_size=page_size, page_token=page_token,
    )


def _merge(whole: pb.GetStatsResponse | None, page: pb.GetStatsResponse) -> pb.GetStatsResponse:
    """`page`'s groups added to `whole` (the first page, whose totals every page shares)."""
    if whole is None:
        return page
    whole.groups.extend(page.groups)
    whole.next_page_token = page.next_page_token
    return whole


def _stub(client: Any) -> stats_service_pb2_grpc.StatsServiceStub:
    """The client's StatsService stub, made on first use over its channel."""
    stub = client.__dict__.get("_stats_stub")
    if stub is None:
        stub = client.__dict__["_stats_stub"] = stats_service_pb2_grpc.StatsServiceStub(client.channel)
    return stub


class StatsMethods:
    """GetStats on the blocking `Client`."""

    channel: Any

    if TYPE_CHECKING:
        def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
                   retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    @property
    def stats_stub(self) -> stats_service_pb2_grpc.StatsServiceStub:
        return _stub(self)

    def get_stats(self, *, timeout: float | None = None, **query: Any) -> pb.GetStatsResponse:
        """Counts over `start`..`end` (default: the last 7 days) per `granularity`,
        filtered by `tag` or `template_id`, grouped by `group_by` (see `stats_request`)."""
        return self._unary("GetStats", self.stats_stub.GetStats, stats_request(**query), timeout)

    def get_all_stats(self, *, timeout: float | None = None, **query: Any) -> pb.GetStatsResponse:
        """`get_stats` following every page: one response holding all the groups."""
        whole: pb.GetStatsResponse | None = None
        while whole is None or whole.next_page_token:
            token = "" if whole is None else whole.next_page_token
            whole = _merge(whole, self.get_stats(timeout=timeout, **{**query, "page_token": token}))
        return whole


class AsyncStatsMethods:
    """GetStats on `AsyncClient`."""

    channel: Any

    if TYPE_CHECKING:
        async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                         retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    @property
    def stats_stub(self) -> stats_service_pb2_grpc.StatsServiceStub:
        return _stub(self)

    async def get_stats(self, *, timeout: float | None = None, **query: Any) -> pb.GetStatsResponse:
        return await self._unary("GetStats", self.stats_stub.GetStats, stats_request(**query), timeout)

    async def get_all_stats(self, *, timeout: float | None = None, **query: Any) -> pb.GetStatsResponse:
        """`get_stats` following every page: one response holding all the groups."""
        whole: pb.GetStatsResponse | None = None
        while whole is None or whole.next_page_token:
            token = "" if whole is None else whole.next_page_token
            whole = _merge(whole, await self.get_stats(timeout=timeout, **{**query, "page_token": token}))
        return whole
