"""The addresses and headers that bring feedback back to Postwire, for one email:

- the envelope sender (Return-Path): `b+<token>@bounces.<verified From domain>`, or
  `b+<token>@<POSTWIRE_RETURN_PATH_DOMAIN>` for a From domain that is not verified,
  else the From address itself (then bounces cannot be matched);
- the one-click unsubscribe headers (RFC 8058, RFC 2369): `List-Unsubscribe` with an
  https link on POSTWIRE_PUBLIC_URL and a `mailto:u+<token>@<bounce domain>`, and
  `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.returns.tokens import BOUNCE, UNSUBSCRIBE, Claim, Tokens

UNSUBSCRIBE_PATH = "/v1/unsubscribe/"


@dataclass(frozen=True)
class ReturnPaths:
    tokens: Tokens
    bounce_label: str = "bounces"
    fallback_domain: str = ""  # POSTWIRE_RETURN_PATH_DOMAIN
    public_url: str = ""  # POSTWIRE_PUBLIC_URL

    def bounce_domain(self, verified_domain: str | None) -> str:
        """Where feedback for mail of that verified domain (None: not verified) comes back."""
        return f"{self.bounce_label}.{verified_domain}" if verified_domain else self.fallback_domain

    def envelope_sender(self, account_id: int, message_id: str, from_address: str, bounce_domain: str) -> str:
        if not bounce_domain:
            return from_address
        return self.tokens.address(Claim(BOUNCE, account_id, message_id), bounce_domain)

    def unsubscribe_headers(self, account_id: int, message_id: str, recipient: int, bounce_domain: str) -> dict[str, str]:
        """The headers for `recipient` (its index among the email's envelope recipients);
        {} when there is neither a public URL nor a bounce domain to point at."""
        token = self.tokens.make(Claim(UNSUBSCRIBE, account_id, message_id, recipient))
        targets = []
        if self.public_url:
            targets.append(f"<{self.public_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}>")
        if bounce_domain:
            targets.append(f"<mailto:{UNSUBSCRIBE}+{token}@{bounce_domain}?subject=unsubscribe>")
        if not targets:
            return {}
        headers = {"List-Unsubscribe": ", ".join(targets)}
        if self.public_url:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers
