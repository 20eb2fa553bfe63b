"""core.emails.addresses: one mailbox per value, injection-proof, every violation reported."""

from __future__ import annotations

import pytest

from core.emails.addresses import ascii_email, parse_address, parse_addresses
from core.emails.content import Address
from core.errors import FieldViolation, InvalidArgument


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("user@example.com", Address("user@example.com"), id="bare_addr_spec"),
        pytest.param("  user@example.com  ", Address("user@example.com"), id="surrounding_space_trimmed"),
        pytest.param("User@EXAMPLE.com", Address("User@example.com"), id="domain_lowercased_local_kept"),
        pytest.param("Jane Doe <jane@example.com>", Address("jane@example.com", "Jane Doe"), id="display_name"),
        pytest.param("Jane   Doe<jane@example.com>", Address("jane@example.com", "Jane Doe"), id="name_spaces_collapsed"),
        pytest.param("<jane@example.com>", Address("jane@example.com"), id="angle_brackets_only"),
        pytest.param("Jane < jane@example.com >", Address("jane@example.com", "Jane"), id="space_inside_brackets"),
        pytest.param('"Doe, John" <j@example.com>', Address("j@example.com", "Doe, John"), id="quoted_name_with_comma"),
        pytest.param(r'"Say \"hi\"" <j@example.com>', Address("j@example.com", 'Say "hi"'), id="quoted_name_escapes"),
        pytest.param('"A <b> C" <j@example.com>', Address("j@example.com", "A <b> C"), id="quoted_name_with_brackets"),
        pytest.param("John Q. Public <j@example.com>", Address("j@example.com", "John Q. Public"), id="period_in_name"),
        pytest.param("Zoë Ünïcode <z@example.com>", Address("z@example.com", "Zoë Ünïcode"), id="unicode_name"),
        pytest.param("a@BÜCHER.example", Address("a@bücher.example"), id="idn_domain_normalised"),
        pytest.param("a@xn--bcher-kva.example", Address("a@bücher.example"), id="punycode_domain_to_unicode"),
        pytest.param("用户@例子.广告", Address("用户@例子.广告"), id="smtputf8_local_part"),
        pytest.param("x.y+tag@sub.example.co.uk", Address("x.y+tag@sub.example.co.uk"), id="plus_and_dots"),
    ],
)
def test_parse_address_accepts(value: str, expected: Address) -> None:
    assert parse_address(value, "from_address") == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("", "required", id="empty"),
        pytest.param("   ", "required", id="blank"),
        pytest.param("user@example.com\r\nBcc: evil@example.com", "control characters", id="crlf_injection"),
        pytest.param("Jane\n<jane@example.com>", "control characters", id="lf_in_name"),
        pytest.param("jane@example.com\x00", "control characters", id="nul"),
        pytest.param("Jane\x1b <jane@example.com>", "control characters", id="escape_char"),
        pytest.param("Jane\u2028 <jane@example.com>", "control characters", id="unicode_line_separator"),
        pytest.param("Jane <jane@example.com", "angle brackets", id="missing_close_bracket"),
        pytest.param("Jane jane@example.com>", "angle brackets", id="missing_open_bracket"),
        pytest.param("Jane >jane@example.com<", "angle brackets", id="brackets_reversed"),
        pytest.param("Jane <jane@example.com> extra", "closing '>'", id="text_after_bracket"),
        pytest.param("Jane <>", "empty address", id="empty_brackets"),
        pytest.param("a@example.com, b@example.com", "exactly one address", id="comma_separated_list"),
        pytest.param("a@example.com; b@example.com", "exactly one address", id="semicolon_list"),
        pytest.param("a@example.com b@example.com", "exactly one address", id="space_separated_list"),
        pytest.param("A <a@example.com>, B <b@example.com>", "exactly one address", id="two_named_addresses"),
        pytest.param("Jane <a@example.com>, b@example.com", "exactly one address", id="named_then_bare"),
        pytest.param("Doe, John <j@example.com>", "quote it", id="unquoted_comma_in_name"),
        pytest.param("a@b.com <j@example.com>", "must be quoted", id="unquoted_at_in_name"),
        pytest.param('"Doe, John <j@example.com>', "no closing quote", id="unterminated_quote"),
        pytest.param('"A" <a@example.com>, "B" <b@example.com>', "exactly one address", id="two_quoted_addresses"),
        pytest.param('"A" a@example.com', "give one <address>", id="quoted_name_without_brackets"),
        pytest.param('Jane "J" <j@example.com>', "whole name", id="partly_quoted_name"),
        pytest.param('"Doe" John <j@example.com>', "give one <address>", id="text_after_quoted_name"),
        pytest.param("not-an-address", "not a valid email address", id="no_at_sign"),
        pytest.param("user@", "not a valid email address", id="no_domain"),
        pytest.param("@example.com", "not a valid email address", id="no_local_part"),
        pytest.param("user@localhost", "not a valid email address", id="single_label_domain"),
        pytest.param("a@@example.com", "exactly one address", id="double_at"),
        pytest.param("user@exa_mple.com", "not a valid email address", id="bad_domain_char"),
    ],
)
def test_parse_address_rejects(value: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_address(value, "reply_to")
    [violation] = info.value.violations
    assert violation.field == "reply_to"
    assert fragment in violation.description


def test_parse_addresses_returns_tuple_in_order() -> None:
    assert parse_addresses(["a@example.com", "B <b@example.com>"], "to") == (
        Address("a@example.com"),
        Address("b@example.com", "B"),
    )


def test_parse_addresses_collects_every_violation_with_index() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_addresses(["ok@example.com", "bad", "ok2@example.com", "x\r\n@example.com"], "cc")
    assert [v.field for v in info.value.violations] == ["cc[1]", "cc[3]"]
    assert all(isinstance(v, FieldViolation) for v in info.value.violations)


def test_parse_addresses_of_nothing_is_empty() -> None:
    assert parse_addresses([], "bcc") == ()


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        pytest.param("a@example.com", "a@example.com", id="ascii_unchanged"),
        pytest.param("a@bücher.example", "a@xn--bcher-kva.example", id="idn_domain_punycoded"),
        pytest.param("用户@例子.广告", None, id="unicode_local_part_has_no_ascii_form"),
    ],
)
def test_ascii_email(email: str, expected: str | None) -> None:
    assert ascii_email(email) == expected
