"""How the `postwire` client commands print statuses and events: readable lines, or JSON."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from postwire.v1 import email_pb2, event_pb2

if TYPE_CHECKING:
    from postwire.v1 import email_service_pb2 as pb


def _time(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_line(event: event_pb2.Event) -> str:
    """One readable line: time, type, message id, recipient, SMTP code, then the detail."""
    kind = event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_")
    note = " ".join((event.detail or event.smtp_message).split())
    fields = [_time(event.occurred_at), f"{kind:<10}", event.message_id or "-", event.recipient or "-",
              str(event.smtp_code) if event.smtp_code else "-"]
    return "  ".join(fields) + (f"  {note}" if note else "")


def status_text(status: pb.GetStatusResponse) -> str:
    name = email_pb2.EmailStatus.Name(status.status).removeprefix("EMAIL_STATUS_")
    lines = [f"{status.message_id}  {name}  attempts {status.attempts}"]
    for label, field in (("created", "created_at"), ("send at", "send_at"), ("sent", "sent_at"),
                         ("next attempt", "next_attempt_at"), ("expires", "expires_at")):
        if status.HasField(field):
            lines.append(f"  {label + ':':<14}{_time(getattr(status, field))}")
    if status.template_id:
        variant = f" variant {status.template_variant}" if status.template_variant else ""
        lines.append(f"  {'template:':<14}{status.template_id} version {status.template_version}{variant}")
    if status.last_error:
        lines.append(f"  {'last error:':<14}{status.last_error}")
    if status.recipients:
        lines.append("recipients:")
        for r in status.recipients:
            reply = f"  {r.smtp_code} {' '.join(r.smtp_message.split())}" if r.smtp_code else ""
            lines.append(f"  {r.address}  {email_pb2.EmailStatus.Name(r.status).removeprefix('EMAIL_STATUS_')}{reply}")
    if status.events:
        lines.append("events:")
        lines += [f"  {event_line(e)}" for e in status.events]
    return "\n".join(lines)


def to_json(message: Any) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)
