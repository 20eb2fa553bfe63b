"""core.domains.dkim: key pairs and records, selectors, and the signature headers sign()
prepends to a rendered message (verification by independent verifiers is in
tests/integration/test_dkim_verify.py)."""

from __future__ import annotations

import base64
import re
import time
from datetime import datetime, timezone

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from core.domains.dkim import (
    ED25519,
    RSA,
    KeyPair,
    SigningKey,
    generate,
    new_selector,
    sign,
    sign_with_dkimpy,
    signed_header_list,
)
from core.emails.content import Address, EmailContent
from core.emails.mime import render

DATE = datetime(2024, 12, 3, 9, 15, tzinfo=timezone.utc)
NOW = 1733217300
RSA_PAIR = generate(RSA)
ED_PAIR = generate(ED25519)
RSA_KEY = SigningKey("example.com", "pw202412rtest", RSA, RSA_PAIR.private_pem)
ED_KEY = SigningKey("example.com", "pw202412etest", ED25519, ED_PAIR.private_pem)


def message(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "from_address": Address("sender@example.com", "Sender"),
        "to": (Address("to@example.org"),),
        "subject": "Your receipt",
        "text_body": "Thanks for your order.\n",
    }
    fields.update(overrides)
    return render(EmailContent(**fields), message_id="msg_1@example.com", date=DATE)  # type: ignore[arg-type]


def record_tags(record: str) -> dict[str, str]:
    return dict(tag.strip().split("=", 1) for tag in record.split(";"))


def signature_tags(signed: bytes) -> list[dict[str, str]]:
    headers, _ = dkimpy.rfc822_parse(signed)
    out = []
    for name, value in headers:
        if name.lower() == b"dkim-signature":
            tags = dkimpy.util.parse_tag_value(value)
            out.append({k.decode(): re.sub(r"\s+", "", v.decode()) for k, v in tags.items()})
    return out


def h_list(tags: dict[str, str]) -> list[str]:
    return tags["h"].split(":")


def test_rsa_key_pair_is_2048_bit_pkcs8_with_spki_record() -> None:
    key = serialization.load_pem_private_key(RSA_PAIR.private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048 and key.public_key().public_numbers().e == 65537
    assert RSA_PAIR.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert RSA_PAIR.public_record.startswith("v=DKIM1; k=rsa; p=")
    tags = record_tags(RSA_PAIR.public_record)
    public = serialization.load_der_public_key(base64.b64decode(tags["p"], validate=True))
    assert public == key.public_key()


def test_ed25519_key_pair_publishes_the_raw_32_byte_key() -> None:
    key = serialization.load_pem_private_key(ED_PAIR.private_pem.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert ED_PAIR.public_record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(record_tags(ED_PAIR.public_record)["p"], validate=True)
    assert len(raw) == 32
    assert raw == key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_generate_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown DKIM algorithm"):
        generate("rsa-sha1")


@pytest.mark.parametrize(("algorithm", "letter"), [(RSA, "r"), (ED25519, "e")])
def test_selector_is_a_recognisable_dns_label(algorithm: str, letter: str) -> None:
    selectors = {new_selector(algorithm, DATE) for _ in range(50)}
    assert len(selectors) > 45  # 20 random bits each
    for selector in selectors:
        assert re.fullmatch(rf"pw202412{letter}[a-z2-7]{{4}}", selector), selector
        assert len(selector) <= 63


def test_repr_never_shows_the_private_key() -> None:
    for shown in (repr(RSA_KEY), str(ED_KEY), repr(RSA_PAIR), repr(ED_PAIR)):
        assert "PRIVATE" not in shown and "private_pem" not in shown
    assert "example.com" in repr(RSA_KEY) and "pw202412rtest" in repr(RSA_KEY)


def test_signing_key_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown DKIM algorithm"):
        SigningKey("example.com", "s", "rsa-sha1", RSA_PAIR.private_pem)


def test_signature_header_fields() -> None:
    raw = message()
    [tags] = signature_tags(sign(raw, [RSA_KEY], now=NOW))
    assert tags["v"] == "1"
    assert tags["a"] == "rsa-sha256"
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.com" and tags["s"] == "pw202412rtest"
    assert tags["t"] == str(NOW)
    assert tags["bh"] and tags["b"]
    assert "l" not in tags  # no body length limit: nothing can be appended
    assert h_list(tags) == ["from", "from", "to", "subject", "date", "message-id", "mime-version",
                            "content-type", "content-transfer-encoding"]


def test_only_present_headers_are_signed_and_from_is_oversigned() -> None:
    raw = message(cc=(Address("cc@example.org"),), reply_to=Address("help@example.com"),
                  headers={"List-Unsubscribe": "<https://example.com/u/1>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                           "X-Campaign": "winter"},
                  html_body="<p>Thanks</p>")
    [tags] = signature_tags(sign(raw, [RSA_KEY], now=NOW))
    assert h_list(tags) == ["from", "from", "to", "cc", "reply-to", "subject", "date", "message-id",
                            "mime-version", "content-type", "list-unsubscribe", "list-unsubscribe-post"]
    assert signed_header_list(raw) == h_list(tags)


def test_header_names_match_case_insensitively_and_repeats_are_all_signed() -> None:
    raw = b"FROM: a@example.com\r\nto: b@example.org\r\nReferences: <1@x>\r\nreferences: <2@x>\r\n" \
          b"SUBJECT: hi\r\n\r\nbody\r\n"
    assert signed_header_list(raw) == ["from", "from", "to", "subject", "references", "references"]


def test_a_message_without_from_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="no From header"):
        sign(b"To: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n", [RSA_KEY])


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="text"),
    pytest.param({"subject": "Grüße aus Köln", "text_body": "Ünïcödé body\n" * 40,
                  "html_body": "<p>Grüße</p>"}, id="non_ascii_alternative"),
    pytest.param({"text_body": "x" * 5000 + "\n"}, id="long_line"),
])
def test_message_after_the_signatures_is_byte_identical(overrides: dict[str, object]) -> None:
    raw = message(**overrides)
    signed = sign(raw, [RSA_KEY, ED_KEY], now=NOW)
    assert signed.endswith(raw)
    prefix = signed[: -len(raw)]
    assert prefix.startswith(b"DKIM-Signature: ") and prefix.endswith(b"\r\n")
    assert prefix.count(b"DKIM-Signature: ") == 2
    assert all(line.startswith((b"DKIM-Signature: ", b" ")) for line in prefix.split(b"\r\n")[:-1])
    assert all(len(line) <= 78 for line in prefix.split(b"\r\n"))


def test_one_signature_per_key_in_key_order() -> None:
    tags = signature_tags(sign(message(), [RSA_KEY, ED_KEY], now=NOW))
    assert [(t["a"], t["s"]) for t in tags] == [("rsa-sha256", "pw202412rtest"), ("ed25519-sha256", "pw202412etest")]
    assert tags[0]["bh"] == tags[1]["bh"]
    assert sign(message(), [], now=NOW) == message()


def test_signing_is_deterministic_for_the_same_second() -> None:
    raw = message()
    assert sign(raw, [RSA_KEY, ED_KEY], now=NOW) == sign(raw, [RSA_KEY, ED_KEY], now=NOW)
    assert sign(raw, [RSA_KEY], now=NOW) != sign(raw, [RSA_KEY], now=NOW + 1)


def test_same_bytes_as_dkimpy_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cryptography signing step gives exactly what dkimpy's own signer gives."""
    monkeypatch.setattr(dkimpy.time, "time", lambda: float(NOW))
    raw = message(subject="Grüße", headers={"List-Unsubscribe": "<mailto:u@example.com>"})
    assert sign(raw, [RSA_KEY, ED_KEY], now=NOW) == sign_with_dkimpy(raw, [RSA_KEY, ED_KEY])


def test_default_timestamp_is_now() -> None:
    before = int(time.time())
    [tags] = signature_tags(sign(message(), [ED_KEY]))
    assert before <= int(tags["t"]) <= int(time.time())


def test_a_key_of_the_wrong_algorithm_is_refused() -> None:
    wrong = SigningKey("example.com", "s", ED25519, RSA_PAIR.private_pem)
    with pytest.raises(ValueError, match="is RSA, not ed25519-sha256"):
        sign(message(), [wrong])


def test_key_pair_is_frozen() -> None:
    with pytest.raises(AttributeError):
        RSA_PAIR.algorithm = ED25519  # type: ignore[misc]
    assert isinstance(RSA_PAIR, KeyPair)
