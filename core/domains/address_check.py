"""Address verification without SMTP probing: the syntax (Send's rules), whether the
domain accepts mail (the delivery resolver, so the same answers and cache), the
account's suppression list, and role / disposable hints.

Disposable domains come from the `disposable-email-domains` package (the maintained
community list); role names are those of RFC 2142 and the common no-reply forms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from disposable_email_domains import blocklist
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.domains.resolver import (
    NoMailHost,
    NoSuchDomain,
    NullMx,
    Resolver,
    TemporaryDnsError,
)
from core.emails.addresses import ascii_email, parse_address
from core.errors import FieldViolation, InvalidArgument
from core.storage.db import database_errors_as_unavailable, suppressions
from core.suppressions.write import normalize

MAX_BATCH = 1000
MAX_LOOKUPS = 50  # DNS lookups in flight for one batch
ROLES = frozenset({
    "abuse", "admin", "administrator", "billing", "contact", "do-not-reply", "donotreply", "help", "hostmaster",
    "info", "mailer-daemon", "marketing", "no-reply", "noc", "noreply", "office", "postmaster", "root", "sales",
    "security", "support", "team", "webmaster",
})
DELIVERABLE, UNDELIVERABLE, RISKY, UNKNOWN = "deliverable", "undeliverable", "risky", "unknown"
MX, A_FALLBACK, NULL_MX, NO_SUCH_DOMAIN, NO_MAIL_HOST, LOOKUP_FAILED, NOT_CHECKED = (
    "mx", "a_fallback", "null_mx", "no_such_domain", "no_mail_host", "lookup_failed", "not_checked"
)


@dataclass
class AddressCheck:
    address: str
    normalized: str = ""
    verdict: str = UNDELIVERABLE
    reason: str = ""
    syntax_valid: bool = False
    domain_status: str = NOT_CHECKED
    mail_hosts: list[str] = field(default_factory=list)
    suppressed: bool = False
    suppression_reason: str = ""
    role: bool = False
    disposable: bool = False


class AddressChecker:
    def __init__(self, engine: AsyncEngine, resolver: Resolver) -> None:
        self.engine = engine
        self.resolver = resolver

    async def check(self, account_id: int, address: str) -> AddressCheck:
        if not address:
            raise InvalidArgument([FieldViolation("address", "required: an address such as user@example.com")])
        return (await self.check_many(account_id, [address]))[0]

    async def check_many(self, account_id: int, addresses: Sequence[str]) -> list[AddressCheck]:
        if len(addresses) > MAX_BATCH:
            raise InvalidArgument([FieldViolation("addresses", f"at most {MAX_BATCH} addresses per call")])
        checks = [self._syntax(a) for a in addresses]
        valid = [c for c in checks if c.syntax_valid]
        domains = {c.normalized.rpartition("@")[2] for c in valid}
        slots = asyncio.Semaphore(MAX_LOOKUPS)

        async def route(domain: str) -> tuple[str, list[str], str]:
            async with slots:
                return await self._route(domain)

        routes = dict(zip(domains, await asyncio.gather(*(route(d) for d in domains)), strict=True))
        listed = await self._suppressed(account_id, [c.normalized for c in valid])
        for c in valid:
            c.domain_status, c.mail_hosts, why = routes[c.normalized.rpartition("@")[2]]
            reason = listed.get(normalize(c.normalized))
            c.suppressed, c.suppression_reason = reason is not None, reason or ""
            c.verdict, c.reason = _verdict(c, why)
        return checks

    def _syntax(self, address: str) -> AddressCheck:
        check = AddressCheck(address)
        try:
            parsed = parse_address(address, "address")
        except InvalidArgument as exc:
            why = exc.violations[0].description
            check.reason = "not a single address such as user@example.com" if "separate entry" in why else why
            return check
        if parsed.name:
            check.reason = "give the bare address, without a display name"
            return check
        check.syntax_valid = True
        check.normalized = ascii_email(parsed.email) or parsed.email
        local, _, domain = check.normalized.rpartition("@")
        check.role = local.lower().split("+")[0] in ROLES
        check.disposable = any(d in blocklist for d in _parents(domain.lower()))
        return check

    async def _route(self, domain: str) -> tuple[str, list[str], str]:
        try:
            hosts = await self.resolver.mail_hosts(domain)
        except NullMx:
            return NULL_MX, [], f"{domain} publishes a null MX: it accepts no mail"
        except NoSuchDomain:
            return NO_SUCH_DOMAIN, [], f"the domain {domain} does not exist"
        except NoMailHost:
            return NO_MAIL_HOST, [], f"{domain} has no MX and no address record"
        except TemporaryDnsError as exc:
            return LOOKUP_FAILED, [], f"DNS lookup for {domain} failed ({exc}); try again later"
        status = A_FALLBACK if hosts == [domain] else MX
        return status, hosts, ""

    async def _suppressed(self, account_id: int, addresses: list[str]) -> dict[str, str]:
        if not addresses:
            return {}
        query = select(suppressions.c.address, suppressions.c.reason).where(
            suppressions.c.account_id == account_id, suppressions.c.address.in_([normalize(a) for a in addresses])
        )
        async with database_errors_as_unavailable(), self.engine.connect() as conn:
            return {r.address: r.reason for r in await conn.execute(query)}


def _parents(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _verdict(c: AddressCheck, why: str) -> tuple[str, str]:
    if c.domain_status in (NULL_MX, NO_SUCH_DOMAIN, NO_MAIL_HOST):
        return UNDELIVERABLE, why
    if c.suppressed:
        return UNDELIVERABLE, f"on the account's suppression list: {c.suppression_reason}"
    if c.domain_status == LOOKUP_FAILED:
        return UNKNOWN, why
    if c.disposable:
        return RISKY, "the domain hands out disposable mailboxes"
    if c.role:
        return RISKY, "a role address, read by a team rather than a person"
    via = "its MX hosts" if c.domain_status == MX else "its address record (no MX)"
    return DELIVERABLE, f"valid syntax and the domain accepts mail via {via}"
