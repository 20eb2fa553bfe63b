"""Return tokens (core/returns/tokens.py): genuine tokens read back; anything altered
is refused, including spellings that decode to the same bytes."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from core.returns.tokens import BOUNCE, UNSUBSCRIBE, Claim, Tokens

TOKENS = Tokens("unit-test-secret")
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

claims = st.builds(
    Claim,
    st.sampled_from([BOUNCE, UNSUBSCRIBE]),
    st.integers(0, 2**32 - 1),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=24).map(lambda s: "msg_" + s),
    st.integers(-1, 2**15 - 1),
)


@given(claims)
def test_a_genuine_token_reads_back_its_claim(claim: Claim) -> None:
    assert TOKENS.read(TOKENS.make(claim), claim.kind) == claim


@given(claims, st.data())
def test_every_other_last_character_is_refused(claim: Claim, data: st.DataObject) -> None:
    """The last base32 character carries unused low bits: a token that differs only
    there decodes to the same bytes, yet it is not the token we issued."""
    token = TOKENS.make(claim)
    other = data.draw(st.sampled_from([c for c in ALPHABET if c != token[-1]]))
    assert TOKENS.read(token[:-1] + other, claim.kind) is None


def test_a_token_differing_only_in_unused_bits_is_refused() -> None:
    claim = Claim(UNSUBSCRIBE, 7, "msg_abcdefghijklmnopqrstuvwx", 0)
    token = TOKENS.make(claim)
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    variants = [token[:-1] + c for c in ALPHABET if c != token[-1]]
    same_bytes = [v for v in variants if base64.b32decode(v.upper() + "=" * (-len(v) % 8)) == raw]
    assert same_bytes, "this claim's token has unused bits in its last character"
    assert all(TOKENS.read(v, UNSUBSCRIBE) is None for v in same_bytes)


def test_the_kind_is_part_of_the_signature() -> None:
    claim = Claim(BOUNCE, 1, "msg_x", -1)
    assert TOKENS.read(TOKENS.make(claim), UNSUBSCRIBE) is None
