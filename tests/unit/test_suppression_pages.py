"""Pure pieces of the suppression API: page tokens bound to their filters, address
and filter validation, normalization."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import InvalidArgument
from core.suppressions import pages
from core.suppressions.manager import check_reason, filters, parse
from core.suppressions.pages import Filters, Position

T = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def test_a_token_round_trips_its_position_to_the_microsecond() -> None:
    wanted = Filters("hard_bounce", T - timedelta(days=1), None, "ada")
    position = Position(T, "ada@xn--bcher-kva.example")
    token = pages.encode(wanted, position)
    assert token.isascii() and "ada" not in token and "=" not in token
    assert pages.decode(token, wanted) == position
    assert pages.decode(token, Filters("hard_bounce", T - timedelta(days=1), None, "ada")) == position


@pytest.mark.parametrize("other", [
    Filters(), Filters("complaint", T - timedelta(days=1), None, "ada"),
    Filters("hard_bounce", T - timedelta(days=1, microseconds=1), None, "ada"),
    Filters("hard_bounce", T - timedelta(days=1), T, "ada"), Filters("hard_bounce", T - timedelta(days=1), None, "ad"),
])
def test_a_token_is_refused_with_other_filters(other: Filters) -> None:
    token = pages.encode(Filters("hard_bounce", T - timedelta(days=1), None, "ada"), Position(T, "a@example.com"))
    with pytest.raises(InvalidArgument) as caught:
        pages.decode(token, other)
    assert caught.value.violations[0].field == "page_token"
    assert "other filters" in caught.value.violations[0].description


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    "garbage!", "²", "x" * 2000, _raw([1, 2]), _raw({"v": 2, "f": Filters().fingerprint(), "t": 0, "a": ""}),
    _raw({"v": 1, "f": Filters().fingerprint(), "t": "0", "a": ""}), _raw({"v": 1, "t": 0, "a": ""}),
    _raw({"v": 1, "f": Filters().fingerprint(), "t": 10**30, "a": ""}), base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_anything_else_is_not_a_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        pages.decode(token, Filters())
    assert caught.value.violations[0].field == "page_token"


@pytest.mark.parametrize(("given", "stored"), [
    ("User@EXAMPLE.com", "user@example.com"),
    ("  ada@example.org ", "ada@example.org"),
    ("ada@Bücher.example", "ada@xn--bcher-kva.example"),
    ("ada@XN--BCHER-KVA.example", "ada@xn--bcher-kva.example"),
    ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
])
def test_addresses_are_stored_normalized(given: str, stored: str) -> None:
    assert parse(given, "address") == stored


@pytest.mark.parametrize("given", ["", " ", "nope", "a@b@example.com", "Ada <ada@example.com>", "a\x00@example.com",
                                   "a,b@example.com"])
def test_invalid_addresses_name_the_field(given: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(given, "addresses[3]")
    assert [v.field for v in caught.value.violations] == ["addresses[3]"]


def test_reasons_and_filters_are_checked() -> None:
    assert check_reason(" asked\tby phone ") == "asked\tby phone"
    for bad in ("x" * 1001, "a\nb", "\x00"):
        with pytest.raises(InvalidArgument):
            check_reason(bad)
    assert filters(address_prefix="Bob@Bücher") == Filters(address_prefix="bob@xn--bcher-kva")
    assert filters(address_prefix="BOB") == Filters(address_prefix="bob")
    with pytest.raises(InvalidArgument) as caught:
        filters("nope", T, T, "x" * 321)
    assert [v.field for v in caught.value.violations] == ["kind", "created_before", "address_prefix"]
