"""Domain vocabulary: statuses, event types and the records the store returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"


TERMINAL = frozenset({Status.SENT, Status.BOUNCED, Status.FAILED})


class EventType(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"


@dataclass(frozen=True)
class EventRecord:
    id: int
    message_id: str
    type: EventType
    occurred_at: datetime
    smtp_code: int | None = None
    smtp_message: str = ""
    detail: str = ""


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
    events: list[EventRecord] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimedEmail:
    """An email a worker holds for one delivery attempt."""

    id: int
    message_id: str
    account_id: int
    attempts: int
    content: dict[str, object]


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt ended in (set by the worker, recorded by the store)."""

    status: Status
    event: EventType
    smtp_code: int | None = None
    smtp_message: str = ""
    detail: str = ""
