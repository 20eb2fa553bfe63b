"""What the delivery worker does for tracking, before it renders and DKIM-signs: decide
whether the email is tracked (its Send's `track_opens` / `track_clicks`, else the
account's defaults) and rewrite its bodies.

Tokens are per email, not per recipient: an email is rendered once and sent in one SMTP
transaction to all its recipients. When it has one envelope recipient (the common
transactional case) the tokens name that recipient (by index, sealed in the token), so
its events carry `recipient` and `first` is per recipient; with several, the recipient
is unknown (empty) and `first` is per email. Send one email per recipient to tell them
apart. Messages submitted over SMTP (raw) go out as submitted, untracked.
"""

from __future__ import annotations

import dataclasses
import re

from core.emails.content import EmailContent
from core.tracking.defaults import TrackingDefaults
from core.tracking.rewrite import rewrite_html, rewrite_text
from core.tracking.tokens import CLICK, OPEN, Claim, TrackingTokens

OPEN_PATH, CLICK_PATH = "/t/o/", "/t/c/"
_HEADER_URL = re.compile(r"<(https?://[^>]+)>")


class Tracker:
    def __init__(self, tokens: TrackingTokens, base_url: str, defaults: TrackingDefaults | None,
                 text_links: bool = False) -> None:
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")  # "": nothing is tracked
        self.defaults = defaults
        self.text_links = text_links

    async def decide(self, content: EmailContent, account_id: int) -> tuple[bool, bool]:
        """(opens, clicks) for this email."""
        if not self.base_url or content.raw or not (content.html_body or (self.text_links and content.text_body)):
            return False, False
        opens, clicks = content.track_opens, content.track_clicks
        if (opens is None or clicks is None) and self.defaults is not None:
            default_opens, default_clicks = await self.defaults.get(account_id)
            opens = default_opens if opens is None else opens
            clicks = default_clicks if clicks is None else clicks
        return bool(opens), bool(clicks)

    def rewrite(self, content: EmailContent, account_id: int, message_id: str, recipient: int,
                opens: bool, clicks: bool, extra_headers: dict[str, str] | None = None) -> EmailContent:
        """The content with the pixel (html part) and tracked links."""
        if not (opens or clicks):
            return content
        headers = {**content.headers, **(extra_headers or {})}
        skip = {u for name, value in headers.items() if name.lower() == "list-unsubscribe"
                for u in _HEADER_URL.findall(value)}

        def link(url: str) -> str:
            return self.base_url + CLICK_PATH + self.tokens.make(Claim(CLICK, account_id, message_id, recipient, url))

        changes: dict[str, str] = {}
        if content.html_body:
            pixel = self.base_url + OPEN_PATH + self.tokens.make(Claim(OPEN, account_id, message_id, recipient)) if opens else None
            changes["html_body"] = rewrite_html(content.html_body, link=link if clicks else None, pixel_url=pixel,
                                                skip=skip, base_url=self.base_url)[0]
        if clicks and self.text_links and content.text_body:
            changes["text_body"] = rewrite_text(content.text_body, link, skip, self.base_url)[0]
        return dataclasses.replace(content, **changes) if changes else content
