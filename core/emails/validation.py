"""Validate a send request into an EmailContent, reporting every problem at once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.emails.addresses import has_control_chars, parse_address, parse_addresses
from core.emails.attachments import AttachmentInput, base64_size, check_attachments
from core.emails.content import Address, EmailContent
from core.errors import FieldViolation, InvalidArgument


@dataclass(frozen=True)
class SendLimits:
    """Per-message limits. Lengths are in characters, max_total_bytes in UTF-8 bytes
    over subject, bodies, header names and values, metadata keys and values, plus
    the base64-encoded size of each attachment (what goes on the wire)."""

    max_recipients: int = 50
    max_total_bytes: int = 25 * 1024 * 1024
    max_headers: int = 50
    max_header_value_length: int = 998
    max_subject_length: int = 998
    max_tags: int = 20
    max_tag_length: int = 128
    max_metadata: int = 50
    max_metadata_key_length: int = 128
    max_metadata_value_length: int = 1024
    max_attachments: int = 20


# Headers Postwire writes itself (or that would leak, spoof or break the message).
# Resent-* and Orig-Date are structured headers in the stdlib parser and a Resent-Bcc
# would leak recipients, so they are refused too.
_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Message-ID", "Date",
        "MIME-Version", "DKIM-Signature", "Received", "Return-Path", "Sender", "Orig-Date",
    )
)
_RESERVED_PREFIXES = ("content-", "resent-")
# Written by the worker for `unsubscribe` (RFC 8058); a caller's own stay only without it.
UNSUBSCRIBE_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})

# RFC 5322 section 3.6.8: ftext is printable US-ASCII except ":" (33-57, 59-126).
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")

def key_path(field: str, key: str) -> str:
    """`headers["X-Foo"]`: a field path for a map entry, with the key JSON-escaped."""
    return f"{field}[{json.dumps(key, ensure_ascii=False)}]"


def validate_send(
    *,
    from_address: str,
    to: Iterable[str],
    cc: Iterable[str],
    bcc: Iterable[str],
    reply_to: str,
    subject: str,
    text_body: str,
    html_body: str,
    headers: Mapping[str, str],
    tags: Iterable[str],
    metadata: Mapping[str, str],
    attachments: Sequence[AttachmentInput] = (),
    limits: SendLimits = SendLimits(),
    unsubscribe: bool | None = None,
    track_opens: bool | None = None,
    track_clicks: bool | None = None,
) -> EmailContent:
    """Check a send request and return its EmailContent, or raise one InvalidArgument
    listing every violation. Duplicate recipients are accepted (the envelope dedupes).
    Attachments with a content_id are inline parts and need an html_body.
    `unsubscribe` True needs exactly one recipient (its link names that recipient);
    None leaves it to the account's default (so do track_opens/track_clicks None)."""
    violations: list[FieldViolation] = []

    sender = _one("from_address", from_address, violations, required=True)
    reply = _one("reply_to", reply_to, violations, required=False)
    raw = {"to": list(to), "cc": list(cc), "bcc": list(bcc)}
    count = sum(len(v) for v in raw.values())  # entries given, valid or not
    # Parsing costs ~40 µs an address: over the limit, only the count is reported, so a
    # request with millions of entries cannot hold the server for minutes.
    parse = count <= limits.max_recipients
    lists = {name: _many(name, values, violations) if parse else () for name, values in raw.items()}
    if count == 0:
        violations.append(FieldViolation("to", "at least one recipient is required in to, cc or bcc"))
    elif count > limits.max_recipients:
        violations.append(FieldViolation(
            "to", f"{count} recipients across to, cc and bcc; the limit is {limits.max_recipients}"
        ))
    if unsubscribe:
        for name in headers:
            if name.lower() in UNSUBSCRIBE_HEADERS:
                violations.append(FieldViolation(key_path("headers", name), (
                    f"{name} is set by Postwire when unsubscribe is true: leave out one or the other"
                )))
    if unsubscribe and count > 1:
        violations.append(FieldViolation("unsubscribe", (
            f"an unsubscribe link names one recipient and this email has {count} across to, cc and bcc:"
            " send one email per recipient"
        )))

    _check_subject(subject, limits, violations)
    if not text_body and not html_body:
        violations.append(FieldViolation("text_body", "give a text_body, an html_body or both"))
    for name, body in (("text_body", text_body), ("html_body", html_body)):
        if "\x00" in body:
            violations.append(FieldViolation(name, "must not contain NUL characters"))
    _check_headers(headers, limits, violations)
    tag_list = list(tags)
    check_tags(tag_list, limits, violations)
    check_metadata(metadata, limits, violations)
    files = check_attachments(attachments, bool(html_body), limits.max_attachments, violations)

    total = sum(len(s.encode("utf-8", "surrogatepass")) for s in (
        subject, text_body, html_body, *headers.keys(), *headers.values(),
        *metadata.keys(), *metadata.values(),
    ))
    attached = sum(base64_size(len(a.content)) for a in files)
    if total + attached > limits.max_total_bytes:
        biggest = "html_body" if len(html_body) > len(text_body) else "text_body"
        body = html_body if biggest == "html_body" else text_body
        if attached > len(body.encode("utf-8", "surrogatepass")):
            biggest = "attachments"  # they outweigh either body: blame them
        parts = "subject, bodies, headers, metadata and base64-encoded attachments" if files else (
            "subject, bodies, headers and metadata"
        )
        violations.append(FieldViolation(biggest, (
            f"message is {total + attached} bytes ({parts}); the limit is {limits.max_total_bytes}"
        )))

    if violations or sender is None:
        raise InvalidArgument(violations)
    return EmailContent(
        from_address=sender,
        to=lists["to"],
        cc=lists["cc"],
        bcc=lists["bcc"],
        reply_to=reply,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        headers=dict(headers),
        tags=tuple(tag_list),
        metadata=dict(metadata),
        attachments=files,
        unsubscribe=unsubscribe,
        track_opens=track_opens,
        track_clicks=track_clicks,
    )


def _one(field: str, value: str, out: list[FieldViolation], *, required: bool) -> Address | None:
    if not value or not value.strip():
        if required:
            out.append(FieldViolation(field, "is required"))
        return None
    try:
        return parse_address(value, field)
    except InvalidArgument as exc:
        out.extend(exc.violations)
        return None


def _many(field: str, values: Iterable[str], out: list[FieldViolation]) -> tuple[Address, ...]:
    try:
        return parse_addresses(values, field)
    except InvalidArgument as exc:
        out.extend(exc.violations)
        return ()


def _check_subject(subject: str, limits: SendLimits, out: list[FieldViolation]) -> None:
    if has_control_chars(subject, allow_tab=True):
        out.append(FieldViolation("subject", "must not contain control characters such as CR, LF or NUL"))
    if len(subject) > limits.max_subject_length:
        out.append(FieldViolation(
            "subject", f"is {len(subject)} characters; the limit is {limits.max_subject_length}"
        ))


def _check_headers(headers: Mapping[str, str], limits: SendLimits, out: list[FieldViolation]) -> None:
    if len(headers) > limits.max_headers:
        out.append(FieldViolation("headers", f"{len(headers)} headers; the limit is {limits.max_headers}"))
        return  # over the limit, entries are not checked one by one (see validate_send)
    seen: set[str] = set()
    for name, value in headers.items():
        path = key_path("headers", name)
        lowered = name.lower()
        if not _FIELD_NAME.fullmatch(name):
            out.append(FieldViolation(path, (
                "header name must be printable ASCII without spaces or ':' (RFC 5322)"
            )))
        elif lowered in _RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIXES):
            out.append(FieldViolation(path, f"{name} is set by Postwire and cannot be supplied"))
        elif lowered in seen:
            out.append(FieldViolation(path, "header given twice (names are case-insensitive)"))
        seen.add(lowered)
        if has_control_chars(value, allow_tab=True):
            out.append(FieldViolation(
                path, "value must not contain control characters such as CR, LF or NUL"
            ))
        if len(value) > limits.max_header_value_length:
            out.append(FieldViolation(path, (
                f"value is {len(value)} characters; the limit is {limits.max_header_value_length}"
            )))


def check_tags(tags: list[str], limits: SendLimits, out: list[FieldViolation]) -> None:
    if len(tags) > limits.max_tags:
        out.append(FieldViolation("tags", f"{len(tags)} tags; the limit is {limits.max_tags}"))
        return
    for index, tag in enumerate(tags):
        path = f"tags[{index}]"
        if not tag.strip():
            out.append(FieldViolation(path, "must not be empty"))
        elif has_control_chars(tag):
            out.append(FieldViolation(path, "must not contain control characters"))
        if len(tag) > limits.max_tag_length:
            out.append(FieldViolation(
                path, f"is {len(tag)} characters; the limit is {limits.max_tag_length}"
            ))


def check_metadata(metadata: Mapping[str, str], limits: SendLimits, out: list[FieldViolation]) -> None:
    if len(metadata) > limits.max_metadata:
        out.append(FieldViolation("metadata", f"{len(metadata)} entries; the limit is {limits.max_metadata}"))
        return
    for key, value in metadata.items():
        path = key_path("metadata", key)
        if not key.strip():
            out.append(FieldViolation(path, "key must not be empty"))
        elif has_control_chars(key):
            out.append(FieldViolation(path, "key must not contain control characters"))
        if len(key) > limits.max_metadata_key_length:
            out.append(FieldViolation(path, (
                f"key is {len(key)} characters; the limit is {limits.max_metadata_key_length}"
            )))
        if len(value) > limits.max_metadata_value_length:
            out.append(FieldViolation(path, (
                f"value is {len(value)} characters; the limit is {limits.max_metadata_value_length}"
            )))
