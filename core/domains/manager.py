"""Use cases behind the domain API: add a sending domain (with its DKIM keys), list,
verify against DNS, rotate the DKIM key, delete.

Private keys are generated here and stored only sealed (SecretBox, the key's domain and
selector as associated data); nothing returned or logged carries them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter

from core.domains import dkim
from core.domains.records import (
    LOOKUP_FAILED,
    NOT_CHECKED,
    PENDING,
    RETIRED,
    Check,
    KeyRecord,
    Record,
    compare,
    expected,
    judge,
    normalize_domain,
)
from core.domains.resolver import DnsError, Resolver
from core.domains.store import DomainRecord, DomainStore, NewKey
from core.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from core.ids import random_token
from core.observability.metrics import metric
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow
from core.webhooks.signing import SecretBox

log = logging.getLogger(__name__)

DOMAIN_CHECKS = metric(
    Counter, "postwire_domain_checks_total",
    "DNS checks of sending domains (VerifyDomain and the periodic re-check), by the state they settled on.",
    ["state"],
)
MAX_DOMAINS = 100
DEFAULT_PAGE, MAX_PAGE = 50, 500
ALGORITHMS = (dkim.RSA, dkim.ED25519)


def seal_context(domain: str, selector: str) -> str:
    """The associated data a DKIM private key is sealed with: it opens for that key only."""
    return f"dkim:{domain}:{selector}"


@dataclass(frozen=True)
class DomainPolicy:
    host: str  # the sending host name (EHLO, SPF, return-path MX)
    bounce_label: str = "bounces"
    recheck: timedelta = timedelta(hours=24)


class DomainManager:
    def __init__(self, store: DomainStore, box: SecretBox, resolver: Resolver, policy: DomainPolicy,
                 on_change: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.box = box
        self.resolver = resolver
        self.policy = policy
        self.on_change = on_change or (lambda account_id: None)

    def records(self, domain: DomainRecord) -> list[tuple[Record, Check]]:
        """The records to publish with what the last check found."""
        return [
            (r, domain.checks.get(r.key, Check(NOT_CHECKED)))
            for r in expected(domain.name, domain.keys, self.policy.host, self.policy.bounce_label)
        ]

    async def _new_key(self, domain: str, algorithm: str) -> NewKey:
        pair = await asyncio.to_thread(dkim.generate, algorithm)  # RSA 2048 takes tens of ms
        selector = dkim.new_selector(algorithm, utcnow())
        return NewKey(selector, algorithm, self.box.seal(pair.private_pem, seal_context(domain, selector)), pair.public_record)

    async def create(self, account_id: int, name: str, algorithms: Sequence[str]) -> DomainRecord:
        try:
            ascii_name = normalize_domain(name)
        except ValueError as exc:
            raise InvalidArgument([FieldViolation("name", str(exc))]) from None
        chosen = list(dict.fromkeys(algorithms or [dkim.RSA]))
        async with database_errors_as_unavailable():
            if len(await self.store.list(account_id, after_name="", limit=MAX_DOMAINS)) >= MAX_DOMAINS:
                raise InvalidArgument([FieldViolation("name", f"at most {MAX_DOMAINS} domains per account")])
            keys = [await self._new_key(ascii_name, a) for a in chosen]
            record = await self.store.create(
                account_id, "dom_" + random_token(20), ascii_name, keys, utcnow() + self.policy.recheck
            )
        if record is None:
            raise AlreadyExists(f"the account already has the domain {ascii_name!r}")
        return record

    async def get(self, account_id: int, ref: str) -> DomainRecord:
        if not ref:
            raise InvalidArgument([FieldViolation("domain_id", "required: a domain id (dom_...) or name")])
        lookup = ref
        if not ref.startswith("dom_"):
            try:
                lookup = normalize_domain(ref)
            except ValueError:
                lookup = ref
        async with database_errors_as_unavailable():
            record = await self.store.get(account_id, lookup)
        if record is None:
            raise NotFound(f"no domain {ref!r}")
        return record

    async def list(self, account_id: int, page_size: int = 0, page_token: str = "") -> tuple[list[DomainRecord], str]:
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        if page_token and (not page_token.isascii() or len(page_token) > 253):
            raise InvalidArgument([FieldViolation("page_token", "not a token returned by this service")])
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with database_errors_as_unavailable():
            records = await self.store.list(account_id, after_name=page_token, limit=limit)
        return records, records[-1].name if len(records) == limit else ""

    async def verify(self, account_id: int, ref: str) -> DomainRecord:
        return await self.check(await self.get(account_id, ref))

    async def check(self, domain: DomainRecord) -> DomainRecord:
        """Look the domain's records up now, record what was found, and settle its state
        and its keys' (activate found keys, retire replaced ones, drop removed ones)."""
        records = expected(domain.name, domain.keys, self.policy.host, self.policy.bounce_label)
        found = await asyncio.gather(*(self._lookup(r) for r in records))
        checks = {}
        for record, values in zip(records, found, strict=True):
            checks[record.key] = Check(LOOKUP_FAILED) if values is None else compare(record, values, self.policy.host)
        outcome = judge(domain.state, domain.keys, records, checks)
        async with database_errors_as_unavailable():
            await self.store.record_check(
                domain, state=outcome.state, reason=outcome.reason, checks=checks, activate=outcome.activate,
                retire=outcome.retire, drop=outcome.drop, next_check_at=utcnow() + self.policy.recheck,
            )
            updated = await self.store.get(domain.account_id, domain.public_id)
        DOMAIN_CHECKS.labels(outcome.state).inc()
        log.info("domain %s checked: %s%s", domain.name, outcome.state, f" ({outcome.reason})" if outcome.reason else "")
        self.on_change(domain.account_id)
        assert updated is not None
        return updated

    async def _lookup(self, record: Record) -> list[str] | None:
        try:
            if record.type == "MX":
                return [f"{pref} {host}" for pref, host in await self.resolver.mx_records(record.name)]
            return await self.resolver.txt(record.name)
        except DnsError as exc:
            log.info("DNS lookup of %s %s failed: %s", record.type, record.name, exc)
            return None

    async def delete(self, account_id: int, ref: str) -> None:
        domain = await self.get(account_id, ref)
        async with database_errors_as_unavailable():
            if not await self.store.delete(account_id, domain.id):
                raise NotFound(f"no domain {ref!r}")
        self.on_change(account_id)

    async def rotate(self, account_id: int, ref: str, algorithm: str) -> tuple[DomainRecord, KeyRecord]:
        """A new key (new selector) for `algorithm`; it signs once its record is found,
        and the key it replaces then retires."""
        domain = await self.get(account_id, ref)
        if any(k.state == PENDING and k.algorithm == algorithm for k in domain.keys):
            raise InvalidArgument([FieldViolation(
                "algorithm", f"a {algorithm} key is already waiting for its DNS record; verify it or delete the domain"
            )])
        if sum(k.state != RETIRED for k in domain.keys) >= 6:
            raise InvalidArgument([FieldViolation("domain_id", "too many keys; remove retired records from DNS first")])
        key = await self._new_key(domain.name, algorithm)
        async with database_errors_as_unavailable():
            await self.store.add_key(domain.id, key)
        updated = await self.get(account_id, domain.public_id)
        new = next(k for k in updated.keys if k.selector == key.selector)
        return updated, new
