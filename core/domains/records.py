"""What a sending domain publishes in DNS, and how a lookup compares with it. Pure.

Records, per domain:
- DKIM: `<selector>._domainkey.<domain>` TXT, one per key. Required for the keys that
  sign or are about to; a retired key's record is listed (not required) until it is
  gone from DNS.
- SPF (suggestion): `<domain>` TXT `v=spf1 a:<sending host> ~all`; found when some
  SPF record of the domain names the sending host with `a:`, `mx:`... or `include:`.
- DMARC (suggestion): `_dmarc.<domain>` TXT; found when any DMARC policy is there.
- Return path (suggestion): `<bounce label>.<domain>` MX `10 <sending host>`, where
  bounces and complaints come back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import idna

DKIM, SPF, DMARC, RETURN_PATH = "dkim", "spf", "dmarc", "return_path"
NOT_CHECKED, FOUND, MISSING, DIFFERENT, LOOKUP_FAILED = "not_checked", "found", "missing", "different", "lookup_failed"
PENDING, ACTIVE, RETIRED = "pending", "active", "retired"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class KeyRecord:
    """A DKIM key as listed (never the private key)."""

    id: int
    selector: str
    algorithm: str
    state: str
    public_record: str
    created_at: datetime
    activated_at: datetime | None


@dataclass(frozen=True)
class Record:
    purpose: str
    type: str  # TXT or MX
    name: str
    value: str
    required: bool
    selector: str = ""

    @property
    def key(self) -> str:
        return f"{self.type} {self.name}"


@dataclass(frozen=True)
class Check:
    status: str
    found: tuple[str, ...] = ()


def normalize_domain(name: str) -> str:
    """The ASCII (IDNA) form of a domain name, lower case; ValueError saying why not."""
    text = name.strip().rstrip(".")
    if not text:
        raise ValueError("required: a domain such as example.com")
    try:
        ascii_name = idna.encode(text, uts46=True).decode() if not text.isascii() else text.lower()
    except idna.IDNAError as exc:
        raise ValueError(f"not a valid domain name: {exc}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("not a valid domain name: give a name such as example.com")
    if labels[-1].isdigit():
        raise ValueError("must be a domain name, not an address")
    return ascii_name


def covers(domain: str, sender_domain: str) -> bool:
    """Whether mail from `sender_domain` may be sent (and signed) as `domain`: the same
    domain or one of its subdomains (relaxed DMARC alignment)."""
    return sender_domain == domain or sender_domain.endswith("." + domain)


def expected(name: str, keys: Sequence[KeyRecord], host: str, bounce_label: str) -> list[Record]:
    """The records to publish for the domain `name`, DKIM first (newest key first)."""
    out = [
        Record(DKIM, "TXT", f"{k.selector}._domainkey.{name}", k.public_record, k.state != RETIRED, k.selector)
        for k in sorted(keys, key=lambda k: (k.state == RETIRED, -k.id))
    ]
    out.append(Record(SPF, "TXT", name, f"v=spf1 a:{host} ~all", False))
    out.append(Record(DMARC, "TXT", f"_dmarc.{name}", "v=DMARC1; p=none; adkim=r; aspf=r", False))
    out.append(Record(RETURN_PATH, "MX", f"{bounce_label}.{name}", f"10 {host}", False))
    return out


def _tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        tag, _, val = part.partition("=")
        tags[tag.strip().lower()] = "".join(val.split())
    return tags


def compare(record: Record, found: Sequence[str], host: str) -> Check:
    """FOUND, MISSING or DIFFERENT: what `found` (the values of that type at the
    record's name) says about `record`."""
    values = tuple(found)
    if record.purpose == DKIM:
        dkim = [v for v in values if _tags(v).get("v", "DKIM1").upper() == "DKIM1" and "p" in _tags(v)]
        if not dkim:
            return Check(MISSING, values)
        ours = _tags(record.value)
        same = any(_tags(v)["p"] == ours["p"] and _tags(v).get("k", "rsa") == ours.get("k", "rsa") for v in dkim)
        return Check(FOUND if same else DIFFERENT, values)
    if record.purpose == SPF:
        spf = [v for v in values if v.lower().startswith("v=spf1")]
        if not spf:
            return Check(MISSING, values)
        mechanisms = {m.lstrip("+").lower() for v in spf for m in v.split()}
        ok = {f"a:{host}", f"mx:{host}", f"include:{host}"} & mechanisms
        return Check(FOUND if ok else DIFFERENT, tuple(spf))
    if record.purpose == DMARC:
        dmarc = [v for v in values if v.upper().replace(" ", "").startswith("V=DMARC1")]
        return Check(FOUND if dmarc else MISSING, tuple(dmarc) or values)
    # Return path: an MX naming the sending host.
    if not values:
        return Check(MISSING)
    hosts = {v.split()[-1].rstrip(".").lower() for v in values}
    return Check(FOUND if host.lower() in hosts else DIFFERENT, values)


@dataclass(frozen=True)
class Outcome:
    """A verification's verdict: the domain's new state and why."""

    state: str  # pending, verified or failed
    reason: str
    activate: tuple[int, ...]  # pending keys whose record was found
    drop: tuple[int, ...]  # retired keys whose record is gone
    retire: tuple[int, ...] = ()  # active keys replaced by an activated key of their algorithm


def judge(current_state: str, keys: Sequence[KeyRecord], records: Sequence[Record], checks: dict[str, Check]) -> Outcome:
    """The domain's state after a check. A lookup that failed changes nothing about the
    records it concerns; the domain keeps its state then."""
    by_selector = {k.selector: k for k in keys}
    activate, drop, problems = [], [], []
    lookup_failed = False
    for record in records:
        if record.purpose != DKIM:
            continue
        key = by_selector[record.selector]
        check = checks.get(record.key, Check(NOT_CHECKED))
        if check.status == LOOKUP_FAILED:
            lookup_failed = True
        elif key.state == RETIRED:
            if check.status == MISSING:
                drop.append(key.id)
        elif check.status == FOUND:
            if key.state == PENDING:
                activate.append(key.id)
        else:
            problems.append((record, check))
    if lookup_failed:
        return Outcome(current_state, "DNS lookups failed; the state is unchanged until the next check", (), ())
    # An activated key replaces the active keys of its algorithm (a rotation).
    replaced = {k.algorithm for k in keys if k.id in activate}
    retire = tuple(k.id for k in keys if k.state == ACTIVE and k.algorithm in replaced and k.id not in activate)
    signing = [k for k in keys if (k.state == ACTIVE and k.id not in retire) or k.id in activate]
    # A pending replacement whose record is not published yet does not fail a domain
    # that still has a working active key of its own.
    blocking = [
        (r, c) for r, c in problems
        if (by_selector[r.selector].state == ACTIVE and by_selector[r.selector].id not in retire) or not signing
    ]
    if signing and not blocking:
        return Outcome("verified", "", tuple(activate), tuple(drop), retire)
    record, check = (blocking or problems)[0]
    if check.status == DIFFERENT:
        return Outcome("failed", f"the TXT record at {record.name} holds another key; publish the value listed", (), tuple(drop))
    state = "failed" if current_state in ("verified", "failed") else "pending"
    return Outcome(state, f"publish the TXT record at {record.name} (not found in DNS)", (), tuple(drop))
