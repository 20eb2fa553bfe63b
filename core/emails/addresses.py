"""Parse one mailbox per value: `user@example.com` or `Name <user@example.com>`.

The addr-spec is checked by email-validator (no DNS), internationalised addresses
are allowed, and the stored address is email-validator's normalised form (domain
lower-cased and in Unicode). Anything that could smuggle a second header line or a
second address is refused, so a parsed Address is safe to put in a header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from core.emails.content import Address
from core.errors import FieldViolation, InvalidArgument

# Characters that may not appear in an unquoted display name (RFC 5322 specials,
# less "." and "()" which people write and the renderer quotes anyway).
_UNQUOTED_NAME_SPECIALS = frozenset(',;:@<>[]"\\')
# An ASCII dot-atom local part (RFC 5322 atext): email-validator accepts it unchanged,
# so for these only the domain needs its checks, once per domain (see _addr_spec).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def has_control_chars(value: str, *, allow_tab: bool = False) -> bool:
    """True if `value` holds a control character (C0, DEL, C1) or a line/paragraph
    separator. CR, LF and NUL are the dangerous ones; the rest are never legitimate."""
    for ch in value:
        if ch == "\t" and allow_tab:
            continue
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return True
    return False


def parse_address(value: str, field: str) -> Address:
    """Parse a single mailbox, or raise InvalidArgument with one violation on `field`."""
    try:
        return _parse(value)
    except _Invalid as exc:
        raise InvalidArgument([FieldViolation(field, str(exc))]) from None


def parse_addresses(values: Iterable[str], field: str) -> tuple[Address, ...]:
    """Parse every value; collect all violations, on paths like `to[1]`."""
    parsed: list[Address] = []
    violations: list[FieldViolation] = []
    for index, value in enumerate(values):
        try:
            parsed.append(_parse(value))
        except _Invalid as exc:
            violations.append(FieldViolation(f"{field}[{index}]", str(exc)))
    if violations:
        raise InvalidArgument(violations)
    return tuple(parsed)


def ascii_email(email: str) -> str | None:
    """The all-ASCII form of a parsed address (IDNA domain), or None if the local
    part is non-ASCII and the address can only travel over SMTPUTF8."""
    if email.isascii():
        return email
    result = validate_email(email, check_deliverability=False, allow_smtputf8=True)
    return result.ascii_email


class _Invalid(Exception):
    """Internal: one reason a value is not a single valid mailbox."""


def _parse(value: str) -> Address:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    return _parse_text(value)


@lru_cache(maxsize=4096)  # pure; senders repeat their From and many recipients: parse once
def _parse_text(value: str) -> Address:
    if has_control_chars(value):
        raise _Invalid("must not contain control characters such as CR, LF or NUL")
    text = value.strip()
    if not text:
        raise _Invalid("is required: give an address such as user@example.com")
    if text.startswith('"'):
        name, rest = _unquote(text)
        if rest.count("<") > 1:
            raise _Invalid("must hold exactly one address; use a separate entry for each recipient")
        if not (rest.startswith("<") and rest.endswith(">")) or rest.count("<") + rest.count(">") != 2:
            raise _Invalid('after a quoted display name give one <address>, as in "Name" <user@example.com>')
        return Address(email=_addr_spec(rest[1:-1].strip()), name=name)
    if "<" not in text and ">" not in text:
        return Address(email=_addr_spec(text))
    if text.count("<") > 1:
        raise _Invalid("must hold exactly one address; use a separate entry for each recipient")
    open_at, close_at = text.find("<"), text.find(">")
    if open_at < 0 or close_at < open_at or text.count(">") > 1:
        raise _Invalid("has unbalanced angle brackets")
    if close_at != len(text) - 1:
        if "@" in text[close_at + 1 :] or "," in text[close_at + 1 :]:
            raise _Invalid("must hold exactly one address; use a separate entry for each recipient")
        raise _Invalid("must end with the closing '>' of the address")
    name = _display_name(text[:open_at].strip())
    return Address(email=_addr_spec(text[open_at + 1 : close_at].strip()), name=name)


def _display_name(raw: str) -> str:
    if not raw:
        return ""
    if '"' in raw:
        raise _Invalid('a quoted display name must be the whole name, as in "Name" <user@example.com>')
    if any(ch in _UNQUOTED_NAME_SPECIALS for ch in raw):
        if "," in raw or ";" in raw:
            raise _Invalid(
                'display name contains "," or ";": quote it, as in "Doe, John" <j@example.com>, '
                "or give each address as a separate entry"
            )
        raise _Invalid(
            'display name contains one of , ; : @ < > [ ] " \\ and must be quoted, '
            'as in "Name" <user@example.com>'
        )
    return " ".join(raw.split())


def _unquote(text: str) -> tuple[str, str]:
    """Split `"Doe, \\"JD\\" John" <j@x>` into (`Doe, "JD" John`, `<j@x>`)."""
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return " ".join("".join(out).split()), text[i + 1 :].strip()
        else:
            out.append(ch)
            i += 1
    raise _Invalid("display name has an opening quote but no closing quote")


def _addr_spec(spec: str) -> str:
    if not spec:
        raise _Invalid("has an empty address between the angle brackets")
    if "," in spec or ";" in spec or spec.count("@") > 1 or any(c.isspace() for c in spec):
        raise _Invalid(
            "must hold exactly one address such as user@example.com; "
            "use a separate entry for each recipient"
        )
    local, _, domain = spec.rpartition("@")
    if len(local) <= 64 and len(spec) <= 254 and domain.isascii() and _DOT_ATOM.fullmatch(local):
        normalized = _domain(domain)  # most addresses of a bulk send share a few domains
        if normalized is not None:
            return f"{local}@{normalized}"
    try:
        result = validate_email(spec, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise _Invalid(f"is not a valid email address: {exc}") from None
    return result.normalized


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """email-validator's normalised form of an ASCII domain, or None when it refuses it
    (the whole address is then validated again, for its own message)."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True).domain
    except EmailNotValidError:
        return None
