"""What a hit on `/t/o/<token>` or `/t/c/<token>` does, for the HTTP adapter
(server/tracking_http.py): read the token (no database for anything malformed or
forged), recognise machines, record the OPENED/CLICKED event, and say what to answer.

Cheap under abuse: the token is checked before anything else; a client address past
POSTWIRE_TRACKING_PER_IP_PER_MINUTE still gets its pixel or redirect but nothing is
recorded; a database that cannot be reached never breaks a reader's click (the redirect
is answered, the hit counted `unrecorded`).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter

from core.errors import Unavailable
from core.observability.metrics import metric
from core.tracking.machine import client_address, machine_reason
from core.tracking.record import HitRecorder
from core.tracking.tokens import TrackingTokens

log = logging.getLogger(__name__)

HITS = metric(
    Counter, "postwire_tracking_hits_total",
    "Tracking hits by kind (open, click) and outcome: recorded, bad_token (forged, altered or malformed: 404),"
    " unknown_email, rate_limited or unrecorded (database unavailable).", ["kind", "outcome"],
)
MACHINE = metric(
    Counter, "postwire_tracking_machine_hits_total",
    "Recorded tracking hits flagged as machine (apple-mpp, google-image-proxy, scanner, head, no-user-agent).",
    ["kind", "reason"],
)


class PerAddress:
    """At most `limit` hits per client address per minute (per process); 0: no limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._window = 0
        self._counts: dict[str, int] = {}

    def allow(self, address: str) -> bool:
        if not self.limit:
            return True
        window = int(time.monotonic() // 60)
        if window != self._window or len(self._counts) > 100_000:
            self._window, self._counts = window, {}
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        return count <= self.limit


class Hits:
    def __init__(self, tokens: TrackingTokens, recorder: HitRecorder, trusted_proxies: frozenset[str],
                 per_ip_per_minute: int) -> None:
        self.tokens = tokens
        self.recorder = recorder
        self.trusted = trusted_proxies
        self.limit = PerAddress(per_ip_per_minute)

    async def hit(self, kind: str, token: str, *, method: str, peer: str, forwarded_for: str,
                  user_agent: str) -> str | None:
        """The hit's URL (a click's target, "" for an open) when the token is genuine;
        None for anything else (answered 404, nothing recorded)."""
        claim = self.tokens.read(token, kind)
        if claim is None:
            HITS.labels(kind=kind, outcome="bad_token").inc()
            return None
        address = client_address(peer, forwarded_for, self.trusted)
        if not self.limit.allow(address):
            HITS.labels(kind=kind, outcome="rate_limited").inc()
            return claim.url
        machine = machine_reason(address, user_agent, method)
        try:
            first = await self.recorder.record(claim, machine, user_agent)
        except Unavailable:
            log.warning("tracking: %s of %s not recorded (database unavailable)", kind, claim.message_id)
            HITS.labels(kind=kind, outcome="unrecorded").inc()
            return claim.url
        HITS.labels(kind=kind, outcome="recorded" if first is not None else "unknown_email").inc()
        if first is not None and machine:
            MACHINE.labels(kind=kind, reason=machine).inc()
        return claim.url
