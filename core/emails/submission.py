"""Turn a message submitted over SMTP into what EmailService.send accepts.

`parse_submission` checks the DATA bytes and the envelope the way validate_send checks
a Send request, and reports every problem at once as one InvalidArgument. Violation
fields tell the listener which SMTP reply fits: "size" (552 5.3.4), "from" and
"rcpt[i]" / "rcpt" (553 5.1.3), "header:<Name>", "header" and "body" (550 5.6.0).

- The message must fit in limits.max_total_bytes (checked first, nothing else is).
- Lines end in CRLF. A message without any CR is taken as LF-terminated and converted;
  otherwise a bare CR or LF inside a header is header injection and refused, as are
  NUL anywhere, control characters in headers, header lines over 998 octets (RFC 5322),
  lines that are not `Name: value`, and RFC 5322's one-only fields given twice.
  Non-ASCII header bytes need SMTPUTF8 (`smtputf8`; None infers it from a non-ASCII
  envelope address) and must be UTF-8; otherwise use RFC 2047 encoded words.
- The From header must hold one mailbox, validated like Send's from_address; the
  envelope recipients are validated like Send's recipients and are the recipients
  (in `bcc`, sorted, so nothing is rendered from them: To and Cc stay as written in the raw).
- `X-Postwire-Tags: a, b` and `X-Postwire-Metadata: k=v; k2=v2` (or a JSON object)
  become tags and metadata under Send's limits, and are removed from the message.
- A message with its own List-Unsubscribe keeps it: the account default does not apply.
- The idempotency key makes a resubmission after a lost 250 a replay of the first
  email: "smtp-msgid:<Message-ID> rcpt:<digest of the envelope recipients>" (the same
  message split over several transactions by recipient is several emails), or without
  a Message-ID "smtp-sha256:<digest of MAIL FROM, the sorted RCPT TOs and the bytes>".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

from core.emails.addresses import has_control_chars
from core.emails.content import EmailContent
from core.emails.raw_mime import (
    CRLF,
    HeaderField,
    decoded_value,
    field_value,
    header_fields,
    split_message,
)
from core.emails.service import MAX_IDEMPOTENCY_KEY, SendOptions
from core.emails.submission_addresses import envelope_recipients, header_sender
from core.emails.validation import (
    _FIELD_NAME,
    UNSUBSCRIBE_HEADERS,
    SendLimits,
    check_metadata,
    check_tags,
)
from core.errors import FieldViolation, InvalidArgument

TAGS_HEADER = "X-Postwire-Tags"
METADATA_HEADER = "X-Postwire-Metadata"
MAX_LINE = 998  # octets, without the CRLF (RFC 5322 section 2.1.1)
# RFC 5322 section 3.6: fields a message may carry at most once.
_ONCE = ("Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To",
         "References", "Subject")
_POSTWIRE = frozenset({TAGS_HEADER.lower(), METADATA_HEADER.lower()})
_ASCII_CONTROL = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 and DEL, less tab, CR, LF, NUL



def parse_submission(
    raw: bytes, mail_from: str, rcpt_tos: list[str], limits: SendLimits, *, smtputf8: bool | None = None
) -> tuple[EmailContent, SendOptions]:
    """The EmailContent (raw set) and SendOptions (idempotency key) for one submitted
    message, or InvalidArgument listing every problem. `mail_from` is the envelope
    sender (may be empty), `rcpt_tos` the envelope recipients."""
    if len(raw) > limits.max_total_bytes:
        raise InvalidArgument([FieldViolation(
            "size", f"message is {len(raw)} bytes; the limit is {limits.max_total_bytes}"
        )])
    original = raw
    if b"\r" not in raw:
        raw = raw.replace(b"\n", CRLF)
    if smtputf8 is None:
        smtputf8 = not (mail_from.isascii() and all(r.isascii() for r in rcpt_tos))
    out: list[FieldViolation] = []
    head, body = split_message(raw)
    fields = header_fields(head)
    _check_fields(fields, smtputf8, out)
    if body is not None and b"\x00" in body:
        out.append(FieldViolation("body", "must not contain NUL characters"))
    recipients = envelope_recipients(rcpt_tos, limits, out)

    values: dict[str, list[str]] = {}  # lower-case name -> unfolded values, in order
    for field in fields:
        values.setdefault(field.name.strip().lower(), []).append(field_value(field))
    sender = header_sender(values.get("from", []), out)
    subject = " ".join(_text(values, "Subject")).strip()
    if len(subject) > limits.max_subject_length:
        out.append(FieldViolation("header:Subject", (
            f"is {len(subject)} characters decoded; the limit is {limits.max_subject_length}"
        )))
    if has_control_chars(subject, allow_tab=True):
        out.append(FieldViolation("header:Subject", "decodes to control characters such as CR, LF or NUL"))
    tags = _tags(_text(values, TAGS_HEADER), limits, out)
    metadata = _metadata(_text(values, METADATA_HEADER), limits, out)
    if out or sender is None:
        raise InvalidArgument(out)

    kept = b"".join(f.data for f in fields if f.name.strip().lower() not in _POSTWIRE)
    own_unsubscribe = any(f.name.strip().lower() in UNSUBSCRIBE_HEADERS for f in fields)
    content = EmailContent(
        from_address=sender,
        bcc=recipients,
        subject=subject,
        tags=tuple(tags),
        metadata=metadata,
        raw=kept if body is None else kept + CRLF + body,
        unsubscribe=False if own_unsubscribe else None,  # None: the account's default decides
    )
    key = _idempotency_key("".join(v.strip() for v in values.get("message-id", [])), mail_from, rcpt_tos, original)
    return content, SendOptions(idempotency_key=key)


def _check_fields(fields: list[HeaderField], smtputf8: bool, out: list[FieldViolation]) -> None:
    counts: dict[str, int] = {}
    for index, field in enumerate(fields):
        name = field.name.strip()
        if not name or not _FIELD_NAME.fullmatch(name):
            out.append(FieldViolation("header", (
                f"header field {index + 1} is not a `Name: value` field (RFC 5322)"
                if index or field.name else "the message must start with a header field"
            )))
            continue
        path = f"header:{name}"
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
        for line in field.lines:
            _check_line(line, path, smtputf8, out)
    for name in _ONCE:
        if counts.get(name.lower(), 0) > 1:
            out.append(FieldViolation(f"header:{name}", (
                f"given {counts[name.lower()]} times; RFC 5322 allows one"
            )))


def _check_line(line: bytes, path: str, smtputf8: bool, out: list[FieldViolation]) -> None:
    if b"\r" in line or b"\n" in line:
        out.append(FieldViolation(path, "holds a bare CR or LF: header lines end with CRLF (header injection)"))
    if b"\x00" in line:
        out.append(FieldViolation(path, "must not contain NUL characters"))
    if len(line) > MAX_LINE:
        out.append(FieldViolation(path, f"has a line of {len(line)} octets; the limit is {MAX_LINE} (RFC 5322)"))
    if not line.isascii():
        if not smtputf8:
            out.append(FieldViolation(path, (
                "holds non-ASCII bytes: send with SMTPUTF8, or use RFC 2047 encoded words"
            )))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            out.append(FieldViolation(path, "holds bytes that are not UTF-8"))
            return
        if b"\x00" not in line and has_control_chars(text.replace("\r", "").replace("\n", ""), allow_tab=True):
            out.append(FieldViolation(path, "must not contain control characters"))
    elif _ASCII_CONTROL.search(line) and b"\x00" not in line:  # has_control_chars, for ASCII bytes
        out.append(FieldViolation(path, "must not contain control characters"))


def _text(values: dict[str, list[str]], name: str) -> list[str]:
    """The values of the fields called `name`, unfolded, RFC 2047 encoded words decoded."""
    found = values.get(name.lower(), [])
    try:
        return [decoded_value(name, value) for value in found]
    except Exception:  # the stdlib's parser on a malformed value: take it as written
        return [value.strip() for value in found]


def _tags(values: list[str], limits: SendLimits, out: list[FieldViolation]) -> list[str]:
    tags = [t.strip() for value in values for t in value.split(",") if t.strip()]
    _as_header(TAGS_HEADER, lambda found: check_tags(tags, limits, found), out)
    return tags


def _metadata(values: list[str], limits: SendLimits, out: list[FieldViolation]) -> dict[str, str]:
    path = f"header:{METADATA_HEADER}"
    metadata: dict[str, str] = {}
    for value in values:
        for key, item in _metadata_entries(value.strip(), path, out):
            if key in metadata:
                out.append(FieldViolation(path, f"key {key!r} given twice"))
            metadata[key] = item
    _as_header(METADATA_HEADER, lambda found: check_metadata(metadata, limits, found), out)
    return metadata


def _metadata_entries(value: str, path: str, out: list[FieldViolation]) -> list[tuple[str, str]]:
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError as exc:
            out.append(FieldViolation(path, f"is not a valid JSON object: {exc}"))
            return []
        if not isinstance(data, dict):
            out.append(FieldViolation(path, "must be a JSON object"))
            return []
        entries: list[tuple[str, str]] = []
        for key, item in data.items():
            if isinstance(item, str):
                entries.append((key, item))
            elif isinstance(item, int | float | bool):
                entries.append((key, json.dumps(item)))
            else:
                out.append(FieldViolation(path, f"value of {key!r} must be a string or a number"))
        return entries
    entries = []
    for piece in value.split(";"):
        if not piece.strip():
            continue
        key, equals, item = piece.partition("=")
        if not equals:
            out.append(FieldViolation(path, f"entry {piece.strip()!r} is not key=value"))
            continue
        entries.append((key.strip(), item.strip()))
    return entries


def _as_header(header: str, check: Callable[[list[FieldViolation]], None], out: list[FieldViolation]) -> None:
    """Run a Send check and report its violations on the header they came from."""
    found: list[FieldViolation] = []
    check(found)
    out.extend(FieldViolation(f"header:{header}", f"{v.field} {v.description}") for v in found)


def _idempotency_key(message_id: str, mail_from: str, rcpt_tos: list[str], raw: bytes) -> str:
    rcpts = sorted(rcpt_tos)
    message_id = message_id.strip().removeprefix("<").removesuffix(">").strip()
    if message_id and not any(c.isspace() for c in message_id):
        envelope = hashlib.sha256("\0".join(r.casefold() for r in rcpts).encode("utf-8", "surrogatepass"))
        key = f"smtp-msgid:{message_id} rcpt:{envelope.hexdigest()[:16]}"
        if len(key) <= MAX_IDEMPOTENCY_KEY:
            return key
        return f"smtp-msgid:sha256:{hashlib.sha256(message_id.encode('utf-8', 'surrogatepass')).hexdigest()}" \
            f" rcpt:{envelope.hexdigest()[:16]}"
    digest = hashlib.sha256()
    for part in (mail_from, *rcpts):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(raw)
    return f"smtp-sha256:{digest.hexdigest()}"
