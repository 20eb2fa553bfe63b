"""Who may send as whom: the From domain of a Send must be a verified domain of the
account or a subdomain of one. And which DKIM keys sign a message from that domain.

Both read through a short in-process cache per account (`ttl`), so the hot path costs
no query for most Sends. A miss is read again from the database before it counts, so a
domain verified a moment ago (in another process too) is never refused or sent
unsigned; a domain deleted or failed goes on being accepted for at most `ttl` seconds.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from core.domains import dkim
from core.domains.manager import seal_context
from core.domains.records import covers, normalize_domain
from core.domains.store import DomainStore
from core.errors import FailedPrecondition
from core.per_account import PerAccount
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow
from core.webhooks.signing import SecretBox


@lru_cache(maxsize=4096)  # pure, and senders repeat their From
def sender_domain(address: str) -> str:
    """The domain of an address, in the ASCII (IDNA) form domains are stored in."""
    domain = address.rpartition("@")[2]
    try:
        return normalize_domain(domain)
    except ValueError:
        return domain.lower()


class VerifiedSenders:
    """The Send-time rule (FAILED_PRECONDITION for a domain not verified)."""

    def __init__(self, store: DomainStore, ttl: float = 5.0) -> None:
        self._names = PerAccount(store.verified_names, ttl)

    def forget(self, account_id: int) -> None:
        self._names.forget(account_id)

    async def check(self, account_id: int, from_address: str) -> None:
        domain = sender_domain(from_address)
        hit = self._names.fresh(account_id)  # every email of a batch asks: most are hits
        if hit is not None and any(covers(name, domain) for name in hit[0]):
            return
        async with database_errors_as_unavailable():
            names = await self._names.get(account_id)
            if not any(covers(name, domain) for name in names):  # read again before refusing:
                names = await self._names.get(account_id, as_of=utcnow())  # verified a moment ago elsewhere?
        if not any(covers(name, domain) for name in names):
            raise FailedPrecondition(
                f"the From domain {domain!r} is not a verified sending domain of this account: add it with"
                " CreateDomain, publish its DNS records, then VerifyDomain (test keys may send from any domain)"
            )


class SigningKeys:
    """The worker's view: the active DKIM keys for a message's From domain, opened."""

    def __init__(self, store: DomainStore, box: SecretBox, ttl: float = 5.0) -> None:
        self.box = box
        self._keys = PerAccount(store.active_keys, ttl)

    async def for_sender(self, account_id: int, from_address: str, accepted_at: datetime) -> list[dkim.SigningKey]:
        """The keys of the most specific verified domain covering the From domain (RSA
        first); [] when there is none, and the message goes out unsigned.

        A miss is trusted only from a read newer than the email's acceptance: a domain
        verified just before the Send (so accepted by the server) is always seen."""
        domain = sender_domain(from_address)
        keys = [k for k in await self._keys.get(account_id) if covers(k.domain, domain)]
        if not keys:
            keys = [k for k in await self._keys.get(account_id, as_of=accepted_at) if covers(k.domain, domain)]
        if not keys:
            return []
        best = max(len(k.domain) for k in keys)
        return [
            dkim.SigningKey(k.domain, k.selector, k.algorithm,
                            self.box.open(k.sealed_private_key, seal_context(k.domain, k.selector)))
            for k in keys if len(k.domain) == best
        ]
