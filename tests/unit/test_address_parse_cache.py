"""parse_address caches valid mailboxes; invalid ones are refused every time."""

import pytest

from core.emails.addresses import parse_address
from core.errors import InvalidArgument


def test_repeated_valid_address_parses_to_the_same_mailbox() -> None:
    first = parse_address('"Ann" <ann@example.com>', "from")
    assert parse_address('"Ann" <ann@example.com>', "from") == first
    assert first.email == "ann@example.com" and first.name == "Ann"


def test_repeated_invalid_address_is_refused_each_time_on_its_own_field() -> None:
    for field in ("from", "reply_to"):
        with pytest.raises(InvalidArgument) as caught:
            parse_address("not an address <", field)
        assert caught.value.violations[0].field == field


def test_unhashable_value_is_refused_not_a_type_error() -> None:
    with pytest.raises(InvalidArgument):
        parse_address(["a@example.com"], "from")  # type: ignore[arg-type]
