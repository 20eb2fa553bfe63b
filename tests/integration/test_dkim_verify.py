"""Messages rendered by core.emails.mime and signed by core.domains.dkim.sign verify with
independent verifiers (Perl's Mail::DKIM, dkimpy) that read the public keys from a real
DNS server on loopback; tampering and a missing record do not pass.

Mail::DKIM 1.20230212 (Debian 12) does not know ed25519-sha256: it reports that
signature "invalid (unsupported algorithm ...)", which RFC 6376 §6.1 asks a verifier to
ignore, and the RSA signature still decides. dkimpy (with PyNaCl) verifies both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from core.domains.dkim import ED25519, RSA, SigningKey, generate, sign
from core.emails.content import Address, Attachment, EmailContent
from core.emails.mime import render
from tests.support.dkim_judge import Verdict, dkimpy, mail_dkim
from tests.support.dns import DnsServer

DOMAIN = "mail.example.test"
DATE = datetime(2024, 12, 3, 9, 15, 0, tzinfo=timezone.utc)
RSA_PAIR, ED_PAIR = generate(RSA), generate(ED25519)
RSA_KEY = SigningKey(DOMAIN, "pw202412rjudg", RSA, RSA_PAIR.private_pem)
ED_KEY = SigningKey(DOMAIN, "pw202412ejudg", ED25519, ED_PAIR.private_pem)
UNPUBLISHED = SigningKey(DOMAIN, "pw202412rgone", RSA, RSA_PAIR.private_pem)

Judge = Callable[[bytes, DnsServer], list[Verdict]]
JUDGES = [pytest.param(mail_dkim, id="mail_dkim"), pytest.param(dkimpy, id="dkimpy")]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        server.add(f"{RSA_KEY.selector}._domainkey.{DOMAIN}", "TXT", RSA_PAIR.public_record)
        server.add(f"{ED_KEY.selector}._domainkey.{DOMAIN}", "TXT", ED_PAIR.public_record)
        yield server


def rendered(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "from_address": Address(f"receipts@{DOMAIN}", "Example Shop"),
        "to": (Address("customer@example.org", "A Customer"),),
        "subject": "Your receipt",
        "text_body": "Thanks for your order.\nTotal: 12.00 EUR\n",
    }
    fields.update(overrides)
    return render(EmailContent(**fields), message_id=f"msg_42@{DOMAIN}", date=DATE)


CASES = {
    "plain_ascii_text": {},
    "html_and_text_alternative": {"html_body": "<html><body><p>Thanks for your <b>order</b>.</p></body></html>\n"},
    "non_ascii_subject_names_and_body": {
        "from_address": Address(f"receipts@{DOMAIN}", "Boutique Zoë Ünal"),
        "to": (Address("lukasz@example.org", "Łukasz Żółć"), Address("ivan@example.org", "Иван Петров")),
        "subject": "Grüße — ваш заказ №42 ist versandt ✓",
        "text_body": "Grüße aus Köln!\nВаш заказ отправлен. Ça coûte 12 €.\n" * 30,
        "html_body": "<p>Grüße aus Köln — ваш заказ</p>\n",
    },
    "binary_attachment": {
        "html_body": "<p>Invoice attached.</p>\n",
        "attachments": (Attachment("invoice-42.pdf", "application/pdf", bytes(range(256)) * 40),
                        Attachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(1000), content_id="logo")),
    },
    "very_long_body_line": {"text_body": "x" * 5000 + "\n"},
    "very_long_header": {"subject": " ".join(f"word{i}" for i in range(120))},
    "list_unsubscribe": {"headers": {"List-Unsubscribe": f"<https://{DOMAIN}/u/abc>, <mailto:unsub@{DOMAIN}>",
                                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}},
}


def by_selector(verdicts: list[Verdict]) -> dict[str, Verdict]:
    assert all(v.domain == DOMAIN for v in verdicts), verdicts
    return {v.selector: v for v in verdicts}


def assert_ed25519_accepted(verdict: Verdict, judge: Judge) -> None:
    """Pass, or (Mail::DKIM before ed25519 support) ignored as an unknown algorithm."""
    if judge is mail_dkim and verdict.result == "invalid":
        assert "unsupported algorithm" in verdict.detail, verdict
    else:
        assert verdict.result == "pass", verdict


@pytest.mark.parametrize("judge", JUDGES)
@pytest.mark.parametrize("case", list(CASES))
def test_rendered_message_signed_rsa_and_ed25519_passes(dns: DnsServer, judge: Judge, case: str) -> None:
    raw = rendered(**CASES[case])
    signed = sign(raw, [RSA_KEY, ED_KEY])
    assert signed.endswith(raw)
    verdicts = judge(signed, dns)
    assert [(v.selector, v.algorithm) for v in verdicts] == [(RSA_KEY.selector, RSA), (ED_KEY.selector, ED25519)]
    results = by_selector(verdicts)
    assert results[RSA_KEY.selector].result == "pass", results
    assert_ed25519_accepted(results[ED_KEY.selector], judge)


@pytest.mark.parametrize("judge", JUDGES)
def test_ed25519_alone(dns: DnsServer, judge: Judge) -> None:
    [verdict] = judge(sign(rendered(), [ED_KEY]), dns)
    assert (verdict.selector, verdict.algorithm) == (ED_KEY.selector, ED25519)
    assert_ed25519_accepted(verdict, judge)


def _subject_changed(signed: bytes) -> bytes:
    return signed.replace(b"Subject: Your receipt", b"Subject: Your refund", 1)


def _body_changed(signed: bytes) -> bytes:
    return signed.replace(b"Total: 12.00 EUR", b"Total: 1200 EUR", 1)


def _list_unsubscribe_changed(signed: bytes) -> bytes:
    return signed.replace(b"/u/abc>", b"/u/evil>", 1)


def _second_from_added(signed: bytes) -> bytes:
    head, sep, body = signed.partition(b"\r\n\r\n")
    return head + b"\r\nFrom: Attacker <ceo@" + DOMAIN.encode() + b">" + sep + body


TAMPERING = {
    "subject_changed": _subject_changed,
    "body_changed": _body_changed,
    "list_unsubscribe_changed": _list_unsubscribe_changed,
    "second_from_added": _second_from_added,
}


@pytest.mark.parametrize("judge", JUDGES)
@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_message_modified_after_signing_fails(dns: DnsServer, judge: Judge, tamper: str) -> None:
    signed = sign(rendered(**CASES["list_unsubscribe"]), [RSA_KEY, ED_KEY])
    modified = TAMPERING[tamper](signed)
    assert modified != signed
    results = by_selector(judge(modified, dns))
    assert results[RSA_KEY.selector].result == "fail", results
    assert results[ED_KEY.selector].result != "pass", results


@pytest.mark.parametrize("judge", JUDGES)
def test_record_missing_from_dns_does_not_pass(dns: DnsServer, judge: Judge) -> None:
    [verdict] = judge(sign(rendered(), [UNPUBLISHED]), dns)
    assert verdict.selector == UNPUBLISHED.selector
    assert verdict.result in ("invalid", "fail"), verdict
    assert (f"{UNPUBLISHED.selector}._domainkey.{DOMAIN}.".lower(), "TXT") in dns.queries


@pytest.mark.parametrize("judge", JUDGES)
def test_unsigned_message_has_no_signature(dns: DnsServer, judge: Judge) -> None:
    assert [v.result for v in judge(rendered(), dns)] == ["none"]


@pytest.mark.parametrize("judge", JUDGES)
def test_relaxed_canonicalization_survives_refolded_header_whitespace(dns: DnsServer, judge: Judge) -> None:
    signed = sign(rendered(subject="Your receipt for order 42"), [RSA_KEY, ED_KEY])
    refolded = signed.replace(b"Subject: Your receipt for order 42",
                              b"Subject:   Your  receipt\r\n \t for order    42 ", 1)
    assert refolded != signed
    results = by_selector(judge(refolded, dns))
    assert results[RSA_KEY.selector].result == "pass", results
    assert_ed25519_accepted(results[ED_KEY.selector], judge)
