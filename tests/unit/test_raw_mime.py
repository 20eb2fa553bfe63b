"""core.emails.raw_mime.render_raw: a submitted message goes out as submitted, plus
what Postwire must add, and DKIM signs the result."""

from __future__ import annotations

from datetime import datetime, timezone

import dkim as dkimpy
import pytest

from core.domains.dkim import ED25519, RSA, SigningKey, generate, sign
from core.emails.raw_mime import header_fields, render_raw, split_message

DATE = datetime(2024, 12, 3, 9, 15, tzinfo=timezone.utc)
MID = "msg_1@postwire.example.com"
RAW = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: to@example.org\r\n"
    b"Bcc: hidden@example.org,\r\n other-hidden@example.org\r\n"
    b"subject:  Odd   spacing\r\n"
    b"X-Folded: one\r\n\ttwo\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Body line with trailing space \r\n\r\n.leading dot\r\nGr\xc3\xbc\xc3\x9fe\r\n"
)


def test_bcc_is_removed_and_everything_else_is_byte_identical() -> None:
    out = render_raw(RAW, message_id=MID, date=DATE)
    head, body = split_message(out)
    assert b"Bcc" not in out and b"hidden" not in out
    assert body == RAW.split(b"\r\n\r\n", 1)[1]
    kept = RAW.replace(b"Bcc: hidden@example.org,\r\n other-hidden@example.org\r\n", b"")
    assert head.startswith(kept.split(b"\r\n\r\n", 1)[0] + b"\r\n")


def test_message_id_and_date_are_added_only_when_missing() -> None:
    out = render_raw(RAW, message_id=MID, date=DATE)
    assert b"\r\nDate: Tue, 03 Dec 2024 09:15:00 +0000\r\n" in out
    assert b"\r\nMessage-ID: <msg_1@postwire.example.com>\r\n" in out
    own = b"Message-ID: <mine@client.example>\r\nDate: Mon, 2 Dec 2024 10:00:00 +0100\r\n" + RAW
    kept = render_raw(own, message_id=MID, date=DATE)
    assert kept.count(b"Message-ID") == 1 and b"<mine@client.example>" in kept and b"postwire" not in kept
    assert kept.count(b"Date:") == 1 and b"Mon, 2 Dec 2024 10:00:00 +0100" in kept


def test_extra_headers_are_added_unless_the_message_has_its_own() -> None:
    url = "<https://example.com/unsubscribe/" + "t" * 100 + ">"
    extra = {"List-Unsubscribe": url, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    out = render_raw(RAW, message_id=MID, date=DATE, extra_headers=extra)
    names = [f.name for f in header_fields(split_message(out)[0])]
    assert names[-4:] == ["Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"]
    assert url.encode() in out  # a long URL is not folded into encoded words
    own = b"List-Unsubscribe: <mailto:u@example.com>\r\n" + RAW
    kept = render_raw(own, message_id=MID, date=DATE, extra_headers={"List-Unsubscribe": url})
    assert kept.count(b"List-Unsubscribe:") == 1 and b"mailto:u@example.com" in kept


def test_a_message_without_body_or_headers() -> None:
    assert render_raw(b"From: a@example.com\r\n", message_id=MID, date=DATE).endswith(b"<" + MID.encode() + b">\r\n\r\n")
    assert split_message(b"\r\nbody") == (b"", b"body")


def test_header_fields_keep_continuation_lines_and_bare_line_ends() -> None:
    fields = header_fields(b"A: 1\r\n 2\r\nB: x\ny\r\nno colon\r\n")
    assert [(f.name, f.lines) for f in fields] == [
        ("A", (b"A: 1", b" 2")), ("B", (b"B: x\ny",)), ("", (b"no colon",)),
    ]


@pytest.mark.parametrize("bad", [{"message_id": "<x@y>"}, {"message_id": "nodomain"}, {"date": datetime(2024, 1, 1)}])
def test_bad_arguments(bad: dict[str, object]) -> None:
    args: dict[str, object] = {"message_id": MID, "date": DATE, **bad}
    with pytest.raises(ValueError):
        render_raw(RAW, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", [RSA, ED25519])
def test_dkim_over_the_result_verifies(algorithm: str) -> None:
    pair = generate(algorithm)
    key = SigningKey("example.com", "pwtest", algorithm, pair.private_pem)
    out = render_raw(RAW, message_id=MID, date=DATE, extra_headers={"List-Unsubscribe": "<https://example.com/u>"})
    signed = sign(out, [key])
    assert signed.endswith(out)
    records = {b"pwtest._domainkey.example.com.": pair.public_record.encode()}

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name if name.endswith(b".") else name + b".")

    assert dkimpy.verify(signed, dnsfunc=dnsfunc)
    assert not dkimpy.verify(signed.replace(b"Odd", b"Even"), dnsfunc=dnsfunc)
