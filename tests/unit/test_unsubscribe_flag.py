"""Send's `unsubscribe` flag: validation, the account default, the stored form, and
what a one-click POST body must be."""

from __future__ import annotations

from typing import Any

import pytest

from core.emails.content import content_from_dict, content_to_dict
from core.emails.validation import validate_send
from core.errors import InvalidArgument
from core.returns.unsubscribe import check_body, resolve


def send(unsubscribe: bool | None, to: tuple[str, ...] = ("a@example.org",), **more: Any) -> Any:
    fields: dict[str, Any] = {"from_address": "n@example.com", "to": to, "cc": (), "bcc": (), "reply_to": "",
                              "subject": "s", "text_body": "t", "html_body": "", "headers": {}, "tags": (),
                              "metadata": {}}
    fields.update(more)
    return validate_send(**fields, unsubscribe=unsubscribe)


@pytest.mark.parametrize("lists", [{"to": ("a@example.org", "b@example.org")}, {"cc": ("b@example.org",)},
                                   {"bcc": ("b@example.org",)}])
def test_true_with_several_recipients_is_refused(lists: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        send(True, **{"to": ("a@example.org",), **lists})
    [violation] = caught.value.violations
    assert violation.field == "unsubscribe" and "send one email per recipient" in violation.description


@pytest.mark.parametrize("value", [True, False, None])
def test_one_recipient_keeps_the_choice(value: bool | None) -> None:
    assert send(value).unsubscribe is value


def test_false_or_unset_with_several_recipients_is_fine() -> None:
    assert send(False, ("a@example.org", "b@example.org")).unsubscribe is False
    assert send(None, ("a@example.org", "b@example.org")).unsubscribe is None


def test_stored_only_when_on() -> None:
    assert content_from_dict(content_to_dict(send(True))).unsubscribe is True
    assert "unsubscribe" not in content_to_dict(send(False))
    assert not content_from_dict(content_to_dict(send(False))).unsubscribe


class Defaults:
    def __init__(self, on: bool) -> None:
        self.on = on
        self.asked = 0

    async def get(self, account_id: int) -> bool:
        self.asked += 1
        return self.on


async def test_the_account_default_applies_to_single_recipient_emails_only() -> None:
    on = Defaults(True)
    assert (await resolve(send(None), 1, on)).unsubscribe is True  # type: ignore[arg-type]
    assert (await resolve(send(None, ("a@example.org", "b@example.org")), 1, on)).unsubscribe is False  # type: ignore[arg-type]
    assert (await resolve(send(False), 1, on)).unsubscribe is False  # type: ignore[arg-type]
    assert (await resolve(send(None), 1, Defaults(False))).unsubscribe is False  # type: ignore[arg-type]
    assert (await resolve(send(None), 1, None)).unsubscribe is False


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
    ("application/x-www-form-urlencoded; charset=utf-8", b"List-Unsubscribe=One-Click\r\n"),
    ("", b"List-Unsubscribe=One-Click"),
    ("multipart/form-data; boundary=xx",
     b'--xx\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--xx--\r\n'),
])
def test_one_click_bodies(content_type: str, body: bytes) -> None:
    check_body(content_type, body)


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=Yes"),
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click"),
    ("application/json", b'{"List-Unsubscribe": "One-Click"}'),
    ("application/x-www-form-urlencoded", b"\xff\xfe"),
    ("multipart/form-data; boundary=xx", b"--xx--\r\n"),
    ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&" + b"x" * 70_000),
])
def test_other_bodies_are_invalid(content_type: str, body: bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_body(content_type, body)
    assert caught.value.violations[0].field == "body"


def test_own_list_unsubscribe_headers_conflict_with_true_and_win_over_the_default() -> None:
    own = {"list-unsubscribe": "<mailto:leave@example.com>"}
    with pytest.raises(InvalidArgument) as caught:
        send(True, headers=own)
    assert caught.value.violations[0].field == 'headers["list-unsubscribe"]'
    assert send(False, headers=own).headers == own


async def test_the_default_leaves_emails_with_their_own_headers_alone() -> None:
    content = send(None, headers={"List-Unsubscribe": "<mailto:leave@example.com>"})
    assert (await resolve(content, 1, Defaults(True))).unsubscribe is False  # type: ignore[arg-type]
