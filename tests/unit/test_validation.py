"""core.validation: every violation reported at once, with precise field paths."""

from __future__ import annotations

from typing import Any

import pytest

from core.content import Address, EmailContent
from core.errors import InvalidArgument
from core.validation import SendLimits, validate_send


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
    )
