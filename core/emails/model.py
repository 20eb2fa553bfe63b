"""Domain vocabulary: statuses, event types and the records the store returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """An email's status, and (QUEUED/DEFERRED/SENT/BOUNCED/SUPPRESSED/FAILED) a recipient's."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SCHEDULED = "scheduled"
    CANCELED = "canceled"


TERMINAL = frozenset({Status.SENT, Status.BOUNCED, Status.FAILED, Status.SUPPRESSED, Status.CANCELED})


class EventType(StrEnum):
    """What an event records; the names match the statuses they lead to."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SCHEDULED = "scheduled"
    CANCELED = "canceled"
    WEBHOOK_DISABLED = "webhook_disabled"  # about the account, not an email (email_id NULL)
    DELAYED = "delayed"  # a receiver's delay notification (transient DSN) after SENT
    COMPLAINED = "complained"  # a recipient marked the email as spam (ARF feedback report)
    UNSUBSCRIBED = "unsubscribed"  # a recipient used the email's unsubscribe link or mailto
    OPENED = "opened"  # a recipient's client loaded the tracking pixel
    CLICKED = "clicked"  # a recipient followed a tracked link


@dataclass(frozen=True)
class EventRecord:
    id: int
    message_id: str
    type: EventType
    occurred_at: datetime
    smtp_code: int | None = None
    smtp_message: str = ""
    detail: str = ""
    recipient: str = ""
    txid: int = 0  # the writing transaction (PostgreSQL); with id, the log position


@dataclass(frozen=True)
class RecipientState:
    """One recipient's state, kept with the email as JSON."""

    status: Status
    code: int | None = None
    message: str = ""

    def to_json(self) -> dict[str, object]:
        return {"status": self.status.value, "code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RecipientState:
        code = data.get("code")
        return cls(Status(str(data["status"])), int(code) if code is not None else None, str(data.get("message", "")))  # type: ignore[call-overload]


def overall(recipients: dict[str, RecipientState]) -> Status:
    """The email's status once no recipient is pending: SENT if one was delivered,
    else BOUNCED, else FAILED, else SUPPRESSED."""
    statuses = {s.status for s in recipients.values()}
    for status in (Status.SENT, Status.BOUNCED, Status.FAILED):
        if status in statuses:
            return status
    return Status.SUPPRESSED


@dataclass(frozen=True)
class EmailRecord:
    id: int
    message_id: str
    account_id: int
    status: Status
    attempts: int
    last_error: str
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    send_at: datetime | None = None
    next_attempt_at: datetime | None = None
    expires_at: datetime | None = None
    recipients: dict[str, RecipientState] = field(default_factory=dict)
    content_pruned_at: datetime | None = None
    events_pruned_before: datetime | None = None
    events: list[EventRecord] = field(default_factory=list)
    template_id: str = ""  # the template it was rendered from, its version and variant
    template_version: int = 0
    template_variant: str = ""


@dataclass(frozen=True)
class ClaimedEmail:
    """An email a worker holds for one delivery attempt."""

    id: int
    message_id: str
    account_id: int
    attempts: int
    content: dict[str, object]
    created_at: datetime
    expires_at: datetime | None
    recipients: dict[str, RecipientState]
    send_at: datetime | None = None
    test_mode: bool = False
    # Looked up in the claim's transaction: which pending recipients are suppressed
    # (None: not looked up).
    suppressed: dict[str, str] | None = None

    @property
    def started_at(self) -> datetime:
        """When delivery began: send_at for scheduled emails, acceptance otherwise."""
        return max(self.created_at, self.send_at) if self.send_at else self.created_at


@dataclass(frozen=True)
class NewEvent:
    """An event to append (the store adds ids and times)."""

    type: EventType
    smtp_code: int | None = None
    smtp_message: str = ""
    detail: str = ""
    recipient: str = ""


@dataclass(frozen=True)
class AttemptResult:
    """What one delivery attempt ended in, decided by the worker, written by the store."""

    status: Status
    recipients: dict[str, RecipientState]
    events: list[NewEvent]
    last_error: str = ""
    next_attempt_at: datetime | None = None
    suppress: dict[str, str] = field(default_factory=dict)  # address -> reason
