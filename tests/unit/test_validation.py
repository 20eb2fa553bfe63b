"""core.emails.validation: every violation reported at once, with precise field paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from core.emails.content import Address, Attachment, EmailContent
from core.emails.validation import SendLimits, validate_send
from core.errors import InvalidArgument


def request(**overrides: Any) -> dict[str, Any]:
    """A valid send request; override fields per test."""
    base: dict[str, Any] = {
        "from_address": "Sender <sender@example.com>",
        "to": ["to@example.com"],
        "cc": [],
        "bcc": [],
        "reply_to": "",
        "subject": "Hello",
        "text_body": "Hi there",
        "html_body": "",
        "headers": {},
        "tags": [],
        "metadata": {},
    }
    base.update(overrides)
    return base


@dataclass
class Att:
    """Duck-typed attachment input, as a postwire.v1.Attachment message would be."""

    filename: str = "report.pdf"
    content_type: str = "application/pdf"
    content: bytes = b"%PDF-1.7"
    content_id: str = ""


HTML = {"html_body": '<p><img src="cid:logo@example.com"></p>'}


def violations_of(**overrides: Any) -> dict[str, str]:
    """Field path -> description (all of them) for a request expected to fail."""
    with pytest.raises(InvalidArgument) as info:
        validate_send(**request(**overrides))
    return {v.field: v.description for v in info.value.violations}


def test_valid_request_returns_parsed_content() -> None:
    content = validate_send(**request(
        to=["A <a@example.com>"], cc=["c@example.com"], bcc=["b@example.com"],
        reply_to='"Support, Team" <help@example.com>', html_body="<p>Hi</p>",
        headers={"X-Campaign": "spring"}, tags=["welcome"], metadata={"user": "42"},
    ))
    assert content == EmailContent(
        from_address=Address("sender@example.com", "Sender"),
        to=(Address("a@example.com", "A"),),
        cc=(Address("c@example.com"),),
        bcc=(Address("b@example.com"),),
        reply_to=Address("help@example.com", "Support, Team"),
        subject="Hello",
        text_body="Hi there",
        html_body="<p>Hi</p>",
        headers={"X-Campaign": "spring"},
        tags=("welcome",),
        metadata={"user": "42"},
    )


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"to": [], "bcc": ["b@example.com"]}, id="bcc_only_recipient"),
        pytest.param({"to": [], "cc": ["c@example.com"]}, id="cc_only_recipient"),
        pytest.param({"to": ["a@example.com", "A@EXAMPLE.com"], "bcc": ["a@example.com"]}, id="duplicate_recipients"),
        pytest.param({"text_body": "", "html_body": "<p>x</p>"}, id="html_only"),
        pytest.param({"subject": ""}, id="empty_subject"),
        pytest.param({"subject": "Tab\tin subject"}, id="tab_in_subject"),
        pytest.param({"subject": "Grüße 👋"}, id="unicode_subject"),
        pytest.param({"subject": "s" * 998}, id="subject_at_limit"),
        pytest.param({"to": [f"u{i}@example.com" for i in range(50)]}, id="fifty_recipients"),
        pytest.param({"headers": {"X-Custom": "ok", "List-Unsubscribe": "<mailto:u@example.com>"}}, id="custom_headers"),
        pytest.param({"headers": {"X-Empty": ""}}, id="empty_header_value"),
        pytest.param({"headers": {"X-Unicode": "bär"}}, id="unicode_header_value"),
        pytest.param({"headers": {"X-Long": "v" * 998}}, id="header_value_at_limit"),
        pytest.param({"tags": ["t"] * 20}, id="twenty_tags"),
        pytest.param({"metadata": {"k" * 128: "v" * 1024}}, id="metadata_at_limits"),
    ],
)
def test_accepts(overrides: dict[str, Any]) -> None:
    assert isinstance(validate_send(**request(**overrides)), EmailContent)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        pytest.param({"from_address": ""}, "from_address", "required", id="from_missing"),
        pytest.param({"from_address": "nope"}, "from_address", "not a valid", id="from_invalid"),
        pytest.param({"reply_to": "a@example.com, b@example.com"}, "reply_to", "exactly one", id="reply_to_list"),
        pytest.param({"to": []}, "to", "at least one recipient", id="no_recipients"),
        pytest.param({"to": ["ok@example.com", "bad"]}, "to[1]", "not a valid", id="bad_to_indexed"),
        pytest.param({"cc": ["x@example.com\r\nBcc: e@example.com"]}, "cc[0]", "control", id="cc_injection"),
        pytest.param({"bcc": ["", "b@example.com"]}, "bcc[0]", "required", id="empty_bcc_entry"),
        pytest.param({"to": [f"u{i}@example.com" for i in range(30)], "bcc": [f"b{i}@example.com" for i in range(21)]},
                     "to", "51 recipients", id="too_many_recipients_across_lists"),
        pytest.param({"text_body": "", "html_body": ""}, "text_body", "text_body, an html_body", id="no_body"),
        pytest.param({"html_body": "<p>\x00</p>"}, "html_body", "NUL", id="nul_in_html"),
        pytest.param({"subject": "Hi\r\nBcc: evil@example.com"}, "subject", "control", id="subject_crlf_injection"),
        pytest.param({"subject": "Hi\nX: y"}, "subject", "control", id="subject_lf"),
        pytest.param({"subject": "Hi\x00"}, "subject", "control", id="subject_nul"),
        pytest.param({"subject": "s" * 999}, "subject", "limit is 998", id="subject_too_long"),
        pytest.param({"headers": {"X-Foo": "a\r\nBcc: evil@example.com"}}, 'headers["X-Foo"]', "control", id="header_value_crlf"),
        pytest.param({"headers": {"X-Foo": "a\nb"}}, 'headers["X-Foo"]', "control", id="header_value_lf"),
        pytest.param({"headers": {"X-Foo": "a\x00"}}, 'headers["X-Foo"]', "control", id="header_value_nul"),
        pytest.param({"headers": {"X-Foo": "v" * 999}}, 'headers["X-Foo"]', "limit is 998", id="header_value_too_long"),
        pytest.param({"headers": {"X Foo": "v"}}, 'headers["X Foo"]', "RFC 5322", id="header_name_space"),
        pytest.param({"headers": {"X-Foo:": "v"}}, 'headers["X-Foo:"]', "RFC 5322", id="header_name_colon"),
        pytest.param({"headers": {"": "v"}}, 'headers[""]', "RFC 5322", id="header_name_empty"),
        pytest.param({"headers": {"X-Fö": "v"}}, 'headers["X-Fö"]', "RFC 5322", id="header_name_non_ascii"),
        pytest.param({"headers": {"X-Foo\r\nBcc": "v"}}, 'headers["X-Foo\\r\\nBcc"]', "RFC 5322", id="header_name_crlf_escaped_in_path"),
        pytest.param({"headers": {"X-Foo": "1", "x-foo": "2"}}, 'headers["x-foo"]', "twice", id="header_duplicate_case_insensitive"),
        pytest.param({"headers": {f"X-{i}": "v" for i in range(51)}}, "headers", "limit is 50", id="too_many_headers"),
        pytest.param({"tags": ["ok", "", "x"]}, "tags[1]", "empty", id="empty_tag"),
        pytest.param({"tags": ["a", "b", "t" * 129]}, "tags[2]", "limit is 128", id="tag_too_long"),
        pytest.param({"tags": ["a\nb"]}, "tags[0]", "control", id="tag_control_char"),
        pytest.param({"tags": ["t"] * 21}, "tags", "limit is 20", id="too_many_tags"),
        pytest.param({"metadata": {"k": "v" * 1025}}, 'metadata["k"]', "limit is 1024", id="metadata_value_too_long"),
        pytest.param({"metadata": {"k" * 129: "v"}}, f'metadata["{"k" * 129}"]', "limit is 128", id="metadata_key_too_long"),
        pytest.param({"metadata": {"": "v"}}, 'metadata[""]', "empty", id="metadata_key_empty"),
        pytest.param({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata", "limit is 50", id="too_many_metadata"),
    ],
)
def test_rejects(overrides: dict[str, Any], field: str, fragment: str) -> None:
    found = violations_of(**overrides)
    assert field in found, found
    assert fragment in found[field]


@pytest.mark.parametrize(
    "name",
    [
        "From", "to", "CC", "Bcc", "Reply-To", "subject", "Message-ID", "message-id", "Date",
        "MIME-Version", "Content-Type", "content-transfer-encoding", "Content-Disposition",
        "Content-Anything", "DKIM-Signature", "Received", "Return-Path", "Sender",
        "Resent-Bcc", "Resent-From", "Orig-Date",
    ],
)
def test_rejects_reserved_header_case_insensitively(name: str) -> None:
    found = violations_of(headers={name: "value"})
    assert "set by Postwire" in found[f'headers["{name}"]']


def test_collects_every_violation_at_once() -> None:
    found = violations_of(
        from_address="", to=["bad"], subject="a\r\nb", text_body="", headers={"To": "x"},
        tags=[""], metadata={"": "v"},
    )
    assert set(found) == {
        "from_address", "to[0]", "subject", "text_body", 'headers["To"]', "tags[0]", 'metadata[""]',
    }


def test_total_size_limit_counts_subject_bodies_headers_and_metadata() -> None:
    limits = SendLimits(max_total_bytes=20)
    ok = request(subject="12345", text_body="12345", headers={"X-A": "12"}, metadata={"k": "1234"})
    validate_send(**ok, limits=limits)  # 5 + 5 + 3 + 2 + 1 + 4 = 20 bytes
    with pytest.raises(InvalidArgument) as info:
        validate_send(**{**ok, "metadata": {"k": "12345"}}, limits=limits)
    [violation] = info.value.violations
    assert violation.field == "text_body"
    assert "21 bytes" in violation.description


def test_total_size_counts_utf8_bytes_and_blames_the_larger_body() -> None:
    limits = SendLimits(max_total_bytes=10)
    with pytest.raises(InvalidArgument) as info:
        validate_send(**request(subject="", text_body="é", html_body="ééééé"), limits=limits)
    [violation] = info.value.violations
    assert violation.field == "html_body"
    assert "12 bytes" in violation.description


def test_default_limits() -> None:
    assert SendLimits() == SendLimits(
        max_recipients=50, max_total_bytes=25 * 1024 * 1024, max_headers=50,
        max_header_value_length=998, max_subject_length=998, max_tags=20, max_tag_length=128,
        max_metadata=50, max_metadata_key_length=128, max_metadata_value_length=1024,
        max_attachments=20,
    )


def test_attachments_become_content_attachments() -> None:
    content = validate_send(**request(**HTML, attachments=[
        Att(),
        Att(filename="logo.png", content_type="image/png", content=bytearray(b"\x89PNG"), content_id="logo@example.com"),
    ]))
    assert content.attachments == (
        Attachment("report.pdf", "application/pdf", b"%PDF-1.7"),
        Attachment("logo.png", "image/png", b"\x89PNG", content_id="logo@example.com"),
    )
    assert isinstance(content.attachments[1].content, bytes)


def test_attachments_default_to_none() -> None:
    assert validate_send(**request()).attachments == ()


def test_accepts_a_protobuf_attachment_message() -> None:
    email_pb2 = pytest.importorskip("postwire.v1.email_pb2")
    if not hasattr(email_pb2, "Attachment"):
        pytest.skip("generated code has no Attachment message")
    message = email_pb2.Attachment(filename="a.txt", content_type="text/plain", content=b"hello")
    content = validate_send(**request(attachments=[message]))
    assert content.attachments == (Attachment("a.txt", "text/plain", b"hello"),)


@pytest.mark.parametrize(
    "attachments",
    [
        pytest.param([Att(filename="Grüße – 报告.pdf")], id="unicode_filename"),
        pytest.param([Att(filename="f" * 255)], id="filename_at_limit"),
        pytest.param([Att(filename="my report (final).v2.pdf")], id="filename_with_spaces_and_dots"),
        pytest.param([Att(content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")],
                     id="long_content_type"),
        pytest.param([Att(content_type="Text/CSV")], id="content_type_case"),
        pytest.param([Att(content_type="text/plain", content=b"\x00\xff")], id="binary_content"),
        pytest.param([Att(filename=f"f{i}.pdf") for i in range(20)], id="twenty_attachments"),
        pytest.param([Att(filename="same.pdf"), Att(filename="same.pdf")], id="duplicate_filenames"),
    ],
)
def test_accepts_attachments(attachments: list[Att]) -> None:
    assert len(validate_send(**request(attachments=attachments)).attachments) == len(attachments)


@pytest.mark.parametrize(
    "content_id",
    ["logo", "logo@example.com", "part1.06090408.01060107@example.com", "a!#$%&'*+/=?^_`{|}~-b"],
)
def test_accepts_content_ids(content_id: str) -> None:
    content = validate_send(**request(**HTML, attachments=[Att(content_id=content_id)]))
    assert content.attachments[0].content_id == content_id


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        pytest.param({"attachments": [Att(filename="")]}, "attachments[0].filename", "required", id="filename_missing"),
        pytest.param({"attachments": [Att(filename="  ")]}, "attachments[0].filename", "required", id="filename_blank"),
        pytest.param({"attachments": [Att(), Att(filename="a\r\nContent-Type: text/html")]},
                     "attachments[1].filename", "control", id="filename_crlf"),
        pytest.param({"attachments": [Att(filename="a\x00.pdf")]}, "attachments[0].filename", "control", id="filename_nul"),
        pytest.param({"attachments": [Att(filename="a\tb.pdf")]}, "attachments[0].filename", "control", id="filename_tab"),
        pytest.param({"attachments": [Att(filename="../etc/passwd")]}, "attachments[0].filename", "'/'",
                     id="filename_slash"),
        pytest.param({"attachments": [Att(filename="C:\\x.pdf")]}, "attachments[0].filename", "'/'",
                     id="filename_backslash"),
        pytest.param({"attachments": [Att(filename="..")]}, "attachments[0].filename", "'..'", id="filename_dotdot"),
        pytest.param({"attachments": [Att(filename="f" * 256)]}, "attachments[0].filename", "limit is 255",
                     id="filename_too_long"),
        pytest.param({"attachments": [Att(content_type="")]}, "attachments[0].content_type", "required",
                     id="content_type_missing"),
        pytest.param({"attachments": [Att(content_type="pdf")]}, "attachments[0].content_type", "MIME type",
                     id="content_type_no_subtype"),
        pytest.param({"attachments": [Att(content_type="text/plain; charset=utf-8")]}, "attachments[0].content_type",
                     "no parameters", id="content_type_with_parameters"),
        pytest.param({"attachments": [Att(content_type="text/plain\r\nX: y")]}, "attachments[0].content_type",
                     "MIME type", id="content_type_crlf"),
        pytest.param({"attachments": [Att(content_type="image/pngé")]}, "attachments[0].content_type",
                     "MIME type", id="content_type_non_ascii"),
        pytest.param({"attachments": [Att(content_type="a/b/c")]}, "attachments[0].content_type", "MIME type",
                     id="content_type_two_slashes"),
        pytest.param({"attachments": [Att(content_type="multipart/mixed")]}, "attachments[0].content_type",
                     "cannot be attached", id="content_type_multipart"),
        pytest.param({"attachments": [Att(content_type="message/rfc822")]}, "attachments[0].content_type",
                     "cannot be attached", id="content_type_message"),
        pytest.param({"attachments": [Att(content=b"")]}, "attachments[0].content", "empty", id="content_empty"),
        pytest.param({"attachments": [Att(content="text")]}, "attachments[0].content", "bytes",  # type: ignore[arg-type]
                     id="content_not_bytes"),
        pytest.param({"attachments": [Att(content_id="logo@example.com")]}, "attachments[0].content_id",
                     "html_body", id="inline_without_html"),
        pytest.param({**HTML, "attachments": [Att(content_id="<logo@example.com>")]}, "attachments[0].content_id",
                     "bare id", id="content_id_with_brackets"),
        pytest.param({**HTML, "attachments": [Att(content_id="my logo")]}, "attachments[0].content_id",
                     "bare id", id="content_id_with_space"),
        pytest.param({**HTML, "attachments": [Att(content_id="a\r\nBcc: x@y.z")]}, "attachments[0].content_id",
                     "bare id", id="content_id_crlf"),
        pytest.param({**HTML, "attachments": [Att(content_id="lögo")]}, "attachments[0].content_id",
                     "bare id", id="content_id_non_ascii"),
        pytest.param({**HTML, "attachments": [Att(content_id="x" * 256)]}, "attachments[0].content_id",
                     "limit is 255", id="content_id_too_long"),
        pytest.param({**HTML, "attachments": [Att(content_id="logo"), Att(), Att(content_id="LOGO")]},
                     "attachments[2].content_id", "twice", id="content_id_duplicate"),
        pytest.param({"attachments": [Att(filename=f"f{i}.pdf") for i in range(21)]}, "attachments", "limit is 20",
                     id="too_many_attachments"),
    ],
)
def test_rejects_attachments(overrides: dict[str, Any], field: str, fragment: str) -> None:
    found = violations_of(**overrides)
    assert field in found, found
    assert fragment in found[field]


def test_attachment_violations_collected_with_the_rest() -> None:
    found = violations_of(subject="a\nb", attachments=[
        Att(filename="", content_type="bad", content=b"", content_id="logo"),
    ])
    assert set(found) == {
        "subject", "attachments[0].filename", "attachments[0].content_type",
        "attachments[0].content", "attachments[0].content_id",
    }


def test_total_size_counts_attachments_base64_encoded() -> None:
    limits = SendLimits(max_total_bytes=20)
    # 2 + 6 bytes of subject and body; 6 bytes of attachment are 8 in base64, 1 byte is 4.
    ok = request(subject="12", text_body="123456", attachments=[Att(content=b"123456"), Att(content=b"1")])
    content = validate_send(**ok, limits=limits)
    assert len(content.attachments) == 2
    with pytest.raises(InvalidArgument) as info:  # 7 bytes encode to 12: 2 + 6 + 12 + 4 = 24
        validate_send(**{**ok, "attachments": [Att(content=b"1234567"), Att(content=b"1")]}, limits=limits)
    [violation] = info.value.violations
    assert violation.field == "attachments"
    assert "24 bytes" in violation.description
    assert "attachments" in violation.description


def test_total_size_blames_the_body_when_it_outweighs_the_attachments() -> None:
    limits = SendLimits(max_total_bytes=20)
    with pytest.raises(InvalidArgument) as info:
        validate_send(**request(subject="", text_body="x" * 17, attachments=[Att(content=b"1")]), limits=limits)
    [violation] = info.value.violations
    assert violation.field == "text_body"
    assert "21 bytes" in violation.description
