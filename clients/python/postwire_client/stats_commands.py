"""The `postwire stats` command: the account's counts per day or hour, as a table.

    postwire stats [--from T] [--to T] [--granularity day|hour] [--by tag|template|variant]
                   [--tag TAG | --template ID] [--json]

Times are ISO 8601 with an offset, or a bare date (midnight UTC); the default range
is the last 7 days. The table has a line per bucket (and group), the totals, then the
most frequent bounce and deferral codes and domains. `--json` prints the GetStats
response. Call errors are printed by `main()` in cli.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from postwire.v1 import stats_pb2
from postwire.v1 import stats_service_pb2 as pb
from postwire_client.domain_commands import table
from postwire_client.formatting import to_json

if TYPE_CHECKING:
    from postwire_client.sdk import Client

COLUMNS = (("SENT", "sent"), ("DELIVERED", "delivered"), ("HARD", "bounced_hard"), ("SOFT", "bounced_soft"),
           ("COMPLAINED", "complained"), ("UNSUB", "unsubscribed"), ("SUPPRESSED", "suppressed"),
           ("FAILED", "failed"), ("DEFERRED", "deferred"), ("OPENED", "opened"), ("UNIQ-OPEN", "unique_opened"),
           ("CLICKED", "clicked"), ("UNIQ-CLICK", "unique_clicked"))


def parse_time(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"error: {flag}: not a date or ISO 8601 time such as 2026-12-01T09:00:00+00:00") from None
    if parsed.tzinfo is None:
        if len(value) > 10:
            raise SystemExit(f"error: {flag}: give a UTC offset, as in 2026-12-01T09:00:00+00:00")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _group_name(response: pb.GetStatsResponse, group: stats_pb2.StatsGroup) -> str | None:
    if response.group_by == stats_pb2.STATS_GROUP_BY_TAG:
        return group.tag or "(untagged)"
    if response.group_by == stats_pb2.STATS_GROUP_BY_TEMPLATE:
        return group.template_id or "(no template)"
    if response.group_by == stats_pb2.STATS_GROUP_BY_TEMPLATE_VARIANT:
        return f"{group.template_id or '(no template)'}/{group.template_variant or '-'}"
    return None


def _bucket(stamp: Any, hourly: bool) -> str:
    moment = stamp.ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:00Z") if hourly else moment.strftime("%Y-%m-%d")


def stats_lines(response: pb.GetStatsResponse) -> list[str]:
    """A line per bucket and group, the totals, then the failure patterns."""
    hourly = response.granularity == stats_pb2.STATS_GRANULARITY_HOUR
    grouped = response.group_by not in (stats_pb2.STATS_GROUP_BY_UNSPECIFIED, stats_pb2.STATS_GROUP_BY_NONE)
    head = ["HOUR" if hourly else "DAY"] + (["GROUP"] if grouped else []) + [name for name, _ in COLUMNS]
    rows = [head]
    for group in response.groups:
        name = _group_name(response, group)
        for bucket in group.buckets:
            rows.append([_bucket(bucket.start_time, hourly)] + ([name or ""] if grouped else [])
                        + [str(getattr(bucket.counts, f)) for _, f in COLUMNS])
    rows.append(["TOTAL"] + ([""] if grouped else []) + [str(getattr(response.totals, f)) for _, f in COLUMNS])
    lines = table(rows)
    machine = (response.totals.machine_opened, response.totals.machine_clicked)
    if any(machine):
        lines.append(f"machine opens {machine[0]}, machine clicks {machine[1]} (not in OPENED/CLICKED)")
    f = response.failures
    for label, items in (("bounce codes", [(str(c.smtp_code or "none"), c.count) for c in f.bounce_codes]),
                         ("bounce domains", [(d.domain, d.count) for d in f.bounce_domains]),
                         ("deferral codes", [(str(c.smtp_code or "none"), c.count) for c in f.deferral_codes]),
                         ("deferral domains", [(d.domain, d.count) for d in f.deferral_domains])):
        if items:
            lines.append(f"top {label}: " + ", ".join(f"{value} ({count})" for value, count in items))
    return lines


def cmd_stats(args: argparse.Namespace) -> int:
    query = {"start": parse_time(args.start, "--from"), "end": parse_time(args.end, "--to"),
             "granularity": args.granularity, "group_by": args.by or "none", "tag": args.tag or "",
             "template_id": args.template or ""}
    client: Client = args.make_client(args)
    with client:
        response = client.get_all_stats(**query)
    print(to_json(response) if args.json else "\n".join(stats_lines(response)))
    return 0


def add_stats_commands(sub: Any, client_flags: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
                       make_client: Callable[[argparse.Namespace], Client]) -> None:
    """`stats`, added to the `postwire` parser."""
    p = client_flags(sub.add_parser("stats", help="counts of sent, delivered, bounced, ... emails per day or hour"))
    p.add_argument("--from", dest="start", metavar="TIME", help="start (ISO 8601 or a date; default 7 days ago)")
    p.add_argument("--to", dest="end", metavar="TIME", help="end, excluded (default now)")
    p.add_argument("--granularity", choices=("day", "hour"), default="day")
    p.add_argument("--by", choices=("tag", "template", "variant"), help="one group per tag, template or variant")
    p.add_argument("--tag", help="only emails with this tag")
    p.add_argument("--template", metavar="ID", help="only emails sent from this template")
    p.add_argument("--json", action="store_true", help="the GetStats response as JSON")
    p.set_defaults(func=cmd_stats, make_client=make_client)
