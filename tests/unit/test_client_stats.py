"""The SDK's GetStats request (names for granularity and grouping, aware times) and the
`postwire stats` table, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import stats_pb2
from postwire.v1 import stats_service_pb2 as pb
from postwire_client.stats import stats_request
from postwire_client.stats_commands import parse_time, stats_lines


def test_the_request_takes_short_names_and_aware_times() -> None:
    request = stats_request(start=datetime(2026, 12, 1, tzinfo=UTC), granularity="hour", group_by="variant",
                            template_id="tpl_1")
    assert request.granularity == stats_pb2.STATS_GRANULARITY_HOUR
    assert request.group_by == stats_pb2.STATS_GROUP_BY_TEMPLATE_VARIANT
    assert request.start_time.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert not request.HasField("end_time")
    with pytest.raises(ValueError, match="granularity"):
        stats_request(granularity="week")
    with pytest.raises(ValueError, match="timezone"):
        stats_request(start=datetime(2026, 12, 1))


def test_a_bare_date_is_midnight_utc_and_a_time_needs_an_offset() -> None:
    assert parse_time("2026-12-01", "--from") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(SystemExit, match="UTC offset"):
        parse_time("2026-12-01T10:00:00", "--from")
    with pytest.raises(SystemExit, match="--to"):
        parse_time("yesterday", "--to")


def test_the_table_has_a_line_per_bucket_and_group_the_totals_and_the_failures() -> None:
    counts = stats_pb2.StatsCounts(sent=3, delivered=2, bounced_hard=1, machine_opened=4)
    group = stats_pb2.StatsGroup(tag="welcome", buckets=[
        stats_pb2.StatsBucket(start_time=Timestamp(seconds=1764547200), counts=counts)], totals=counts)
    response = pb.GetStatsResponse(
        granularity=stats_pb2.STATS_GRANULARITY_DAY, group_by=stats_pb2.STATS_GROUP_BY_TAG, groups=[group],
        totals=counts, failures=stats_pb2.FailurePatterns(bounce_codes=[stats_pb2.SmtpCodeCount(smtp_code=550, count=1)]),
    )
    lines = stats_lines(response)
    assert lines[0].split()[:5] == ["DAY", "GROUP", "SENT", "DELIVERED", "HARD"]
    assert lines[1].split()[:5] == ["2025-12-01", "welcome", "3", "2", "1"]
    assert lines[2].split()[:4] == ["TOTAL", "3", "2", "1"]
    assert "machine opens 4" in lines[3] and lines[4] == "top bounce codes: 550 (1)"
