"""Use cases behind the suppression API: list (filtered, paged), get, add by hand,
remove, and the batch forms, where each address succeeds or fails on its own.

Addresses are validated with Send's rules (core.emails.addresses) and then compared
and stored in `normalize`d form, the form delivery looks them up in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.emails.addresses import has_control_chars, parse_address
from core.errors import FieldViolation, InvalidArgument, NotFound
from core.storage.db import database_errors_as_unavailable
from core.suppressions import pages
from core.suppressions.pages import Filters
from core.suppressions.store import SuppressionRecord, SuppressionStore
from core.suppressions.write import KINDS, MANUAL, MAX_REASON, normalize
from core.times import utcnow

DEFAULT_PAGE, MAX_PAGE = 50, 1000
MAX_BATCH = 1000
MAX_PREFIX = 320


def parse(address: str, field: str) -> str:
    """The normalized form of one bare address, or InvalidArgument on `field`."""
    if not address.strip():
        raise InvalidArgument([FieldViolation(field, "required: an address such as user@example.com")])
    parsed = parse_address(address, field)
    if parsed.name:
        raise InvalidArgument([FieldViolation(field, "give the bare address, without a display name")])
    return normalize(parsed.email)


def check_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise InvalidArgument([FieldViolation("reason", f"at most {MAX_REASON} characters")])
    if has_control_chars(reason, allow_tab=True):
        raise InvalidArgument([FieldViolation("reason", "must not contain control characters such as CR, LF or NUL")])
    return reason.strip()


def filters(kind: str = "", created_after: datetime | None = None, created_before: datetime | None = None,
            address_prefix: str = "") -> Filters:
    """Validated list filters (the prefix normalized like addresses)."""
    violations = []
    if kind and kind not in KINDS:
        violations.append(FieldViolation("kind", "unknown suppression kind"))
    if created_after is not None and created_before is not None and created_before <= created_after:
        violations.append(FieldViolation("created_before", "must be later than created_after"))
    if len(address_prefix) > MAX_PREFIX:
        violations.append(FieldViolation("address_prefix", f"at most {MAX_PREFIX} characters"))
    elif has_control_chars(address_prefix):
        violations.append(FieldViolation("address_prefix", "must not contain control characters"))
    if violations:
        raise InvalidArgument(violations)
    prefix = address_prefix.strip()
    prefix = normalize(prefix) if "@" in prefix else prefix.lower()
    return Filters(kind, created_after, created_before, prefix)


@dataclass(frozen=True)
class ItemError:
    """Why one address of a batch failed: the status name it alone would get, and the
    field violation."""

    code: str
    message: str
    field: str


@dataclass(frozen=True)
class Outcome:
    address: str  # as given
    record: SuppressionRecord | None = None
    created: bool = False
    error: ItemError | None = None


def _parse_all(addresses: Sequence[str]) -> tuple[dict[int, str], dict[int, ItemError]]:
    if not addresses:
        raise InvalidArgument([FieldViolation("addresses", f"required: 1 to {MAX_BATCH} addresses")])
    if len(addresses) > MAX_BATCH:
        raise InvalidArgument([FieldViolation("addresses", f"at most {MAX_BATCH} addresses per call")])
    valid: dict[int, str] = {}
    errors: dict[int, ItemError] = {}
    for i, address in enumerate(addresses):
        try:
            valid[i] = parse(address, f"addresses[{i}]")
        except InvalidArgument as exc:
            v = exc.violations[0]
            errors[i] = ItemError(exc.code, v.description, v.field)
    return valid, errors


class SuppressionManager:
    def __init__(self, store: SuppressionStore) -> None:
        self.store = store

    async def list(self, account_id: int, wanted: Filters, *, page_size: int = 0,
                   page_token: str = "") -> tuple[list[SuppressionRecord], str]:
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        after = pages.decode(page_token, wanted) if page_token else None
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with database_errors_as_unavailable():
            records = await self.store.list(account_id, wanted, after, limit + 1)
        if len(records) <= limit:
            return records, ""
        last = records[limit - 1]
        return records[:limit], pages.encode(wanted, pages.Position(last.created_at, last.address))

    async def get(self, account_id: int, address: str) -> SuppressionRecord:
        normalized = parse(address, "address")
        async with database_errors_as_unavailable():
            found = await self.store.get(account_id, [normalized])
        if normalized not in found:
            raise NotFound(f"{normalized} is not on the suppression list")
        return found[normalized]

    async def add(self, account_id: int, address: str, reason: str = "") -> tuple[SuppressionRecord, bool]:
        normalized = parse(address, "address")
        reason = check_reason(reason)
        async with database_errors_as_unavailable():
            records, created = await self.store.add(account_id, [normalized], MANUAL, reason, utcnow())
        return records[normalized], normalized in created

    async def remove(self, account_id: int, address: str) -> SuppressionRecord:
        normalized = parse(address, "address")
        async with database_errors_as_unavailable():
            removed = await self.store.remove(account_id, [normalized])
        if normalized not in removed:
            raise NotFound(f"{normalized} is not on the suppression list")
        return removed[normalized]

    async def batch_add(self, account_id: int, addresses: Sequence[str], reason: str = "") -> list[Outcome]:
        """One outcome per address, in order; an address already listed keeps its entry
        (`created` False), a repeated one counts as new once."""
        valid, errors = _parse_all(addresses)
        reason = check_reason(reason)
        async with database_errors_as_unavailable():
            records, created = await self.store.add(account_id, list(valid.values()), MANUAL, reason, utcnow())
        outcomes = []
        for i, address in enumerate(addresses):
            if i in errors:
                outcomes.append(Outcome(address, error=errors[i]))
                continue
            normalized = valid[i]
            new = normalized in created
            created.discard(normalized)
            outcomes.append(Outcome(address, records[normalized], created=new))
        return outcomes

    async def batch_remove(self, account_id: int, addresses: Sequence[str]) -> list[Outcome]:
        """One outcome per address, in order; an address not on the list is NOT_FOUND
        (one given twice is removed once and reported removed for both)."""
        valid, errors = _parse_all(addresses)
        async with database_errors_as_unavailable():
            removed = await self.store.remove(account_id, list(valid.values()))
        outcomes = []
        for i, address in enumerate(addresses):
            if i in errors:
                outcomes.append(Outcome(address, error=errors[i]))
            elif valid[i] in removed:
                outcomes.append(Outcome(address, removed[valid[i]]))
            else:
                message = f"{valid[i]} is not on the suppression list"
                outcomes.append(Outcome(address, error=ItemError(NotFound.code, message, f"addresses[{i}]")))
        return outcomes
