"""What GetStats answers, as plain values (the servicer maps them to protobuf)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from core.storage.stats_tables import STATS_METRICS

Counts = tuple[int, ...]  # one count per name of STATS_METRICS, in that order
ZERO: Counts = (0,) * len(STATS_METRICS)


def as_dict(counts: Counts) -> dict[str, int]:
    return dict(zip(STATS_METRICS, counts, strict=True))


class Bucket(NamedTuple):
    hour: int  # its first hour, in hours since the Unix epoch
    counts: Counts

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.hour * 3600, UTC)


@dataclass(frozen=True)
class Group:
    tag: str = ""
    template_id: str = ""
    template_variant: str = ""
    buckets: list[Bucket] = field(default_factory=list)
    totals: Counts = ZERO


@dataclass(frozen=True)
class Patterns:
    """The most frequent (value, count) pairs, most frequent first."""

    bounce_codes: list[tuple[int, int]] = field(default_factory=list)
    bounce_domains: list[tuple[str, int]] = field(default_factory=list)
    deferral_codes: list[tuple[int, int]] = field(default_factory=list)
    deferral_domains: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Stats:
    start: datetime
    end: datetime
    groups: list[Group]
    totals: Counts
    failures: Patterns
    counted_through: datetime | None = None
    next_page_token: str = ""  # of the next page of groups; empty on the last
