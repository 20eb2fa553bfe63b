"""The pure parts of the stats: which counters an event adds to, its failure pattern,
the rows it counts in (overall, each tag, template, variant), and the checked query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.emails.model import EventType
from core.errors import InvalidArgument
from core.stats.mapping import Failure, counters, domain_of, failure
from core.stats.request import Granularity, GroupBy, Source, build_query
from core.stats.tally import EventFacts, epoch_hour, tally


@pytest.mark.parametrize(("event_type", "detail", "expected"), [
    (EventType.QUEUED, "", ("sent",)),
    (EventType.SENT, "via relay", ("delivered",)),
    (EventType.BOUNCED, "", ("bounced_hard",)),
    (EventType.DELAYED, "dsn report: 4.4.1", ("bounced_soft",)),
    (EventType.COMPLAINED, "", ("complained",)),
    (EventType.UNSUBSCRIBED, "", ("unsubscribed",)),
    (EventType.SUPPRESSED, "", ("suppressed",)),
    (EventType.FAILED, "", ("failed",)),
    (EventType.DEFERRED, "", ("deferred",)),
    (EventType.OPENED, "first open", ("opened", "unique_opened")),
    (EventType.OPENED, "repeat open", ("opened",)),
    (EventType.OPENED, "first machine open (Apple MPP)", ("machine_opened",)),
    (EventType.CLICKED, "first https://x.example/", ("clicked", "unique_clicked")),
    (EventType.CLICKED, "repeat machine scanner", ("machine_clicked",)),
    (EventType.SENDING, "", ()),
    (EventType.SCHEDULED, "", ()),
    (EventType.CANCELED, "", ()),
    (EventType.WEBHOOK_DISABLED, "", ()),
])
def test_each_event_type_adds_to_its_counters(event_type: EventType, detail: str, expected: tuple[str, ...]) -> None:
    assert counters(event_type, detail) == expected


def test_bounces_and_deferrals_have_a_failure_pattern_and_nothing_else_does() -> None:
    assert failure(EventType.BOUNCED, 550, "Ada@Example.COM") == Failure("bounce", 550, "example.com")
    assert failure(EventType.DELAYED, None, "b@x.example") == Failure("bounce", 0, "x.example")
    assert failure(EventType.DEFERRED, 451, "") == Failure("deferral", 451, "")
    assert failure(EventType.SENT, 250, "a@x.example") is None
    assert domain_of("no-at-sign") == "" and domain_of("a@b@C.example.") == "c.example"


def _facts(type_: EventType, at: datetime, **kw: object) -> EventFacts:
    return EventFacts(account_id=1, type=type_, occurred_at=at, **kw)  # type: ignore[arg-type]


def test_an_event_counts_once_overall_once_per_tag_and_in_its_template_and_variant() -> None:
    at = datetime(2026, 3, 1, 10, 59, 59, tzinfo=UTC)
    out = tally([_facts(EventType.SENT, at, tags=["a", "b", "a"], template_id="tpl_1", template_variant="B"),
                 _facts(EventType.SENT, at + timedelta(seconds=1))])
    hour = epoch_hour(at)
    assert out.counts[(1, "all", hour, "", "")]["delivered"] == 1
    assert out.counts[(1, "tag", hour, "a", "")]["delivered"] == 1
    assert out.counts[(1, "tag", hour, "b", "")]["delivered"] == 1
    assert out.counts[(1, "template", hour, "tpl_1", "")]["delivered"] == 1
    assert out.counts[(1, "variant", hour, "tpl_1", "B")]["delivered"] == 1
    # the next second is the next hour; untagged, no template: the '' rows
    assert out.counts[(1, "all", hour + 1, "", "")]["delivered"] == 1
    assert out.counts[(1, "tag", hour + 1, "", "")]["delivered"] == 1
    assert out.counts[(1, "variant", hour + 1, "", "")]["delivered"] == 1


def test_the_query_defaults_to_the_last_seven_days_by_day_and_rounds_to_whole_buckets() -> None:
    now = datetime(2026, 3, 8, 13, 30, tzinfo=UTC)
    query = build_query(None, None, None, None, now=now)
    assert query.granularity is Granularity.DAY and query.group_by is GroupBy.NONE
    assert query.start == datetime(2026, 3, 1, tzinfo=UTC) and query.end == datetime(2026, 3, 9, tzinfo=UTC)
    assert len(query.buckets()) == 8
    hourly = build_query(datetime(2026, 3, 1, 10, 15, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC),
                         Granularity.HOUR, GroupBy.TAG, tag="a")
    assert (hourly.start, hourly.end) == (datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert hourly.groups == Source("tag", "a") and hourly.totals == Source("tag", "a")
    variants = build_query(None, None, None, GroupBy.TEMPLATE_VARIANT, template_id="tpl_1", now=now)
    assert variants.groups == Source("variant", "tpl_1") and variants.totals == Source("template", "tpl_1")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"start": datetime(2025, 1, 1, tzinfo=UTC), "end": datetime(2026, 2, 5, tzinfo=UTC)}, "end_time"),  # 400 days
    ({"start": datetime(2026, 1, 1, tzinfo=UTC), "end": datetime(2026, 2, 5, tzinfo=UTC),
      "granularity": Granularity.HOUR}, "end_time"),
    ({"start": datetime(2026, 2, 5, tzinfo=UTC), "end": datetime(2026, 2, 1, tzinfo=UTC)}, "start_time"),
    ({"tag": "a", "template_id": "tpl_1"}, "template_id"),
    ({"tag": "a", "group_by": GroupBy.TEMPLATE}, "group_by"),
    ({"template_id": "tpl_1", "group_by": GroupBy.TAG}, "group_by"),
    ({"tag": "x" * 129}, "tag"),
    ({"end": datetime(1, 1, 1, tzinfo=UTC)}, "end_time"),  # no default start before it
    ({"start": datetime(9999, 1, 1, tzinfo=UTC)}, "start_time"),
])
def test_a_wrong_query_names_its_field(kwargs: dict[str, object], field: str) -> None:
    args = {"start": None, "end": None, "granularity": None, "group_by": None, **kwargs}
    with pytest.raises(InvalidArgument) as error:
        build_query(args.pop("start"), args.pop("end"), args.pop("granularity"), args.pop("group_by"), **args)  # type: ignore[arg-type]
    assert [v.field for v in error.value.violations] == [field]
