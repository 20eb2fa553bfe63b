"""Cursors are opaque and round-trip; API keys are hashed with the server secret."""

from __future__ import annotations

import pytest

from core.errors import InvalidArgument
from core.events.cursor import START, Position, decode_cursor, encode_cursor
from core.keys.manager import PREFIX_LENGTH, generate_key, hash_key


@pytest.mark.parametrize("position", [Position(0, 1), Position(7, 42), Position(2**62, 2**62)])
def test_cursor_round_trips(position: Position) -> None:
    assert decode_cursor(encode_cursor(position)) == position


def test_empty_cursor_means_the_start() -> None:
    assert decode_cursor("") == START


def test_legacy_id_only_cursor_still_decodes() -> None:
    assert decode_cursor("ZTE6MQ") == 1  # "e1:1", resolved to a position by the event log


def test_positions_order_by_transaction_then_id() -> None:
    assert START < Position(0, 1) < Position(0, 2) < Position(5, 1)


@pytest.mark.parametrize("bad", ["nope", "ZTE6", "MTIz", "ZTE6LTE", "!!!!", "e1:5"])
def test_foreign_cursor_is_invalid_argument_on_after(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_cursor(bad)
    assert caught.value.violations[0].field == "after"


def test_keys_are_prefixed_by_kind_and_unique() -> None:
    live, test = generate_key("live"), generate_key("test")
    assert live.key.startswith("pw_live_") and test.key.startswith("pw_test_")
    assert live.prefix == live.key[:PREFIX_LENGTH]
    assert generate_key().key != generate_key().key


def test_key_hash_depends_on_the_server_secret() -> None:
    key = generate_key().key
    assert hash_key("s1", key) != hash_key("s2", key)
    assert key not in hash_key("s1", key)
    assert len(hash_key("s1", key)) == 64
