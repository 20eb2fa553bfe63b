"""Mapping between protobuf messages and domain values (and nothing else)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from core.emails.model import EmailRecord, EventRecord, EventType, Status
from core.errors import FieldViolation, InvalidArgument, PostwireError
from core.events.cursor import Position, encode_cursor
from postwire.v1 import email_pb2, email_service_pb2, event_pb2
from server.errors import send_error

log = logging.getLogger(__name__)


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def datetime_or_none(message: Message, field: str) -> datetime | None:
    """A Timestamp field as an aware datetime; None when unset."""
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument([FieldViolation(field, "not a valid timestamp")]) from exc


def status_to_proto(status: Status) -> int:
    return email_pb2.EmailStatus.Value(f"EMAIL_STATUS_{status.name}")


def event_type_to_proto(event_type: EventType) -> int:
    return event_pb2.EventType.Value(f"EVENT_TYPE_{event_type.name}")


def event_types_from_proto(values: list[int], field: str = "types") -> list[EventType]:
    result, violations = [], []
    for index, value in enumerate(values):
        name = event_pb2.EventType.Name(value) if value in event_pb2.EventType.values() else ""
        if not name or value == event_pb2.EVENT_TYPE_UNSPECIFIED:
            violations.append(FieldViolation(f"{field}[{index}]", "unknown event type"))
            continue
        result.append(EventType[name.removeprefix("EVENT_TYPE_")])
    if violations:
        raise InvalidArgument(violations)
    return result


def event_to_proto(event: EventRecord) -> event_pb2.Event:
    return event_pb2.Event(
        cursor=encode_cursor(Position(event.txid, event.id)),
        message_id=event.message_id,
        type=event_type_to_proto(event.type),  # type: ignore[arg-type]
        occurred_at=timestamp(event.occurred_at),
        smtp_code=event.smtp_code or 0,
        smtp_message=event.smtp_message,
        detail=event.detail,
        recipient=event.recipient,
    )


def status_response(record: EmailRecord) -> email_service_pb2.GetStatusResponse:
    return email_service_pb2.GetStatusResponse(
        message_id=record.message_id,
        status=status_to_proto(record.status),  # type: ignore[arg-type]
        attempts=record.attempts,
        last_error=record.last_error,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        sent_at=timestamp(record.sent_at),
        events=[event_to_proto(e) for e in record.events],
        recipients=[
            email_pb2.RecipientStatus(
                address=address,
                status=status_to_proto(state.status),  # type: ignore[arg-type]
                smtp_code=state.code or 0,
                smtp_message=state.message,
            )
            for address, state in record.recipients.items()
        ],
        send_at=timestamp(record.send_at),
        next_attempt_at=timestamp(record.next_attempt_at),
        expires_at=timestamp(record.expires_at),
        content_pruned_at=timestamp(record.content_pruned_at),
        events_pruned_before=timestamp(record.events_pruned_before),
        template_id=record.template_id,
        template_version=record.template_version,
        template_variant=record.template_variant,
    )


def send_result(outcome: tuple[str, Status] | Exception) -> email_service_pb2.SendResult:
    """One SendBatch result: the accepted email, or the error that refused it."""
    return email_service_pb2.SendResult(**send_outcome(outcome))


def send_outcome(outcome: tuple[str, Status] | Exception) -> dict[str, Any]:
    """The `accepted` or `error` field of a SendResult or SendStreamResponse."""
    if isinstance(outcome, Exception):
        if not isinstance(outcome, PostwireError):
            log.error("a bulk-sent email could not be stored", exc_info=outcome)
        return {"error": send_error(outcome)}
    message_id, status = outcome
    return {"accepted": email_service_pb2.SendResponse(message_id=message_id, status=status_to_proto(status))}  # type: ignore[arg-type]
