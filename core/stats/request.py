"""A GetStats question, checked: the range rounded to whole buckets and bounded, the
filter and the grouping on one dimension (the rollup keeps each dimension on its own)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.errors import FieldViolation, InvalidArgument
from core.stats.tally import ALL, TAG, TEMPLATE, VARIANT, epoch_hour
from core.times import utcnow

DEFAULT_RANGE = timedelta(days=7)
MAX_DAYS = {"hour": 31, "day": 366}
# Groups per page: page_size (default, most), and at most MAX_BUCKETS buckets, so a
# page stays small and quick to build (31 days by hour: 1 group of 744 buckets).
DEFAULT_PAGE, MAX_PAGE, MAX_BUCKETS = 50, 1000, 1000
EARLIEST, LATEST = datetime(1970, 1, 8, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def hours(self) -> int:
        return 1 if self is Granularity.HOUR else 24


class GroupBy(StrEnum):
    NONE = "none"
    TAG = "tag"
    TEMPLATE = "template"
    TEMPLATE_VARIANT = "template_variant"


@dataclass(frozen=True)
class Source:
    """Which counter rows to read: a dimension, and its key when filtered."""

    dimension: str
    key: str | None = None  # None: every key


@dataclass(frozen=True)
class StatsQuery:
    first_hour: int  # epoch hours, aligned to the granularity
    end_hour: int  # excluded
    granularity: Granularity
    group_by: GroupBy
    groups: Source  # rows of the groups
    totals: Source  # rows of the totals and the failure patterns
    page_size: int = DEFAULT_PAGE  # groups per page, before the bucket budget
    page_token: str = ""

    def groups_per_page(self) -> int:
        return max(1, min(self.page_size, MAX_BUCKETS // len(self.buckets())))

    def fingerprint(self, account_id: int) -> str:
        """What a page token is bound to: the account, range, filter and grouping."""
        parts = [account_id, self.first_hour, self.end_hour, self.granularity.value, self.group_by.value,
                 self.groups.dimension, self.groups.key, self.totals.dimension, self.totals.key]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    @property
    def start(self) -> datetime:
        return hour_time(self.first_hour)

    @property
    def end(self) -> datetime:
        return hour_time(self.end_hour)

    def buckets(self) -> list[int]:
        """The first hour of every bucket of the range."""
        return list(range(self.first_hour, self.end_hour, self.granularity.hours))


def hour_time(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _ceil_hour(moment: datetime) -> int:
    hour = epoch_hour(moment)
    return hour if hour * 3600 == moment.timestamp() else hour + 1


def build_query(start: datetime | None, end: datetime | None, granularity: Granularity | None,
                group_by: GroupBy | None, tag: str = "", template_id: str = "",
                now: datetime | None = None, page_size: int = 0, page_token: str = "") -> StatsQuery:
    """Defaults: the last 7 days, by day, not grouped. Raises InvalidArgument naming
    each field that is wrong."""
    granularity = granularity or Granularity.DAY
    group_by = group_by or GroupBy.NONE
    for name, value in (("start_time", start), ("end_time", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidArgument([FieldViolation(name, "must lie between 1970 and 9000")])
    end = end or (now or utcnow())
    start = start or end - DEFAULT_RANGE
    violations: list[FieldViolation] = []
    if start >= end:
        violations.append(FieldViolation("start_time", "must be before end_time"))
    elif end - start > timedelta(days=MAX_DAYS[granularity.value]):
        violations.append(FieldViolation(
            "end_time", f"at most {MAX_DAYS[granularity.value]} days after start_time with {granularity.value} buckets"
        ))
    if tag and template_id:
        violations.append(FieldViolation("template_id", "filter by a tag or by a template, not both"))
    if tag and group_by in (GroupBy.TEMPLATE, GroupBy.TEMPLATE_VARIANT):
        violations.append(FieldViolation("group_by", "a tag filter goes with no grouping or with TAG"))
    if template_id and group_by is GroupBy.TAG:
        violations.append(FieldViolation("group_by", "a template filter goes with no grouping, TEMPLATE or TEMPLATE_VARIANT"))
    for name, value, most in (("tag", tag, 128), ("template_id", template_id, 40)):
        if len(value) > most:
            violations.append(FieldViolation(name, f"at most {most} characters"))
    if page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative"))
    if violations:
        raise InvalidArgument(violations)
    width = granularity.hours
    first = epoch_hour(start) // width * width
    last = -(-_ceil_hour(end) // width) * width
    totals = Source(TAG, tag) if tag else Source(TEMPLATE, template_id) if template_id else Source(ALL, "")
    groups = {
        GroupBy.NONE: totals,
        GroupBy.TAG: Source(TAG, tag or None),
        GroupBy.TEMPLATE: Source(TEMPLATE, template_id or None),
        GroupBy.TEMPLATE_VARIANT: Source(VARIANT, template_id or None),
    }[group_by]
    return StatsQuery(first, last, granularity, group_by, groups, totals,
                      min(page_size or DEFAULT_PAGE, MAX_PAGE), page_token)
