"""The tracking options of the SDK and CLI, and the handler's refusal of bad tokens
before any database work (core/tracking/hits.py)."""

from __future__ import annotations

import asyncio

from core.tracking.hits import Hits
from core.tracking.tokens import OPEN, Claim, TrackingTokens
from postwire_client.cli import build_parser
from postwire_client.sdk import build_send_request
from postwire_client.send_flags import base_request


def _request(*flags: str):  # noqa: ANN202
    return base_request(build_parser().parse_args(["send", "--from", "a@example.com", "--to", "b@example.com", *flags]))


def test_cli_flags_set_the_fields_and_their_absence_leaves_the_account_default() -> None:
    on = _request("--track-opens", "--track-clicks")
    assert on.track_opens is True and on.track_clicks is True
    off = _request("--no-track-opens", "--no-track-clicks")
    assert off.HasField("track_opens") and not off.track_opens and off.HasField("track_clicks") and not off.track_clicks
    neither = _request()
    assert not neither.HasField("track_opens") and not neither.HasField("track_clicks")


def test_sdk_keywords_set_the_fields() -> None:
    request = build_send_request(None, {"from_address": "a@x.io", "to": ["b@x.io"], "track_opens": False,
                                        "track_clicks": True}, auto_idempotency_key=False)
    assert request.HasField("track_opens") and not request.track_opens and request.track_clicks
    assert not build_send_request(None, {"to": ["b@x.io"]}, auto_idempotency_key=False).HasField("track_opens")


class _NoDatabase:
    calls = 0

    async def record(self, claim: Claim, machine: str, user_agent: str) -> bool:
        self.calls += 1
        return True


def test_bad_tokens_never_reach_the_recorder_and_genuine_ones_do() -> None:
    tokens = TrackingTokens("secret")
    recorder = _NoDatabase()
    hits = Hits(tokens, recorder, frozenset(), 0)  # type: ignore[arg-type]

    async def hit(token: str) -> str | None:
        return await hits.hit(OPEN, token, method="GET", peer="198.51.100.1", forwarded_for="", user_agent="ua")

    good = tokens.make(Claim(OPEN, 1, "msg_abc", 0))
    for bad in ("", "x", "!" * 60, good[:-2], TrackingTokens("other").make(Claim(OPEN, 1, "msg_abc", 0)), "A" * 4097):
        assert asyncio.run(hit(bad)) is None
    assert recorder.calls == 0
    assert asyncio.run(hit(good)) == ""
    assert recorder.calls == 1


def test_past_the_per_address_limit_hits_are_answered_but_not_recorded() -> None:
    tokens = TrackingTokens("secret")
    recorder = _NoDatabase()
    hits = Hits(tokens, recorder, frozenset(), 2)  # type: ignore[arg-type]
    good = tokens.make(Claim(OPEN, 1, "msg_abc", 0))
    answers = [asyncio.run(hits.hit(OPEN, good, method="GET", peer="198.51.100.1", forwarded_for="", user_agent="u"))
               for _ in range(4)]
    assert answers == ["", "", "", ""] and recorder.calls == 2
