"""Send a message submitted over SMTP as it was submitted (see core.emails.submission).

`render_raw` is the raw counterpart of core.emails.mime.render: it removes Bcc (and
Resent-Bcc) fields, adds Date and Message-ID only when the message has none, and adds
the extra headers Postwire writes (List-Unsubscribe when asked) unless the message
already carries a field of that name. Every other header field, their order, folding
and case, and the body are kept byte for byte, so DKIM signs what the client wrote.

The split into header fields is shared with the submission parser: `split_message`
and `header_fields` work on CRLF-terminated lines and never decode anything;
`field_value` and `decoded_value` read one field's value without building a parsed
message (the stdlib's Parser on every submitted message was a quarter of the listener).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.utils import format_datetime

from core.emails.mime import fold_at_spaces

CRLF = b"\r\n"
# Envelope-only: the recipients they name must not learn of each other.
DROPPED = frozenset({"bcc", "resent-bcc"})


@dataclass(frozen=True)
class HeaderField:
    """One header field: its name as written (empty when the first line has no
    colon) and its lines, each without its CRLF (continuation lines included)."""

    name: str
    lines: tuple[bytes, ...]

    @property
    def data(self) -> bytes:
        """The field as it goes on the wire, CRLF-terminated."""
        return b"".join(line + CRLF for line in self.lines)


def field_value(field: HeaderField) -> str:
    """The field's value unfolded, as the stdlib's parsers read it (policy.default's
    header_source_parse): white space after the colon dropped, continuation lines
    joined without their CRLF. Bytes are read as UTF-8 (U+FFFD for invalid ones); a bare
    CR or LF becomes a space (the submission parser refuses them anyway)."""
    lines = [line.replace(b"\r", b" ").replace(b"\n", b" ").decode("utf-8", "replace") for line in field.lines]
    first = lines[0].split(":", 1)[1] if ":" in lines[0] else ""
    return first.lstrip(" \t") + "".join(lines[1:])


def decoded_value(name: str, value: str) -> str:
    """`value` (from field_value) with RFC 2047 encoded words decoded, the way
    policy.default reads an unstructured header; without any `=?` that is the value."""
    if "=?" not in value:
        return value
    return str(email_policy.default.header_factory(name, value))


def split_message(raw: bytes) -> tuple[bytes, bytes | None]:
    """(header section, body): the header section without the blank line that ends it,
    the body after it. None for the body when there is no blank line (all headers)."""
    if raw.startswith(CRLF):
        return b"", raw[2:]
    end = raw.find(CRLF + CRLF)
    if end < 0:
        return raw, None
    return raw[: end + 2], raw[end + 4 :]


def header_fields(head: bytes) -> list[HeaderField]:
    """The header section's fields, in order. Lines are split at CRLF only, so a bare
    CR or LF stays inside its line (the submission parser refuses those). A first line
    that starts with white space is a field of its own with an empty name."""
    lines = head.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()  # the CRLF that ends the last field
    fields: list[tuple[str, list[bytes]]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
            continue
        name, colon, _ = line.partition(b":")
        text = name.decode("ascii", "replace") if colon and name[:1] not in (b" ", b"\t") else ""
        fields.append((text, [line]))
    return [HeaderField(name, tuple(lines)) for name, lines in fields]


def render_raw(
    raw: bytes, *, message_id: str, date: datetime, extra_headers: Mapping[str, str] | None = None
) -> bytes:
    """`raw` (CRLF line endings) ready for the wire, before DKIM signing.

    `message_id` is the bare id such as `msg_abc@example.com`, used only when the
    message has no Message-ID; `date` (timezone-aware) only when it has no Date. Added
    fields go after the submitted ones, in the order Date, Message-ID, extra headers.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    if not message_id or any(c in message_id for c in "<> \t\r\n") or "@" not in message_id:
        raise ValueError("message_id must be a bare id like 'msg_abc@example.com'")
    head, body = split_message(raw)
    kept = [f for f in header_fields(head) if f.name.strip().lower() not in DROPPED]
    present = {f.name.strip().lower() for f in kept}
    added: list[tuple[str, str]] = []
    if "date" not in present:
        added.append(("Date", format_datetime(date)))
    if "message-id" not in present:
        added.append(("Message-ID", f"<{message_id}>"))
    for name, value in (extra_headers or {}).items():
        if name.lower() not in present:  # the message's own field stays
            added.append((name, fold_at_spaces(name, value) or value))
    out = b"".join(f.data for f in kept)
    out += b"".join(f"{name}: {value}".encode() + CRLF for name, value in added)
    return out + CRLF + (body or b"")
