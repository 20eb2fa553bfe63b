"""Adding up a batch of events into counter rows (pure): each event adds to the
account's overall row, to one row per tag of its email (the '' tag when untagged), to
its template's row and to its template variant's row, in the UTC hour it happened."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.emails.model import EventType
from core.stats.mapping import counters, failure

ALL, TAG, TEMPLATE, VARIANT = "all", "tag", "template", "variant"

# (account id, dimension, hour, key, variant)
RowKey = tuple[int, str, int, str, str]
# RowKey + (kind, smtp code, domain)
FailureKey = tuple[int, str, int, str, str, str, int, str]


@dataclass(frozen=True)
class EventFacts:
    """One event with what its email says about it."""

    account_id: int
    type: EventType
    occurred_at: datetime  # aware
    smtp_code: int | None = None
    detail: str = ""
    recipient: str = ""
    tags: Sequence[str] = ()
    template_id: str = ""
    template_variant: str = ""


@dataclass
class Tally:
    counts: defaultdict[RowKey, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter[FailureKey] = field(default_factory=Counter)


def epoch_hour(moment: datetime) -> int:
    """Hours since the Unix epoch of an aware datetime (its UTC hour)."""
    return int(moment.timestamp()) // 3600


def dimensions(event: EventFacts) -> list[tuple[str, str, str]]:
    """(dimension, key, variant) of every row the event counts in."""
    template = event.template_id or ""
    rows = [(ALL, "", "")]
    rows += [(TAG, tag, "") for tag in (sorted(set(event.tags)) or [""])]
    rows += [(TEMPLATE, template, ""), (VARIANT, template, event.template_variant or "")]
    return rows


def tally(events: Iterable[EventFacts]) -> Tally:
    out = Tally()
    for event in events:
        names = counters(event.type, event.detail)
        failed = failure(event.type, event.smtp_code, event.recipient)
        if not names and failed is None:
            continue
        hour = epoch_hour(event.occurred_at)
        for dimension, key, variant in dimensions(event):
            row = (event.account_id, dimension, hour, key, variant)
            counts = out.counts[row]
            for name in names:
                counts[name] += 1
            if failed is not None:
                out.failures[(*row, failed.kind, failed.smtp_code, failed.domain)] += 1
    return out
