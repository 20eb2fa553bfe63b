"""Reading what receivers send back, without storage: a pure function of the bytes.

- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status):
  one Feedback per recipient block, from its Action, Status, Diagnostic-Code and
  Original-Recipient (else Final-Recipient). failed / 5.x.x -> bounce, delayed / 4.x.x ->
  delay; delivered, relayed and expanded blocks change nothing.
- RFC 5965 feedback reports (report-type=feedback-report): a complaint for the
  Original-Rcpt-To, else the embedded original's To (not-spam reports change nothing).
- Anything else is handed to flufl.bounce's detectors for the non-standard bounces
  (qmail, older Exim, Exchange, ...), one at a time, each guarded: a detector that
  raises on odd input is skipped.

`parse` never raises, whatever the bytes. It also collects the `b+<token>` return
addresses it finds in the embedded original (Return-Path, Original-Mail-From, any
header), which is how feedback-loop mail to fbl@/abuse@ finds its email.
"""

from __future__ import annotations

import email
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from core.returns.outcomes import BOUNCE, COMPLAINT_KIND, DELAY, Feedback

log = logging.getLogger(__name__)

DSN, ARF, HEURISTIC = "dsn", "arf", "heuristic"
_EMBEDDED = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
_RETURN_ADDRESS = re.compile(rb"\bb\+([a-z0-9]{16,100})@([a-z0-9][a-z0-9.-]{0,252})", re.IGNORECASE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CODE = re.compile(r"\b([245]\d\d)\b")
_IGNORED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_MAX_DIAGNOSTIC = 1000


@dataclass(frozen=True)
class Parsed:
    source: str  # DSN, ARF, HEURISTIC, or "" when nothing in it reads as a report
    feedback: tuple[Feedback, ...] = ()
    skipped: tuple[str, ...] = ()  # what the report says that changes nothing ("delivered: a@b")
    return_addresses: tuple[str, ...] = field(default=())  # b+ addresses of the embedded original
    problem: str = ""  # why it could not be read, when it could not


def parse(raw: bytes) -> Parsed:
    """What the report says; never raises."""
    try:
        message = email.message_from_bytes(raw)
        found = _return_addresses(message, raw)
        result = _read(message)
        return Parsed(result.source, result.feedback, result.skipped, found, result.problem)
    except Exception as exc:  # noqa: BLE001 - whatever the bytes are, the worker goes on
        log.debug("report parsing failed", exc_info=True)
        return Parsed("", problem=f"cannot be read: {type(exc).__name__}")


def _read(message: Message) -> Parsed:
    if message.get_content_type() == "multipart/report":
        kind = str(message.get_param("report-type", "") or "").lower()
        if kind == "delivery-status":
            dsn = _dsn(message)
            if dsn.feedback or dsn.skipped:
                return dsn
        elif kind == "feedback-report":
            arf = _arf(message)
            if arf is not None:
                return arf
    heuristic = _heuristic(message)
    if heuristic.feedback:
        return heuristic
    return Parsed("", problem="neither a delivery status notification, a feedback report nor a known bounce")


# RFC 3464 ----------------------------------------------------------------------------------


def _dsn(message: Message) -> Parsed:
    feedback: list[Feedback] = []
    skipped: list[str] = []
    for block in _status_blocks(message):
        recipient = _address_field(block.get("Original-Recipient")) or _address_field(block.get("Final-Recipient"))
        action = str(block.get("Action", "")).strip().lower()
        if not recipient or not action:
            continue
        status_match = _STATUS.search(str(block.get("Status", "")))
        status = status_match.group(0) if status_match else ""
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        diagnostic = diagnostic.partition(";")[2].strip() if ";" in diagnostic[:12] else diagnostic
        code_match = _CODE.match(diagnostic)
        code = int(code_match.group(1)) if code_match else None
        detailed = _STATUS.search(diagnostic)
        if detailed and (not status or status.endswith(".0.0")) and detailed.group(1) == (status or detailed.group(1))[0]:
            status = detailed.group(0)  # "Status: 5.0.0" with "550 5.1.1 ..." in the diagnostic
        if action in _IGNORED_ACTIONS:
            skipped.append(f"{action}: {recipient}")
        elif action == "failed" or (status.startswith("5") and action != "delayed"):
            feedback.append(Feedback(BOUNCE, recipient, status or "5.0.0", code, diagnostic[:_MAX_DIAGNOSTIC], DSN))
        elif action == "delayed" or status.startswith("4"):
            feedback.append(Feedback(DELAY, recipient, status or "4.0.0", code, diagnostic[:_MAX_DIAGNOSTIC], DSN))
        else:
            skipped.append(f"{action}: {recipient}")
    return Parsed(DSN, tuple(feedback), tuple(skipped))


def _status_blocks(message: Message) -> list[Message]:
    """The per-recipient field blocks of the message/delivery-status part."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            return [p for p in payload if isinstance(p, Message)]
        text = payload if isinstance(payload, str) else ""
        return [HeaderParser().parsestr(chunk + "\n") for chunk in re.split(r"\r?\n\s*\r?\n", text) if chunk.strip()]
    return []


def _address_field(value: object) -> str:
    """`rfc822; ada@example.com` -> `ada@example.com`."""
    text = str(value or "").strip()
    kind, semicolon, address = text.partition(";")
    if not semicolon:
        address = kind
    elif kind.strip().lower() not in ("rfc822", ""):
        return ""
    address = address.strip().strip("<>").strip()
    return address if "@" in address and " " not in address else ""


# RFC 5965 ----------------------------------------------------------------------------------


def _arf(message: Message) -> Parsed | None:
    fields: Message | None = None
    original: Message | None = None
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report" and fields is None:
            fields = _as_fields(part)
        elif ctype in _EMBEDDED and original is None:
            original = _embedded(part)
    if fields is None or not fields.get("Feedback-Type"):
        return None
    kind = str(fields.get("Feedback-Type", "")).strip().lower()
    recipients = [_address_field(v) for v in fields.get_all("Original-Rcpt-To") or []]
    recipients = [r for r in recipients if r]
    if not recipients and original is not None:
        recipients = [a for _, a in getaddresses([str(v) for v in original.get_all("To") or []]) if "@" in a]
    if kind == "not-spam":
        return Parsed(ARF, skipped=tuple(f"not-spam: {r}" for r in recipients) or ("not-spam",))
    detail = f"feedback type {kind}" + (f", user agent {fields.get('User-Agent')}" if fields.get("User-Agent") else "")
    targets = recipients or [""]  # empty: the email's only recipient (Outcomes.apply)
    return Parsed(ARF, tuple(Feedback(COMPLAINT_KIND, r, "", None, detail[:_MAX_DIAGNOSTIC], ARF) for r in targets))


def _as_fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as a message: its headers are the fields
        first = payload[0] if payload else None
        return first if isinstance(first, Message) else Message()
    return HeaderParser().parsestr(payload if isinstance(payload, str) else "")


def _embedded(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return HeaderParser().parsestr(payload)
    return None


# Non-standard bounces ----------------------------------------------------------------------


def _detectors() -> list[type]:
    try:
        from flufl.bounce._scan import _DETECTORS
    except ImportError:  # the detectors moved: no heuristics rather than no worker
        log.warning("flufl.bounce detectors unavailable")
        return []
    return [d for d in _DETECTORS if d.__name__ != "DSN"]  # RFC 3464 is read above


def _heuristic(message: Message) -> Parsed:
    for detector in _detectors():
        try:
            temporary, permanent = detector().process(message)
        except Exception:  # noqa: BLE001 - some detectors raise on odd input: try the next
            log.debug("bounce detector %s failed", detector.__name__, exc_info=True)
            continue
        feedback = [Feedback(BOUNCE, a, "5.0.0", None, f"{detector.__name__} bounce", HEURISTIC)
                    for a in _decoded(permanent)]
        feedback += [Feedback(DELAY, a, "4.0.0", None, f"{detector.__name__} warning", HEURISTIC)
                     for a in _decoded(temporary) if a not in {f.recipient for f in feedback}]
        if feedback:
            return Parsed(HEURISTIC, tuple(feedback))
    return Parsed(HEURISTIC)


def _decoded(addresses: object) -> list[str]:
    out = []
    for item in sorted(addresses or (), key=repr):  # type: ignore[call-overload]
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else str(item)
        text = text.strip().strip("<>")
        if "@" in text and " " not in text and len(text) <= 320:
            out.append(text)
    return out


# The return path of the embedded original -----------------------------------------------


def _return_addresses(message: Message, raw: bytes) -> tuple[str, ...]:
    """b+ addresses, those of the embedded original's headers first, then any in the body."""
    found: list[str] = []
    for part in message.walk():
        if part.get_content_type() in _EMBEDDED or part.get_content_type() == "message/feedback-report":
            inner = _embedded(part) if part.get_content_type() in _EMBEDDED else _as_fields(part)
            if inner is not None:
                for name in ("Return-Path", "Original-Mail-From", *inner.keys()):
                    found += _matches(str(inner.get(name, "")).encode("ascii", "replace"))
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0]
    body = raw[min(ends):] if ends else b""
    found += _matches(body[:1_000_000])
    return tuple(dict.fromkeys(found))


def _matches(text: bytes) -> list[str]:
    return [f"b+{m.group(1).decode().lower()}@{m.group(2).decode().lower().rstrip('.')}"
            for m in _RETURN_ADDRESS.finditer(text)]
