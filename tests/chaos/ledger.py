"""The chaos suite's bookkeeping: a steady stream of sends (each with its idempotency
key, through the retrying client), subscribers following the account's events by cursor,
and the ledger that reconciles what was accepted, what GetStatus says, what the SMTP sink
received and what every subscriber saw."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from postwire.v1 import email_pb2, event_pb2
from postwire_client import PostwireError
from tests.chaos.client import RetryingClient
from tests.support.smtp import Recorder

S = email_pb2
E = event_pb2
TERMINAL = {S.EMAIL_STATUS_SENT, S.EMAIL_STATUS_BOUNCED, S.EMAIL_STATUS_FAILED, S.EMAIL_STATUS_SUPPRESSED, S.EMAIL_STATUS_CANCELED}
ABANDONED = "worker lease expired"  # the detail of the DEFERRED event of a released claim


@dataclass
class Outcome:
    index: int
    message_id: str = ""
    error: str = ""
    accepted_at: float = 0.0


class Load:
    """`count` sends at a steady `rate` per second over `threads` threads (one client each)."""

    def __init__(self, address: str, key: str, tag: str, count: int, rate: float, recipient: Callable[[int], str], threads: int = 6) -> None:
        self.address, self.key, self.tag = address, key, tag
        self.count, self.rate, self.threads = count, rate, threads
        self.recipient = recipient
        self.outcomes = [Outcome(i) for i in range(count)]
        self.retries: Counter[str] = Counter()
        self.started = 0.0
        self._threads: list[threading.Thread] = []

    def request(self, index: int) -> dict[str, object]:
        return {
            "from_address": "chaos@example.com",
            "to": [self.recipient(index)],
            "subject": f"{self.tag} #{index}",
            "text_body": f"chaos ledger {self.tag}, message {index}",
            "idempotency_key": f"{self.tag}-{index}",
            "tags": [self.tag],
        }

    def _run(self, offset: int) -> None:
        with RetryingClient(self.address, self.key) as client:
            for index in range(offset, self.count, self.threads):
                delay = self.started + index / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                outcome = self.outcomes[index]
                try:
                    outcome.message_id = client.send(**self.request(index)).message_id
                    outcome.accepted_at = time.monotonic()
                except PostwireError as error:
                    outcome.error = f"{error.code.name}: {error.message}"
            self.retries.update(client.retries)

    def start(self) -> None:
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(self.threads)]
        for thread in self._threads:
            thread.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t for t in self._threads if t.is_alive()]
        assert not stuck, f"{len(stuck)} sending threads still busy after {timeout}s"

    def accepted(self) -> list[str]:
        return [o.message_id for o in self.outcomes if o.message_id]

    def replay_check(self) -> list[str]:
        """Every key sent once more, now that all is calm: each must answer its original id."""
        accepted = [outcome for outcome in self.outcomes if outcome.message_id]
        with RetryingClient(self.address, self.key) as client, ThreadPoolExecutor(8) as pool:
            again = pool.map(lambda outcome: client.send(**self.request(outcome.index)).message_id, accepted)
            return [f"#{o.index}: {o.message_id} then {a}" for o, a in zip(accepted, again) if a != o.message_id]


class Subscriber:
    """Follows the account's events with the SDK's follow_events (resumes by cursor)."""

    def __init__(self, address: str, key: str) -> None:
        self.client = RetryingClient(address, key)
        self.events: list[event_pb2.Event] = []
        self.error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.client.follow_events():
                self.events.append(event)
        except BaseException as error:  # noqa: BLE001 - reported unless we closed it
            if not self._stopping:
                self.error = error

    def cursors(self) -> list[str]:
        return [e.cursor for e in list(self.events)]

    def stop(self) -> None:
        self._stopping = True
        self.client.close()
        self._thread.join(5)


def statuses_of(client: RetryingClient, ids: list[str]) -> dict[str, S.EmailStatus]:
    """GetStatus of every id, eight calls in flight (a gRPC channel serves many threads)."""
    unique = list(dict.fromkeys(ids))
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(unique, pool.map(client.get_status, unique)))


def wait_terminal(client: RetryingClient, ids: list[str], timeout: float) -> tuple[dict[str, S.EmailStatus], float]:
    """Poll GetStatus until every email is terminal (or time is up); the statuses and
    the seconds it took."""
    started = time.monotonic()
    pending = list(dict.fromkeys(ids))
    while pending and time.monotonic() - started < timeout:
        pending = [m for m, status in statuses_of(client, pending).items() if status.status not in TERMINAL]
        if pending:
            time.sleep(0.25)
    took = time.monotonic() - started
    return statuses_of(client, ids), took


def wait_caught_up(subscribers: list[Subscriber], expected: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(expected <= set(s.cursors()) or s.error for s in subscribers):
            break
        time.sleep(0.1)
    time.sleep(0.3)  # anything extra (a repeat) would show by now


@dataclass
class Ledger:
    fault: str
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    stuck: list[str] = field(default_factory=list)  # not terminal in time
    unsent: list[str] = field(default_factory=list)  # SENT, but the sink never received it
    mismatch: list[str] = field(default_factory=list)  # the sink received it, GetStatus says otherwise
    duplicates: int = 0  # extra copies in the sink
    in_flight_dups: int = 0  # ... of messages whose attempt was abandoned (in flight at a kill)
    unexpected_dups: list[str] = field(default_factory=list)
    deferred: int = 0  # messages deferred at least once
    abandoned: int = 0  # messages with an abandoned (lease-expired) attempt
    attempts: int = 0
    retries: int = 0  # client retries (UNAVAILABLE / deadline)
    orphans: list[str] = field(default_factory=list)  # emails/events/sink copies of no accepted send
    stream_gaps: int = 0
    stream_repeats: int = 0
    stream_resumes: str = ""
    subscriber_errors: list[str] = field(default_factory=list)
    drain_seconds: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return len(self.rejected) + len(self.stuck) + len(self.unsent)

    def row(self) -> dict[str, object]:
        return {
            "fault": self.fault,
            "accepted": self.accepted,
            "sent": self.sent,
            "bounced": self.bounced,
            "failed": self.failed,
            "rejected": len(self.rejected),
            "rejected but delivered": len(self.orphans),
            "duplicates": f"{self.duplicates} ({self.in_flight_dups} in flight)",
            "unexpected dups": len(self.unexpected_dups),
            "missing": self.missing,
            "deferred": self.deferred,
            "abandoned": self.abandoned,
            "client retries": self.retries,
            "stream gaps/repeats": f"{self.stream_gaps}/{self.stream_repeats}",
            "drain s": f"{self.drain_seconds:.1f}",
            "total s": f"{self.seconds:.1f}",
        }

    def problems(self) -> list[str]:
        out = []
        for name in ("rejected", "stuck", "unsent", "mismatch", "unexpected_dups", "orphans", "subscriber_errors"):
            values = getattr(self, name)
            if values:
                out.append(f"{name} ({len(values)}): {values[:5]}")
        if self.failed or self.bounced:
            out.append(f"{self.failed} FAILED and {self.bounced} BOUNCED: no permanent failure was injected")
        if self.stream_gaps or self.stream_repeats:
            out.append(f"subscribers: {self.stream_gaps} events missed, {self.stream_repeats} repeated")
        return out + self.notes


def reconcile(
    fault: str,
    load: Load,
    statuses: dict[str, S.EmailStatus],
    recorder: Recorder,
    subscribers: list[Subscriber],
) -> Ledger:
    ledger = Ledger(fault)
    ids = load.accepted()
    ledger.accepted = len(ids)
    ledger.rejected = [f"#{o.index} {o.error}" for o in load.outcomes if not o.message_id]
    if len(set(ids)) != len(ids):
        ledger.notes.append(f"{len(ids) - len(set(ids))} idempotency keys answered an id another key had")
    ledger.retries = sum(load.retries.values())

    copies: Counter[str] = Counter()
    with recorder.lock:
        received = list(recorder.received)
    for item in received:
        if str(item.message["Subject"]).startswith(f"{load.tag} #"):
            copies[item.message_id] += 1
    ledger.orphans += [f"sink: {m}" for m in copies if m not in statuses]

    expected_cursors: set[str] = set()
    for message_id, status in statuses.items():
        events = list(status.events)
        expected_cursors |= {e.cursor for e in events}
        ledger.attempts += status.attempts
        if any(e.type == E.EVENT_TYPE_DEFERRED for e in events):
            ledger.deferred += 1
        abandoned = any(e.type == E.EVENT_TYPE_DEFERRED and ABANDONED in e.detail for e in events)
        ledger.abandoned += abandoned
        name = S.EmailStatus.Name(status.status)
        if status.status not in TERMINAL:
            ledger.stuck.append(f"{message_id} {name}")
            continue
        ledger.sent += status.status == S.EMAIL_STATUS_SENT
        ledger.bounced += status.status == S.EMAIL_STATUS_BOUNCED
        ledger.failed += status.status == S.EMAIL_STATUS_FAILED
        got = copies.get(message_id, 0)
        if status.status == S.EMAIL_STATUS_SENT and got == 0:
            ledger.unsent.append(message_id)
        if status.status != S.EMAIL_STATUS_SENT and got:
            ledger.mismatch.append(f"{message_id} {name} but received {got}x")
        if got > 1:
            ledger.duplicates += got - 1
            if abandoned:
                ledger.in_flight_dups += got - 1
            else:
                ledger.unexpected_dups.append(f"{message_id} received {got}x, attempts {status.attempts}")

    resumes = []
    for n, subscriber in enumerate(subscribers):
        seen = subscriber.cursors()
        counts = Counter(seen)
        ledger.stream_repeats += sum(c - 1 for c in counts.values() if c > 1)
        ledger.stream_gaps += len(expected_cursors - set(seen))
        extra = {e.message_id for e in subscriber.events if e.cursor not in expected_cursors}
        ledger.orphans += [f"subscriber {n}: event of {m}" for m in sorted(extra)]
        if subscriber.error is not None:
            ledger.subscriber_errors.append(f"subscriber {n}: {subscriber.error!r}")
        resumes.append(str(len(seen)))
    ledger.stream_resumes = "/".join(resumes)
    return ledger


COLUMNS = ["fault", "accepted", "rejected", "rejected but delivered", "sent", "bounced", "failed", "duplicates",
           "unexpected dups", "missing", "deferred", "abandoned",
           "client retries", "stream gaps/repeats", "drain s", "total s"]


def format_table(rows: list[dict[str, object]]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS), "  ".join("-" * widths[c] for c in COLUMNS)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def format_totals(rows: list[dict[str, object]]) -> str:
    """One line over every run: what must stay zero, summed."""
    def total(column: str) -> int:
        return sum(int(str(r.get(column, 0))) for r in rows)

    return (
        f"{len(rows)} runs, {total('accepted')} accepted: {total('rejected')} rejected, "
        f"{total('rejected but delivered')} rejected but delivered, {total('missing')} lost, "
        f"{total('unexpected dups')} unexpected duplicates"
    )
