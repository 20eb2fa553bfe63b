"""Classify an SMTP attempt's outcome: transient (retry), permanent (bounce) or failed
(this relay cannot carry the message). Pure functions, no I/O."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib

from core.domains.resolver import DnsError
from workers.delivery.smtp import SmtpUtf8Unsupported


class Kind(StrEnum):
    TRANSIENT = "transient"
    """Try again later: 4xx, network faults, timeouts."""
    PERMANENT = "permanent"
    """The recipient or message was refused for good (5xx): bounce."""
    FAILED = "failed"
    """Cannot be delivered through this relay; not the recipient's fault."""


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    code: int | None
    message: str


def classify_reply(code: int, message: str) -> Verdict:
    """One SMTP reply (e.g. a recipient's RCPT reply): 5xx permanent, else transient."""
    return Verdict(Kind.PERMANENT if 500 <= code < 600 else Kind.TRANSIENT, code, message)


def classify(exc: BaseException) -> Verdict:
    """4xx, network faults and timeouts are transient; 5xx is permanent. A DNS error
    (MX delivery) is permanent with its own code (556 null MX, 554 no such domain or no
    mail host: never a suppressing code) or transient (SERVFAIL, timeout)."""
    if isinstance(exc, DnsError):
        if exc.permanent:
            return Verdict(Kind.PERMANENT, exc.code, exc.message)
        return Verdict(Kind.TRANSIENT, None, exc.message)
    if isinstance(exc, SmtpUtf8Unsupported):
        return Verdict(Kind.FAILED, None, str(exc))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Our credentials, not the recipient: retry (an operator can fix it) rather than bounce.
        return Verdict(Kind.TRANSIENT, exc.code, f"relay refused our credentials: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = [classify_reply(r.code, r.message) for r in exc.recipients]
        transient = [v for v in refusals if v.kind is Kind.TRANSIENT]
        return (transient or refusals)[0] if refusals else Verdict(Kind.TRANSIENT, None, str(exc))
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError)):
        return Verdict(Kind.TRANSIENT, None, str(exc) or type(exc).__name__)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return classify_reply(exc.code, exc.message)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, TimeoutError)):
        return Verdict(Kind.TRANSIENT, None, str(exc) or type(exc).__name__)
    raise TypeError(f"not an SMTP or network failure: {exc!r}")


_UNIT_SECONDS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "hr": 3600, "h": 3600}
_HINT = re.compile(
    r"\b(?:in|after)\s+(\d{1,5})\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    re.IGNORECASE,
)
MAX_HINT = 24 * 3600.0  # a longer "hint" is not a retry hint we follow


def retry_hint(message: str) -> float | None:
    """Seconds a server asked us to wait ("try again in 5 minutes", "retry after 30
    seconds", "in 2 hours"); None without a clear hint or beyond a day."""
    match = _HINT.search(message)
    if match is None:
        return None
    unit = match.group(2).lower()
    unit = unit if unit in _UNIT_SECONDS else unit.rstrip("s")
    seconds = float(int(match.group(1)) * _UNIT_SECONDS[unit])
    return seconds if 0 < seconds <= MAX_HINT else None
