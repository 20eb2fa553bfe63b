"""Decoding requests safely: bytes that are not a valid message, and strings no field of
the API can hold, become INVALID_ARGUMENT instead of grpcio's UNKNOWN (or a database
error deep inside a use case).

grpcio parses the request before any interceptor or servicer runs, and a parse error
(truncated varint, a length past the end, a proto3 string that is not UTF-8) answers
UNKNOWN with the exception's text. `safe_deserializer` wraps a handler's deserializer
so it returns an `Undecodable` instead of raising; the error interceptor refuses it.

NUL (U+0000) is refused in every string field of every request: PostgreSQL text
cannot store it, and no field (ids, names, cursors, URLs, addresses, metadata) has a
legitimate use for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from core.emails.validation import key_path
from core.errors import FieldViolation, InvalidArgument

Deserializer = Callable[[bytes], Any]
# Requests whose items succeed or fail one by one: the servicer checks each item for NUL,
# so that one bad item does not refuse the others.
CHECKED_PER_ITEM = frozenset({"postwire.v1.SendBatchRequest", "postwire.v1.SendStreamRequest"})


@dataclass(frozen=True)
class Undecodable:
    """A request that could not be accepted as its message type; `error` says why."""

    error: InvalidArgument


def safe_deserializer(deserialize: Deserializer | None) -> Deserializer | None:
    if deserialize is None:
        return None
    owner = getattr(deserialize, "__self__", None)
    name = owner.DESCRIPTOR.full_name if owner is not None and hasattr(owner, "DESCRIPTOR") else "request"

    def decode(raw: bytes) -> Any:
        try:
            message = deserialize(raw)
        except Exception:  # DecodeError, and anything else a parser may raise on garbage
            return Undecodable(InvalidArgument(
                [FieldViolation("", f"not a valid serialized {name}")],
                f"the request is not a valid serialized {name} (malformed protobuf, or a string that is not UTF-8)",
            ))
        if isinstance(message, Message) and name not in CHECKED_PER_ITEM:
            violations = [FieldViolation(path, "must not contain NUL characters") for path in nul_fields(message)]
            if violations:
                return Undecodable(InvalidArgument(violations))
        return message

    return decode


def nul_fields(message: Message, prefix: str = "") -> Iterator[str]:
    """Paths of the string fields (in nested messages, lists and maps too) holding NUL."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            nested = field.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_MESSAGE
            for key, item in value.items():
                entry = key_path(path, str(key))
                if isinstance(key, str) and "\x00" in key or isinstance(item, str) and "\x00" in item:
                    yield entry
                elif nested:
                    yield from nul_fields(item, f"{entry}.")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            items = enumerate(value) if field.is_repeated else [(None, value)]
            for index, item in items:
                yield from nul_fields(item, f"{path}." if index is None else f"{path}[{index}].")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                yield from (f"{path}[{i}]" for i, item in enumerate(value) if "\x00" in item)
            elif "\x00" in value:
                yield path
