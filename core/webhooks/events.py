"""What a webhook carries: the payload of an event (Standard Webhooks shape
`{"type", "timestamp", "data"}`), its stable id, and which endpoints want it. Pure."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from core.emails.model import EventRecord, EventType
from core.events.cursor import Position, encode_cursor
from core.ids import random_token

TEST_TYPE = "webhook.test"


def payload_type(event_type: EventType) -> str:
    """`email.sent`, `email.deferred`, ...; `webhook.disabled` for an account event."""
    if event_type is EventType.WEBHOOK_DISABLED:
        return "webhook.disabled"
    return f"email.{event_type.value}"


def webhook_id(event_id: int) -> str:
    """The webhook-id of an event: the same for every endpoint and every attempt."""
    return f"evt_{event_id}"


def test_webhook_id() -> str:
    return "evt_test_" + random_token(20)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def event_body(event: EventRecord) -> str:
    """The JSON body for an event; its `data` mirrors the API's Event message."""
    data = {
        "message_id": event.message_id,
        "type": f"EVENT_TYPE_{event.type.name}",
        "occurred_at": _iso(event.occurred_at),
        "smtp_code": event.smtp_code or 0,
        "smtp_message": event.smtp_message,
        "detail": event.detail,
        "recipient": event.recipient,
        "cursor": encode_cursor(Position(event.txid, event.id)),
    }
    return json.dumps({"type": payload_type(event.type), "timestamp": _iso(event.occurred_at), "data": data})


def test_body(endpoint_id: str, now: datetime) -> str:
    data = {"endpoint_id": endpoint_id, "detail": "a test event sent with TestWebhookEndpoint"}
    return json.dumps({"type": TEST_TYPE, "timestamp": _iso(now), "data": data})


def wants(filter_: Collection[EventType], event_type: EventType) -> bool:
    """An empty filter takes every type."""
    return not filter_ or event_type in filter_


def parse_filter(stored: str) -> frozenset[EventType]:
    return frozenset(EventType(t) for t in stored.split(",") if t)


def format_filter(types: Collection[EventType]) -> str:
    return ",".join(sorted(t.value for t in types))
