"""core.emails.submission.parse_submission: a message submitted over SMTP, checked like Send."""

from __future__ import annotations

import hashlib

import pytest

from core.emails.content import (
    Address,
    EmailContent,
    content_from_dict,
    content_to_dict,
)
from core.emails.mime import envelope_recipients, requires_smtputf8
from core.emails.submission import parse_submission
from core.emails.validation import SendLimits
from core.errors import InvalidArgument

LIMITS = SendLimits()
RCPT = ["rcpt@example.org"]


def msg(*headers: str, body: str = "Hello.\r\n") -> bytes:
    lines = headers or ("From: Sender <sender@example.com>", "To: to@example.org", "Subject: Hi")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


def refused(raw: bytes, rcpts: list[str] = RCPT, limits: SendLimits = LIMITS, **kw: object) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as info:
        parse_submission(raw, "sender@example.com", rcpts, limits, **kw)  # type: ignore[arg-type]
    return {v.field: v.description for v in info.value.violations}


def test_a_plain_message_becomes_raw_content_with_envelope_recipients_in_bcc() -> None:
    raw = msg()
    content, options = parse_submission(raw, "bounce@example.com", ["Hidden@Example.org", "a@example.org"], LIMITS)
    assert content.from_address == Address("sender@example.com", "Sender")
    assert content.subject == "Hi"
    assert content.to == () and content.cc == ()
    assert [a.email for a in content.bcc] == ["a@example.org", "Hidden@example.org"]  # sorted
    assert envelope_recipients(content) == ["a@example.org", "Hidden@example.org"]
    assert content.raw == raw and content.text_body == "" and content.headers == {}
    assert content.unsubscribe is None  # the account's default decides
    assert not requires_smtputf8(content)
    assert options.idempotency_key.startswith("smtp-sha256:")


def test_raw_survives_the_stored_json_and_is_absent_when_empty() -> None:
    content, _ = parse_submission(msg(), "", RCPT, LIMITS)
    assert content_from_dict(content_to_dict(content)) == content
    assert "raw" not in content_to_dict(EmailContent(from_address=content.from_address, text_body="x"))


def test_from_header_is_required() -> None:
    assert "from" in refused(msg("To: to@example.org", "Subject: Hi"))


@pytest.mark.parametrize("value", [
    "not an address", "a@example.com, b@example.com", "Group: a@example.com;", "<>", "user@", "a@b@example.com",
])
def test_from_must_be_one_valid_mailbox(value: str) -> None:
    assert "from" in refused(msg(f"From: {value}", "Subject: Hi"))


def test_from_given_twice_is_refused() -> None:
    assert "header:From" in refused(msg("From: a@example.com", "From: b@example.com", "Subject: Hi"))


def test_encoded_display_name_is_decoded_and_checked() -> None:
    content, _ = parse_submission(msg("From: =?utf-8?q?J=C3=B6rg?= <j@example.com>"), "", RCPT, LIMITS)
    assert content.from_address == Address("j@example.com", "Jörg")
    assert "from" in refused(msg("From: =?utf-8?q?a=0D=0ABcc=3A_x?= <j@example.com>"))


@pytest.mark.parametrize("rcpts", [[], ["bad"], ["ok@example.org", "two@@example.org"]])
def test_envelope_recipients_are_validated_like_send(rcpts: list[str]) -> None:
    fields = refused(msg(), rcpts)
    assert any(f == "rcpt" or f.startswith("rcpt[") for f in fields), fields


def test_too_many_envelope_recipients() -> None:
    fields = refused(msg(), [f"r{i}@example.org" for i in range(3)], SendLimits(max_recipients=2))
    assert "limit is 2" in fields["rcpt"]


@pytest.mark.parametrize("header", [
    "Subject: Hi\rBcc: victim@example.org",  # bare CR
    "Subject: Hi\nBcc: victim@example.org",  # bare LF in a CRLF message
    "X-Note: a\x00b",
    "X-Note: a\x01b",
])
def test_header_injection_and_control_characters_are_refused(header: str) -> None:
    fields = refused(msg("From: s@example.com", "To: t@example.org", header))
    assert any(f.startswith("header:") for f in fields), fields


def test_nul_in_the_body_is_refused() -> None:
    assert "body" in refused(msg(body="a\x00b\r\n"))


def test_header_lines_are_limited_to_998_octets() -> None:
    line = "X-Long: " + "a" * (998 - len("X-Long: "))
    parse_submission(msg("From: s@example.com", line), "", RCPT, LIMITS)  # exactly 998: fine
    assert "998" in refused(msg("From: s@example.com", line + "a"))["header:X-Long"]
    folded = "X-Long: " + "a" * 900 + "\r\n " + "b" * 900  # folded: each line within the limit
    parse_submission(msg("From: s@example.com", folded), "", RCPT, LIMITS)


def test_lines_that_are_not_header_fields_are_refused() -> None:
    assert "header" in refused(msg("From: s@example.com", "no colon here"))
    assert "header" in refused(msg(" starts folded", "From: s@example.com"))
    assert "header" in refused(msg("From: s@example.com", "Bad Name: x"))


def test_non_ascii_header_bytes_need_smtputf8() -> None:
    raw = msg("From: s@example.com", "Subject: héllo")
    assert "SMTPUTF8" in refused(raw)["header:Subject"]
    content, _ = parse_submission(raw, "s@example.com", RCPT, LIMITS, smtputf8=True)
    assert content.subject == "héllo" and requires_smtputf8(content)
    assert "UTF-8" in refused(b"From: s@example.com\r\nSubject: \xff\r\n\r\nx", smtputf8=True)["header:Subject"]


def test_smtputf8_address_is_accepted_and_inferred_from_the_envelope() -> None:
    raw = msg("From: Jörg <jörg@exämple.com>", "To: ünï@example.org", "Subject: Grüße")
    content, _ = parse_submission(raw, "jörg@exämple.com", ["ünï@example.org"], LIMITS)
    assert content.from_address == Address("jörg@exämple.com", "Jörg")
    assert content.bcc == (Address("ünï@example.org"),)
    assert content.subject == "Grüße" and requires_smtputf8(content)


def test_encoded_words_keep_an_ascii_message_ascii() -> None:
    content, _ = parse_submission(msg("From: s@example.com", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?="), "", RCPT, LIMITS)
    assert content.subject == "Grüße" and not requires_smtputf8(content)


def test_subject_is_decoded_and_unfolded_and_limited() -> None:
    content, _ = parse_submission(msg("From: s@example.com", "Subject: part one\r\n part two"), "", RCPT, LIMITS)
    assert content.subject == "part one part two"
    assert "header:Subject" in refused(msg("From: s@example.com", "Subject: " + "x" * 20), limits=SendLimits(max_subject_length=10))


def test_size_limit_is_checked_first() -> None:
    raw = msg(body="x" * 2000)
    fields = refused(raw + b"\x00", [], SendLimits(max_total_bytes=1000))
    assert list(fields) == ["size"] and "limit is 1000" in fields["size"]
    parse_submission(raw, "", RCPT, SendLimits(max_total_bytes=len(raw)))


def test_lf_only_messages_are_converted_to_crlf() -> None:
    content, _ = parse_submission(b"From: s@example.com\nSubject: Hi\n\nline 1\nline 2\n", "", RCPT, LIMITS)
    assert content.raw == b"From: s@example.com\r\nSubject: Hi\r\n\r\nline 1\r\nline 2\r\n"


def test_postwire_headers_become_tags_and_metadata_and_are_removed() -> None:
    raw = msg("From: s@example.com", "X-Postwire-Tags: welcome, onboarding ,", "Subject: Hi",
              "X-Postwire-Metadata: user=42; plan = pro", "x-postwire-tags: more")
    content, _ = parse_submission(raw, "", RCPT, LIMITS)
    assert content.tags == ("welcome", "onboarding", "more")
    assert content.metadata == {"user": "42", "plan": "pro"}
    assert content.raw == msg("From: s@example.com", "Subject: Hi")


def test_metadata_as_a_json_object() -> None:
    raw = msg("From: s@example.com", 'X-Postwire-Metadata: {"user": 42, "plan": "pro; gold"}')
    content, _ = parse_submission(raw, "", RCPT, LIMITS)
    assert content.metadata == {"user": "42", "plan": "pro; gold"}


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '{"a": {"b": 1}}', "novalue", "a=1; a=2"])
def test_bad_metadata_is_refused(value: str) -> None:
    assert "header:X-Postwire-Metadata" in refused(msg("From: s@example.com", f"X-Postwire-Metadata: {value}"))


def test_tag_and_metadata_limits_are_sends() -> None:
    limits = SendLimits(max_tags=2, max_tag_length=5, max_metadata=1, max_metadata_value_length=3)
    assert "limit is 2" in refused(msg("From: s@example.com", "X-Postwire-Tags: a, b, c"), limits=limits)["header:X-Postwire-Tags"]
    assert "limit is 5" in refused(msg("From: s@example.com", "X-Postwire-Tags: toolong"), limits=limits)["header:X-Postwire-Tags"]
    assert "limit is 1" in refused(msg("From: s@example.com", "X-Postwire-Metadata: a=1; b=2"), limits=limits)["header:X-Postwire-Metadata"]
    assert "limit is 3" in refused(msg("From: s@example.com", "X-Postwire-Metadata: a=1234"), limits=limits)["header:X-Postwire-Metadata"]


def test_idempotency_key_from_message_id_names_the_envelope() -> None:
    raw = msg("From: s@example.com", "Message-ID: <abc.123@client.example>")
    _, first = parse_submission(raw, "s@example.com", ["b@example.org", "a@example.org"], LIMITS)
    _, again = parse_submission(raw, "other@example.com", ["a@example.org", "b@example.org"], LIMITS)
    _, split = parse_submission(raw, "s@example.com", ["c@example.org"], LIMITS)
    assert first.idempotency_key.startswith("smtp-msgid:abc.123@client.example rcpt:")
    assert again.idempotency_key == first.idempotency_key  # a resubmission replays
    assert split.idempotency_key != first.idempotency_key  # a batch of other recipients is its own email
    long_id = "x" * 300 + "@example.com"
    _, long = parse_submission(msg("From: s@example.com", f"Message-ID: <{long_id}>"), "", RCPT, LIMITS)
    assert long.idempotency_key.startswith("smtp-msgid:sha256:") and len(long.idempotency_key) <= 200


def test_idempotency_key_without_message_id_hashes_envelope_and_bytes() -> None:
    raw = msg()
    _, options = parse_submission(raw, "s@example.com", ["b@example.org", "a@example.org"], LIMITS)
    expected = hashlib.sha256(b"s@example.com\0a@example.org\0b@example.org\0" + raw).hexdigest()
    assert options.idempotency_key == f"smtp-sha256:{expected}"
    _, same = parse_submission(raw, "s@example.com", ["a@example.org", "b@example.org"], LIMITS)
    _, other = parse_submission(raw + b"x", "s@example.com", ["a@example.org", "b@example.org"], LIMITS)
    assert same.idempotency_key == options.idempotency_key != other.idempotency_key


def test_own_list_unsubscribe_is_kept_and_turns_the_default_off() -> None:
    raw = msg("From: s@example.com", "List-Unsubscribe: <mailto:u@example.com>")
    content, _ = parse_submission(raw, "", RCPT, LIMITS)
    assert content.unsubscribe is False and b"List-Unsubscribe: <mailto:u@example.com>" in content.raw


def test_every_problem_is_reported_at_once() -> None:
    fields = refused(msg("Subject: a\rb", "X-Postwire-Tags: " + "t" * 200), ["bad"])
    assert {"from", "header:Subject", "header:X-Postwire-Tags", "rcpt[0]"} <= set(fields)
