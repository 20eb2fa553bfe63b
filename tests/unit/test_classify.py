"""SMTP outcome classification: transient (retry) or permanent (bounce)."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from workers.classify import Kind, classify

CASES = [
    ("421 service closing", aiosmtplib.SMTPResponseException(421, "closing"), Kind.TRANSIENT, 421),
    ("451 local error", aiosmtplib.SMTPDataError(451, "try later"), Kind.TRANSIENT, 451),
    ("452 storage", aiosmtplib.SMTPDataError(452, "full"), Kind.TRANSIENT, 452),
    ("550 no such user", aiosmtplib.SMTPDataError(550, "no user"), Kind.PERMANENT, 550),
    ("554 rejected", aiosmtplib.SMTPResponseException(554, "rejected"), Kind.PERMANENT, 554),
    ("sender refused 553", aiosmtplib.SMTPSenderRefused(553, "bad", "a@x"), Kind.PERMANENT, 553),
    ("disconnected", aiosmtplib.SMTPServerDisconnected("gone"), Kind.TRANSIENT, None),
    ("connect error", aiosmtplib.SMTPConnectError("refused"), Kind.TRANSIENT, None),
    ("timeout", aiosmtplib.SMTPTimeoutError("slow"), Kind.TRANSIENT, None),
    ("os error", ConnectionRefusedError("refused"), Kind.TRANSIENT, None),
    ("asyncio timeout", asyncio.TimeoutError(), Kind.TRANSIENT, None),
    (
        "all recipients refused permanently",
        aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@x")]),
        Kind.PERMANENT,
        550,
    ),
    (
        "any transient refusal makes the whole attempt transient",
        aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(550, "no", "a@x"), aiosmtplib.SMTPRecipientRefused(450, "later", "b@x")]
        ),
        Kind.TRANSIENT,
        450,
    ),
]


@pytest.mark.parametrize(("exc", "kind", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, kind: Kind, code: int | None) -> None:
    verdict = classify(exc)
    assert verdict.kind is kind
    assert verdict.code == code


def test_classify_refuses_errors_that_are_not_smtp_or_network() -> None:
    with pytest.raises(TypeError):
        classify(KeyError("bug"))
