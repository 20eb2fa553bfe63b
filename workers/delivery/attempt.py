"""One attempt's bookkeeping: each recipient's state and the events, as the guard
steps of workers.delivery.actor decide them, and the retry policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.emails.content import EmailContent
from core.emails.mime import envelope_recipients
from core.emails.model import ClaimedEmail, EventType, NewEvent, RecipientState, Status
from workers.delivery.classify import Kind, Verdict, retry_hint

# Permanent replies that say the mailbox itself is bad: the address is suppressed.
# Other 5xx (552 too big, 554 policy) bounce this email only.
SUPPRESSING_CODES = frozenset({550, 551, 553})
PENDING = (Status.QUEUED, Status.DEFERRED, Status.SCHEDULED)
_STATUS_BY_KIND = {Kind.TRANSIENT: Status.DEFERRED, Kind.PERMANENT: Status.BOUNCED, Kind.FAILED: Status.FAILED}
_EVENT_BY_STATUS = {Status.DEFERRED: EventType.DEFERRED, Status.BOUNCED: EventType.BOUNCED, Status.FAILED: EventType.FAILED}


@dataclass(frozen=True)
class RetryPolicy:
    min_backoff: timedelta
    max_backoff: timedelta
    lifetime: timedelta
    lease: timedelta


class Attempt:
    """The recipients' states and the events of one attempt, as they are decided."""

    def __init__(self, claimed: ClaimedEmail, content: EmailContent, lease_end: datetime) -> None:
        self.lease_end = lease_end  # the claim is ours until then
        self.recipients = dict(claimed.recipients) or {
            address: RecipientState(Status.QUEUED) for address in envelope_recipients(content)
        }
        self.events: list[NewEvent] = []
        self.suppress: dict[str, str] = {}
        self.last_error = ""
        self.hint: timedelta | None = None

    def pending(self) -> list[str]:
        return [a for a, s in self.recipients.items() if s.status in PENDING]

    def set(self, address: str, status: Status, event: EventType, code: int | None = None, message: str = "", detail: str = "") -> None:
        self.recipients[address] = RecipientState(status, code, message)
        self.events.append(NewEvent(event, code, message, detail, recipient=address))

    def apply(self, address: str, verdict: Verdict) -> None:
        status = _STATUS_BY_KIND[verdict.kind]
        self.set(address, status, _EVENT_BY_STATUS[status], verdict.code, verdict.message, verdict.message)
        self.last_error = f"{verdict.code} {verdict.message}" if verdict.code else verdict.message
        if verdict.kind is Kind.PERMANENT and verdict.code in SUPPRESSING_CODES:
            self.suppress[address] = self.last_error
        hint = retry_hint(verdict.message) if verdict.kind is Kind.TRANSIENT else None
        if hint:
            self.hint = max(self.hint or timedelta(0), timedelta(seconds=hint))
