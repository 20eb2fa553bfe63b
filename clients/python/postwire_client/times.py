"""Times the SDK accepts: an aware datetime or a protobuf Timestamp."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime | Timestamp | None, what: str) -> Timestamp | None:
    """`value` as a Timestamp (None stays None); a naive datetime is refused, naming `what`."""
    if value is None or isinstance(value, Timestamp):
        return value
    if value.tzinfo is None:
        raise ValueError(f"{what} need a timezone-aware datetime")
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
