"""Classify an SMTP attempt's failure: transient (retry) or permanent (bounce). Pure."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib


class Kind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    code: int | None
    message: str


def _by_code(code: int, message: str) -> Verdict:
    return Verdict(Kind.PERMANENT if 500 <= code < 600 else Kind.TRANSIENT, code, message)


def classify(exc: BaseException) -> Verdict:
    """4xx, network faults and timeouts are transient; 5xx is permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = [_by_code(r.code, r.message) for r in exc.recipients]
        transient = [v for v in refusals if v.kind is Kind.TRANSIENT]
        return (transient or refusals)[0] if refusals else Verdict(Kind.TRANSIENT, None, str(exc))
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError)):
        return Verdict(Kind.TRANSIENT, None, str(exc) or type(exc).__name__)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, TimeoutError)):
        return Verdict(Kind.TRANSIENT, None, str(exc) or type(exc).__name__)
    raise TypeError(f"not an SMTP or network failure: {exc!r}")
