"""One-click unsubscribe (RFC 8058): the account's default for Send, and what the
link does.

- `AccountDefaults`: whether Sends that do not say add List-Unsubscribe
  (accounts.unsubscribe_default), read through a short per-account cache.
- `resolve`: the Send-time choice. An explicit `unsubscribe` stands (validation refused
  true with several recipients); unset takes the account's default, which only applies
  to single-recipient emails (a link names one recipient) without List-Unsubscribe
  headers of their own.
- `OneClick`: the link's token names account, email and recipient (core.returns.tokens).
  `recipient` reads who it names, changing nothing (the GET page); `unsubscribe` applies
  Feedback(kind="unsubscribe") through Outcomes, so the UNSUBSCRIBED event and the
  suppression are written once however often the link is posted.
"""

from __future__ import annotations

import dataclasses
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.content import EmailContent
from core.emails.reads import recipients_from_json
from core.emails.validation import UNSUBSCRIBE_HEADERS
from core.errors import FieldViolation, InvalidArgument, NotFound
from core.per_account import PerAccount
from core.returns.outcomes import UNSUBSCRIBE_KIND, Feedback, Outcomes
from core.returns.tokens import UNSUBSCRIBE, Claim, Tokens
from core.storage.db import accounts, database_errors_as_unavailable, emails

ONE_CLICK = "One-Click"
_MAX_BODY = 64 * 1024


class AccountDefaults:
    def __init__(self, engine: AsyncEngine, ttl: float = 5.0) -> None:
        self.engine = engine
        self._cache = PerAccount(self._load, ttl)

    async def _load(self, account_id: int) -> bool:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(accounts.c.unsubscribe_default).where(accounts.c.id == account_id))
        return bool(value)

    async def get(self, account_id: int) -> bool:
        hit = self._cache.fresh(account_id)  # every email of a batch asks: most are hits
        if hit is not None:
            return hit[0]
        async with database_errors_as_unavailable():
            return await self._cache.get(account_id)

    async def set(self, account_id: int, on: bool) -> bool:
        """False when there is no such account. Other processes see it within the ttl."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(accounts).where(accounts.c.id == account_id).values(unsubscribe_default=on))
        self._cache.forget(account_id)
        return bool(result.rowcount)


async def resolve(content: EmailContent, account_id: int, defaults: AccountDefaults | None) -> EmailContent:
    """The content with `unsubscribe` decided (True or False)."""
    if content.unsubscribe is not None:
        return content
    own = any(name.lower() in UNSUBSCRIBE_HEADERS for name in content.headers)  # the caller's own headers stay
    on = defaults is not None and len(content.recipients) == 1 and not own and await defaults.get(account_id)
    return dataclasses.replace(content, unsubscribe=on)


def check_body(content_type: str, data: bytes) -> None:
    """The POST body must carry `List-Unsubscribe=One-Click`, form-encoded (what mail
    providers send, and the confirmation page's button) or as multipart/form-data."""
    mime = content_type.split(";", 1)[0].strip().lower()
    values: list[str] = []
    if len(data) <= _MAX_BODY and mime in ("", "application/x-www-form-urlencoded", "text/plain"):
        try:
            values = parse_qs(data.decode("ascii").strip(), keep_blank_values=True).get("List-Unsubscribe", [])
        except (UnicodeDecodeError, ValueError):
            values = []
    elif len(data) <= _MAX_BODY and mime == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + data)
        for part in message.iter_parts() if message.is_multipart() else ():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                values.append(str(part.get_content()).strip())
    if values != [ONE_CLICK]:
        raise InvalidArgument([FieldViolation(
            "body", "must be the form-encoded List-Unsubscribe=One-Click (RFC 8058)"
        )])


class OneClick:
    def __init__(self, engine: AsyncEngine, tokens: Tokens) -> None:
        self.engine = engine
        self.tokens = tokens
        self.outcomes = Outcomes(engine)

    async def recipient(self, token: str) -> tuple[Claim, str]:
        """The claim and the address a genuine token names; NotFound otherwise (the same
        answer for a forged token and an email that is not there)."""
        claim = self.tokens.read(token, UNSUBSCRIBE)
        if claim is None:
            raise NotFound("no such unsubscribe link")
        async with database_errors_as_unavailable(), self.engine.connect() as conn:
            data = await conn.scalar(
                select(emails.c.recipients).where(
                    emails.c.account_id == claim.account_id, emails.c.public_id == claim.message_id
                )
            )
        addresses = list(recipients_from_json(data))
        if claim.recipient == -1 and len(addresses) == 1:
            return claim, addresses[0]
        if not 0 <= claim.recipient < len(addresses):
            raise NotFound("no such unsubscribe link")
        return claim, addresses[claim.recipient]

    async def unsubscribe(self, token: str, content_type: str, data: bytes) -> tuple[str, bool]:
        """Unsubscribe the recipient the token names: (address, whether this call changed
        anything; False for a replay)."""
        claim, address = await self.recipient(token)
        check_body(content_type, data)
        feedback = Feedback(kind=UNSUBSCRIBE_KIND, recipient=address, source="one-click")
        async with database_errors_as_unavailable():
            applied = await self.outcomes.apply(claim.account_id, claim.message_id, [feedback])
        if not applied.found:
            raise NotFound("no such unsubscribe link")
        return address, bool(applied.applied)
