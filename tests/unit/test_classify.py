"""SMTP outcome classification: transient (retry) or permanent (bounce)."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from core.domains.resolver import NoMailHost, NoSuchDomain, NullMx, TemporaryDnsError
from workers.delivery.attempt import SUPPRESSING_CODES
from workers.delivery.classify import Kind, classify, classify_reply, retry_hint
from workers.delivery.smtp import SmtpUtf8Unsupported

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
    ("our credentials refused", aiosmtplib.SMTPAuthenticationError(535, "bad auth"), Kind.TRANSIENT, 535),
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
    ("relay without SMTPUTF8", SmtpUtf8Unsupported("relay.example:25"), Kind.FAILED, None),
    ("read timeout", aiosmtplib.SMTPReadTimeoutError("slow"), Kind.TRANSIENT, None),
]


@pytest.mark.parametrize(("exc", "kind", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, kind: Kind, code: int | None) -> None:
    verdict = classify(exc)
    assert verdict.kind is kind
    assert verdict.code == code


def test_classify_refuses_errors_that_are_not_smtp_or_network() -> None:
    with pytest.raises(TypeError):
        classify(KeyError("bug"))


def test_smtputf8_unsupported_is_an_smtp_error_naming_the_relay() -> None:
    exc = SmtpUtf8Unsupported("relay.example:25")
    assert isinstance(exc, aiosmtplib.SMTPException)
    assert str(exc) == "relay relay.example:25 does not support SMTPUTF8"


REPLIES = [
    (250, Kind.TRANSIENT),  # not a failure; never passed in practice, but not permanent
    (421, Kind.TRANSIENT),
    (450, Kind.TRANSIENT),
    (452, Kind.TRANSIENT),
    (550, Kind.PERMANENT),
    (551, Kind.PERMANENT),
    (553, Kind.PERMANENT),
    (554, Kind.PERMANENT),
]


@pytest.mark.parametrize(("code", "kind"), REPLIES, ids=[str(c) for c, _ in REPLIES])
def test_classify_reply(code: int, kind: Kind) -> None:
    verdict = classify_reply(code, "text")
    assert (verdict.kind, verdict.code, verdict.message) == (kind, code, "text")


HINTS = [
    ("4.7.1 Greylisted, try again in 5 minutes", 300.0),
    ("retry after 30 seconds", 30.0),
    ("Service busy, please retry in 2 hours", 7200.0),
    ("try again in 1 minute", 60.0),
    ("Try Again In 10 Mins", 600.0),
    ("rate limited, retry after 90s", 90.0),
    ("retry in 15 sec", 15.0),
    ("back in 1 hr", 3600.0),
    ("mailbox full", None),
    ("", None),
    ("try again later", None),
    ("450 4.2.0 in 4 hosts", None),
    ("too many messages in 5 messages", None),
    ("try again in 0 minutes", None),
    ("try again in 3 days", None),
    ("try again in 999 hours", None),
    ("error 451 4.3.0 at 12:30", None),
]


@pytest.mark.parametrize(("message", "seconds"), HINTS, ids=[h[0] or "empty" for h in HINTS])
def test_retry_hint(message: str, seconds: float | None) -> None:
    assert retry_hint(message) == seconds


DNS_CASES = [
    ("null MX", NullMx("example.test"), Kind.PERMANENT, 556, "5.1.10 example.test accepts no mail (null MX, RFC 7505)"),
    ("NXDOMAIN", NoSuchDomain("nowhere.test"), Kind.PERMANENT, 554, "5.1.2 nowhere.test: no such domain (NXDOMAIN)"),
    ("no mail host", NoMailHost("bare.test"), Kind.PERMANENT, 554, "5.4.4 bare.test has no MX, A or AAAA record: no mail host"),
    (
        "SERVFAIL",
        TemporaryDnsError("broken.test", "MX query: no server answered (SERVFAIL)"),
        Kind.TRANSIENT,
        None,
        "4.4.3 DNS lookup for broken.test failed: MX query: no server answered (SERVFAIL)",
    ),
]


@pytest.mark.parametrize(("exc", "kind", "code", "message"), [c[1:] for c in DNS_CASES], ids=[c[0] for c in DNS_CASES])
def test_classify_dns_errors(exc: BaseException, kind: Kind, code: int | None, message: str) -> None:
    verdict = classify(exc)
    assert (verdict.kind, verdict.code, verdict.message) == (kind, code, message)


@pytest.mark.parametrize("exc", [c[1] for c in DNS_CASES], ids=[c[0] for c in DNS_CASES])
def test_a_dns_failure_never_suppresses_the_address(exc: BaseException) -> None:
    assert classify(exc).code not in SUPPRESSING_CODES
