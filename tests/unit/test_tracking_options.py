"""The tracking options of the SDK and CLI, and the handler's refusal of bad tokens
before any database work (core/tracking/hits.py)."""

from __future__ import annotations

import asyncio
import dataclasses

from core.emails.content import Address, EmailContent
from core.tracking.apply import Tracker
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


class _Defaults:
    def __init__(self, opens: bool, clicks: bool) -> None:
        self.value = (opens, clicks)

    async def get(self, account_id: int) -> tuple[bool, bool]:
        return self.value


def test_the_message_fields_win_over_the_account_default_and_raw_mail_is_never_tracked() -> None:
    content = EmailContent(from_address=Address("a@x.io"), to=(Address("b@x.io"),), html_body="<p>x</p>")
    tracker = Tracker(TrackingTokens("s"), "https://t.example", _Defaults(True, True))  # type: ignore[arg-type]
    assert asyncio.run(tracker.decide(content, 1)) == (True, True)
    explicit = dataclasses.replace(content, track_opens=False)
    assert asyncio.run(tracker.decide(explicit, 1)) == (False, True)
    assert asyncio.run(tracker.decide(dataclasses.replace(content, raw=b"x"), 1)) == (False, False)
    no_base = Tracker(TrackingTokens("s"), "", _Defaults(True, True))  # type: ignore[arg-type]
    assert asyncio.run(no_base.decide(content, 1)) == (False, False)


def test_text_links_are_rewritten_only_with_the_setting() -> None:
    content = EmailContent(from_address=Address("a@x.io"), to=(Address("b@x.io"),), text_body="Go https://a.example/x",
                           html_body='<a href="https://a.example/x">x</a>')
    for text_links in (False, True):
        tracker = Tracker(TrackingTokens("s"), "https://t.example", None, text_links)
        out = tracker.rewrite(content, 1, "msg_abc", 0, opens=False, clicks=True)
        assert ("https://t.example/t/c/" in out.text_body) is text_links
        assert 'href="https://t.example/t/c/' in out.html_body and "/t/o/" not in out.html_body
