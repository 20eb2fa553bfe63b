"""Tracking tokens and machine recognition (core/tracking/tokens.py, machine.py)."""

from __future__ import annotations

import base64

from core.tracking.machine import client_address, detail, machine_reason
from core.tracking.tokens import CLICK, OPEN, Claim, TrackingTokens

TOKENS = TrackingTokens("a server secret of some length")


def test_a_token_reads_back_and_reveals_nothing() -> None:
    claim = Claim(CLICK, 42, "msg_AbCdEfGhIjKlMnOpQrStUvWx", 0, "https://shop.example/cart?id=7")
    token = TOKENS.make(claim)
    assert TOKENS.read(token, CLICK) == claim
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in (b"AbCdEfGh", b"shop.example", b"cart", (42).to_bytes(4, "big")):
        assert secret not in raw and secret.decode("latin-1") not in token


def test_open_tokens_are_not_click_tokens_and_carry_no_url() -> None:
    token = TOKENS.make(Claim(OPEN, 1, "msg_x", -1))
    assert TOKENS.read(token, OPEN) == Claim(OPEN, 1, "msg_x", -1, "")
    assert TOKENS.read(token, CLICK) is None


def test_altered_forged_and_other_secret_tokens_are_refused() -> None:
    token = TOKENS.make(Claim(CLICK, 1, "msg_x", 0, "https://a.example"))
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert TOKENS.read(flipped, CLICK) is None
    assert TOKENS.read(token[:-1], CLICK) is None
    assert TOKENS.read(TrackingTokens("another secret").make(Claim(CLICK, 1, "msg_x", 0, "https://evil.example")), CLICK) is None
    for junk in ("", "short", "x" * 5000, "../../etc/passwd", "a b c" * 20, "é" * 50, "A" * 64):
        assert TOKENS.read(junk, CLICK) is None


def test_machine_recognition() -> None:
    assert machine_reason("17.58.100.1", "Mozilla/5.0", "GET") == "apple-mpp"
    assert machine_reason("203.0.113.9", "Mozilla/5.0 (Windows NT 5.1) GoogleImageProxy", "GET") == "google-image-proxy"
    assert machine_reason("203.0.113.9", "Mozilla/5.0 (Macintosh)", "HEAD") == "head"
    assert machine_reason("203.0.113.9", "Barracuda Sentinel (EE)", "GET") == "scanner"
    assert machine_reason("203.0.113.9", "", "GET") == "no-user-agent"
    assert machine_reason("203.0.113.9", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) AppleWebKit", "GET") == ""


def test_forwarded_for_is_only_trusted_from_trusted_proxies() -> None:
    trusted = frozenset({"127.0.0.1"})
    assert client_address("127.0.0.1", "1.2.3.4, 17.0.0.5", trusted) == "17.0.0.5"
    assert client_address("198.51.100.7", "17.0.0.5", trusted) == "198.51.100.7"


def test_detail_starts_with_first_or_repeat_and_names_machines() -> None:
    assert detail(True, "apple-mpp", "UA; x") == "first; machine: apple-mpp; user agent: UA; x"
    assert detail(False, "", "UA", "https://a.example") == "repeat; url: https://a.example; user agent: UA"
