"""Which counters an event adds to, and where its failure pattern goes. Pure functions:
the rollup (core/stats/rollup.py) applies them to each event exactly once.

    queued        sent            (an email entering delivery: at Send, or at send_at)
    sent          delivered       (per recipient)
    bounced       bounced_hard    (per recipient: SMTP 5xx, or a permanent DSN)
    delayed       bounced_soft    (per recipient: a transient DSN after delivery)
    complained    complained
    unsubscribed  unsubscribed
    suppressed    suppressed
    failed        failed
    deferred      deferred        (per recipient: 4xx, network fault; or a lost lease)
    opened        opened + unique_opened (first), or machine_opened
    clicked       clicked + unique_clicked (first), or machine_clicked

Other events (sending, scheduled, canceled, webhook_disabled) add to nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.emails.model import EventType
from core.storage.stats_tables import STATS_METRICS

_DIRECT = {
    EventType.QUEUED: "sent",
    EventType.SENT: "delivered",
    EventType.BOUNCED: "bounced_hard",
    EventType.DELAYED: "bounced_soft",
    EventType.COMPLAINED: "complained",
    EventType.UNSUBSCRIBED: "unsubscribed",
    EventType.SUPPRESSED: "suppressed",
    EventType.FAILED: "failed",
    EventType.DEFERRED: "deferred",
}
_ENGAGEMENT = {EventType.OPENED: "opened", EventType.CLICKED: "clicked"}
_FAILURE_KINDS = {EventType.BOUNCED: "bounce", EventType.DELAYED: "bounce", EventType.DEFERRED: "deferral"}
_MACHINE = re.compile(r"\bmachine\b", re.IGNORECASE)

BOUNCE, DEFERRAL = "bounce", "deferral"
assert set(_DIRECT.values()) <= set(STATS_METRICS)


def counters(event_type: EventType, detail: str) -> tuple[str, ...]:
    """The counters (names in STATS_METRICS) one event adds 1 to. An open or click's
    detail starts with `first` (the recipient's first of that email) or `repeat`, and
    says `machine` when a machine made it: machine ones count only as machine_*."""
    direct = _DIRECT.get(event_type)
    if direct is not None:
        return (direct,)
    name = _ENGAGEMENT.get(event_type)
    if name is None:
        return ()
    if _MACHINE.search(detail):
        return (f"machine_{name}",)
    if detail.lstrip().lower().startswith("first"):
        return (name, f"unique_{name}")
    return (name,)


@dataclass(frozen=True)
class Failure:
    """Where a bounce or deferral counts in the failure patterns."""

    kind: str  # bounce or deferral
    smtp_code: int  # 0: no reply code
    domain: str  # the recipient's domain, lower case ('' when the event names none)


def failure(event_type: EventType, smtp_code: int | None, recipient: str) -> Failure | None:
    kind = _FAILURE_KINDS.get(event_type)
    if kind is None:
        return None
    return Failure(kind, smtp_code if smtp_code and 0 < smtp_code < 1000 else 0, domain_of(recipient))


def domain_of(address: str) -> str:
    """The domain of an address, lower case, at most 255 characters ('' without one)."""
    local, at, domain = address.rpartition("@")
    return domain.strip().rstrip(".").lower()[:255] if at and local else ""
