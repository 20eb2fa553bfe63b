"""core.emails.mime: rendered bytes parse back to exactly the intended message."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest

from core.emails.content import Address, Attachment, EmailContent
from core.emails.mime import envelope_recipients, render, requires_smtputf8

DATE = datetime(2024, 3, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=2)))
OUR_HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version"]


def content(**overrides: Any) -> EmailContent:
    base: dict[str, Any] = {
        "from_address": Address("sender@example.com", "Sender"),
        "to": (Address("to@example.com"),),
        "subject": "Hello",
        "text_body": "Hi there\n",
    }
    base.update(overrides)
    return EmailContent(**base)


def rendered(c: EmailContent) -> bytes:
    return render(c, message_id="msg_abc@example.com", date=DATE)


def body(part: EmailMessage) -> str:
    """Decoded part content; on the wire lines end in CRLF, compare them as LF."""
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.mark.parametrize(
    ("overrides", "content_headers", "content_type"),
    [
        pytest.param({}, ["Content-Type", "Content-Transfer-Encoding"], "text/plain", id="text_only_is_text_plain"),
        pytest.param({"text_body": "", "html_body": "<p>Hi</p>"}, ["Content-Type", "Content-Transfer-Encoding"],
                     "text/html", id="html_only_is_text_html"),
        pytest.param({"html_body": "<p>Hi</p>"}, ["Content-Type"], "multipart/alternative",
                     id="both_is_multipart_alternative"),
    ],
)
def test_renders_exactly_the_intended_headers(
    overrides: dict[str, Any], content_headers: list[str], content_type: str
) -> None:
    msg = parse(rendered(content(**overrides)))
    assert msg.keys() == OUR_HEADERS + content_headers
    assert msg.get_content_type() == content_type
    assert msg["From"] == "Sender <sender@example.com>"
    assert msg["To"] == "to@example.com"
    assert msg["Subject"] == "Hello"
    assert msg["Message-ID"] == "<msg_abc@example.com>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime == DATE
    assert msg.defects == []


def test_multipart_has_text_then_html_without_per_part_mime_version() -> None:
    msg = parse(rendered(content(text_body="plain\n", html_body="<p>rich</p>\n")))
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [body(p) for p in parts] == ["plain\n", "<p>rich</p>\n"]
    assert all("MIME-Version" not in p for p in parts)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"cc": (Address("c@example.com", "Cee"),)}, {"Cc": "Cee <c@example.com>"}, id="cc_when_given"),
        pytest.param({"reply_to": Address("r@example.com")}, {"Reply-To": "r@example.com"}, id="reply_to_when_given"),
        pytest.param({"to": (Address("a@example.com"), Address("b@example.com", "B"))},
                     {"To": "a@example.com, B <b@example.com>"}, id="several_to"),
        pytest.param({"to": (), "cc": (Address("c@example.com"),)}, {"To": None, "Cc": "c@example.com"},
                     id="no_to_header_when_only_cc"),
        pytest.param({"to": (), "bcc": (Address("b@example.com"),)}, {"To": "undisclosed-recipients:;"},
                     id="bcc_only_gets_undisclosed_recipients"),
        pytest.param({}, {"Cc": None, "Reply-To": None, "Bcc": None}, id="optional_headers_absent"),
        pytest.param({"from_address": Address("j@example.com", "Doe, John")}, {"From": '"Doe, John" <j@example.com>'},
                     id="display_name_with_comma_quoted"),
    ],
)
def test_address_headers(overrides: dict[str, Any], expected: dict[str, str | None]) -> None:
    msg = parse(rendered(content(**overrides)))
    for name, value in expected.items():
        assert msg[name] == value, name
        assert len(msg.get_all(name) or []) == (0 if value is None else 1)


def test_bcc_never_appears_in_rendered_bytes() -> None:
    raw = rendered(content(cc=(Address("c@example.com"),), bcc=(Address("secret@hidden.example", "Secret"),)))
    assert b"secret" not in raw.lower()
    assert b"hidden.example" not in raw
    assert "Bcc" not in parse(raw)


def test_custom_headers_follow_ours_in_order() -> None:
    msg = parse(rendered(content(headers={"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u@example.com>"})))
    assert msg.keys()[: len(OUR_HEADERS) + 2] == OUR_HEADERS + ["X-Campaign", "List-Unsubscribe"]
    assert msg["X-Campaign"] == "spring"
    assert msg["List-Unsubscribe"] == "<mailto:u@example.com>"


@pytest.mark.parametrize(
    ("overrides", "header", "expected"),
    [
        pytest.param({"subject": "Grüße aus Köln 👋"}, "Subject", "Grüße aus Köln 👋", id="unicode_subject"),
        pytest.param({"subject": "Ж" * 300}, "Subject", "Ж" * 300, id="long_unicode_subject_folded"),
        pytest.param({"from_address": Address("z@example.com", "Zoë Ünïcode")}, "From", "Zoë Ünïcode <z@example.com>",
                     id="unicode_display_name"),
        pytest.param({"headers": {"X-Note": "bär"}}, "X-Note", "bär", id="unicode_custom_header"),
    ],
)
def test_non_ascii_headers_become_encoded_words(overrides: dict[str, Any], header: str, expected: str) -> None:
    raw = rendered(content(**overrides))
    assert raw.isascii()
    assert b"=?utf-8?" in raw
    assert parse(raw)[header] == expected


@pytest.mark.parametrize(
    ("overrides", "parts"),
    [
        pytest.param({"text_body": "Grüße, 你好 👋\n"}, ["Grüße, 你好 👋\n"], id="unicode_text"),
        pytest.param({"text_body": "", "html_body": "<p>café</p>\n"}, ["<p>café</p>\n"], id="unicode_html"),
        pytest.param({"text_body": "ü" * 5000 + "\n", "html_body": "<p>" + "x" * 5000 + "</p>\n"},
                     ["ü" * 5000 + "\n", "<p>" + "x" * 5000 + "</p>\n"], id="long_lines"),
        pytest.param({"text_body": "a\r\nb\rc\n"}, ["a\nb\nc\n"], id="line_endings_normalised"),
    ],
)
def test_bodies_round_trip_as_utf8(overrides: dict[str, Any], parts: list[str]) -> None:
    raw = rendered(content(**overrides))
    assert raw.isascii()  # 7bit-safe transfer encodings
    msg = parse(raw)
    leaves = list(msg.iter_parts()) if msg.is_multipart() else [msg]
    assert [body(p) for p in leaves] == parts
    assert all(p.get_content_charset() == "utf-8" for p in leaves)


def test_lines_end_in_crlf_and_fit_the_smtp_limit() -> None:
    raw = rendered(content(subject="S" * 998, text_body="x" * 3000, html_body="<p>" + "y" * 3000))
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_rendering_is_deterministic() -> None:
    c = content(html_body="<p>Hi</p>")
    assert rendered(c) == rendered(c)


def test_idn_domains_rendered_as_punycode() -> None:
    c = content(to=(Address("a@bücher.example", "A"),))
    assert not requires_smtputf8(c)
    raw = rendered(c)
    assert raw.isascii()
    assert parse(raw)["To"] == "A <a@xn--bcher-kva.example>"


def test_unicode_local_part_renders_utf8_headers() -> None:
    c = content(to=(Address("用户@例子.广告", "Zoë"),), subject="Grüße")
    assert requires_smtputf8(c)
    raw = rendered(c)
    msg = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert msg["To"] == "Zoë <用户@例子.广告>"
    assert msg["Subject"] == "Grüße"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"date": datetime(2024, 1, 1)}, "timezone-aware", id="naive_date"),
        pytest.param({"message_id": "<msg_abc@example.com>"}, "bare id", id="message_id_with_brackets"),
        pytest.param({"message_id": "msg_abc"}, "bare id", id="message_id_without_at"),
        pytest.param({"message_id": "a@b\r\nBcc: x@y.z"}, "bare id", id="message_id_crlf"),
        pytest.param({"message_id": ""}, "bare id", id="message_id_empty"),
    ],
)
def test_render_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"message_id": "msg_abc@example.com", "date": DATE, **kwargs}
    with pytest.raises(ValueError, match=message):
        render(content(), **args)


@pytest.mark.parametrize(
    ("to", "cc", "bcc", "expected"),
    [
        pytest.param(["a@example.com"], [], [], ["a@example.com"], id="single"),
        pytest.param(["a@example.com", "b@example.com"], ["c@example.com"], ["d@example.com"],
                     ["a@example.com", "b@example.com", "c@example.com", "d@example.com"], id="order_to_cc_bcc"),
        pytest.param(["A@example.com"], ["a@example.com"], ["a@EXAMPLE.com"], ["A@example.com"],
                     id="dedup_case_insensitive_first_kept"),
        pytest.param(["b@example.com", "a@example.com", "b@example.com"], [], [], ["b@example.com", "a@example.com"],
                     id="dedup_within_list"),
        pytest.param(["a@bücher.example"], [], [], ["a@xn--bcher-kva.example"], id="idn_as_ascii"),
        pytest.param(["用户@例子.广告"], [], [], ["用户@例子.广告"], id="utf8_local_part_kept"),
    ],
)
def test_envelope_recipients(to: list[str], cc: list[str], bcc: list[str], expected: list[str]) -> None:
    c = content(to=tuple(map(Address, to)), cc=tuple(map(Address, cc)), bcc=tuple(map(Address, bcc)))
    assert envelope_recipients(c) == expected


# --- attachments and inline parts ----------------------------------------------------

PDF = Attachment("report.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)))
LOGO = Attachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), content_id="logo@example.com")
ICON = Attachment("icon.gif", "image/gif", b"GIF89a\x00\x01", content_id="icon")
HTML = '<p><img src="cid:logo@example.com"></p>\n'

Tree = str | tuple[str, list["Tree"]]


def tree(part: EmailMessage) -> Tree:
    """The MIME structure: a leaf's content type, or (multipart type, children)."""
    if part.is_multipart():
        return part.get_content_type(), [tree(p) for p in part.iter_parts()]
    return part.get_content_type()


def leaves(msg: EmailMessage) -> list[EmailMessage]:
    return [p for p in msg.walk() if not p.is_multipart()]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"attachments": (PDF,)}, ("multipart/mixed", ["text/plain", "application/pdf"]),
                     id="text_and_attachment"),
        pytest.param({"text_body": "", "html_body": HTML, "attachments": (PDF,)},
                     ("multipart/mixed", ["text/html", "application/pdf"]), id="html_and_attachment"),
        pytest.param({"html_body": HTML, "attachments": (PDF,)},
                     ("multipart/mixed", [("multipart/alternative", ["text/plain", "text/html"]), "application/pdf"]),
                     id="text_html_and_attachment"),
        pytest.param({"text_body": "", "html_body": HTML, "attachments": (LOGO,)},
                     ("multipart/related", ["text/html", "image/png"]), id="html_and_inline"),
        pytest.param({"html_body": HTML, "attachments": (LOGO,)},
                     ("multipart/alternative", ["text/plain", ("multipart/related", ["text/html", "image/png"])]),
                     id="text_html_and_inline"),
        pytest.param({"html_body": HTML, "attachments": (PDF, LOGO)},
                     ("multipart/mixed", [
                         ("multipart/alternative", ["text/plain", ("multipart/related", ["text/html", "image/png"])]),
                         "application/pdf",
                     ]), id="text_html_inline_and_attachment"),
        pytest.param({"text_body": "", "html_body": HTML, "attachments": (LOGO, PDF, ICON, PDF)},
                     ("multipart/mixed", [
                         ("multipart/related", ["text/html", "image/png", "image/gif"]),
                         "application/pdf", "application/pdf",
                     ]), id="html_several_inline_and_attachments_in_order"),
        pytest.param({"attachments": (LOGO,)}, ("multipart/mixed", ["text/plain", "image/png"]),
                     id="inline_without_html_is_an_attachment"),
    ],
)
def test_attachment_structure(overrides: dict[str, Any], expected: Tree) -> None:
    raw = rendered(content(**overrides))
    assert raw.isascii()
    msg = parse(raw)
    assert tree(msg) == expected
    assert msg.keys() == OUR_HEADERS + ["Content-Type"]
    assert all("MIME-Version" not in p for p in msg.walk() if p is not msg)
    assert all(p.defects == [] for p in msg.walk())
    boundaries = [p.get_boundary() for p in msg.walk() if p.is_multipart()]
    assert len(set(boundaries)) == len(boundaries)
    assert all(b is not None and b.startswith("=_pw_") for b in boundaries)


def test_bodies_survive_next_to_attachments() -> None:
    msg = parse(rendered(content(text_body="Grüße\n", html_body=HTML, attachments=(PDF, LOGO))))
    texts = [p for p in leaves(msg) if p.get_content_maintype() == "text"]
    assert [body(p) for p in texts] == ["Grüße\n", HTML]
    assert all(p.get_content_disposition() is None for p in texts)


@pytest.mark.parametrize(
    "attachment",
    [
        pytest.param(Attachment("all-bytes.bin", "application/octet-stream", bytes(range(256)) * 4), id="all_bytes"),
        pytest.param(Attachment("Grüße – 报告 \"final\"; v2.pdf", "application/pdf", b"%PDF"), id="utf8_filename"),
        pytest.param(Attachment("ü" * 255, "text/plain", "ü\r\n".encode() * 3), id="long_utf8_filename_text_type"),
        pytest.param(Attachment("a" * 251 + ".jpg", "image/jpeg", b"\xff\xd8\xff" * 40000), id="long_ascii_name_large"),
    ],
)
def test_attachment_bytes_and_filename_round_trip(attachment: Attachment) -> None:
    raw = rendered(content(attachments=(attachment,)))
    assert raw.isascii()
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    [part] = parse(raw).iter_attachments()
    assert part.get_content_type() == attachment.content_type
    assert part.get_payload(decode=True) == attachment.content
    assert part.get_filename() == attachment.filename
    assert part.get_content_disposition() == "attachment"
    assert part["Content-Transfer-Encoding"] == "base64"
    assert "Content-ID" not in part


def test_non_ascii_filename_uses_rfc2231() -> None:
    raw = rendered(content(attachments=(Attachment("Grüße.pdf", "application/pdf", b"%PDF"),)))
    assert b"filename*=utf-8''Gr%C3%BC%C3%9Fe.pdf" in raw


def test_ascii_filename_is_quoted() -> None:
    raw = rendered(content(attachments=(PDF,)))
    assert b'Content-Disposition: attachment; filename="report.pdf"\r\n' in raw


def test_inline_part_sits_in_related_next_to_the_html() -> None:
    msg = parse(rendered(content(html_body=HTML, attachments=(LOGO, PDF))))
    [related] = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    html, image = related.iter_parts()
    assert body(html) == HTML
    assert image["Content-ID"] == "<logo@example.com>"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename() == "logo.png"
    assert image["Content-Transfer-Encoding"] == "base64"
    assert image.get_payload(decode=True) == LOGO.content
    assert related.get_param("type") == "text/html"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["report.pdf"]


def test_custom_headers_stay_on_the_top_level() -> None:
    msg = parse(rendered(content(html_body=HTML, headers={"X-Campaign": "spring"}, attachments=(LOGO, PDF))))
    assert msg["X-Campaign"] == "spring"
    assert all("X-Campaign" not in p for p in msg.walk() if p is not msg)


def test_bcc_never_appears_with_attachments() -> None:
    raw = rendered(content(
        html_body=HTML, bcc=(Address("secret@hidden.example", "Secret"),), attachments=(PDF, LOGO),
    ))
    assert b"secret" not in raw.lower()
    assert b"hidden.example" not in raw
    assert all("Bcc" not in p for p in parse(raw).walk())


def test_rendering_with_attachments_is_deterministic() -> None:
    c = content(html_body=HTML, attachments=(PDF, LOGO))
    assert rendered(c) == rendered(c)
    other = content(html_body=HTML, attachments=(PDF, Attachment(**{**LOGO.__dict__, "content": b"other"})))
    boundaries = {p.get_boundary() for p in parse(rendered(c)).walk() if p.is_multipart()}
    other_boundaries = {p.get_boundary() for p in parse(rendered(other)).walk() if p.is_multipart()}
    assert boundaries.isdisjoint(other_boundaries)


def test_attachments_with_smtputf8_message() -> None:
    c = content(to=(Address("用户@例子.广告"),), attachments=(Attachment("报告.pdf", "application/pdf", b"%PDF"),))
    raw = rendered(c)
    msg = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert msg["To"] == "用户@例子.广告"
    [part] = msg.iter_attachments()
    assert part.get_filename() == "报告.pdf"
    assert part.get_payload(decode=True) == b"%PDF"
