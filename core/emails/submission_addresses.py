"""The addresses of a submitted message (core.emails.submission): the envelope
recipients and the From header's one mailbox, validated like Send's recipients and
from_address (core.emails.addresses).

An application submits from the same few senders to recipients that recur, so each
distinct address is validated once per process (a bounded cache of the outcome, the
Address or the reason it is refused); validation is a pure function of the text.
"""

from __future__ import annotations

import functools
import re
from email import policy as email_policy

from core.emails.addresses import has_control_chars, parse_address
from core.emails.content import Address
from core.emails.validation import SendLimits
from core.errors import FieldViolation, InvalidArgument

# A From the stdlib's address parser would read the same way: an atom or plain quoted
# display name (no encoded words, comments or escapes), a dot-atom address. Others
# go through policy.default's AddressHeader.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_FROM = re.compile(
    rf'[ \t]*(?:(?:((?:{_ATEXT}|[ \t])*)|"([ !#-\[\]-~]*)")[ \t]*<({_ADDR})>|({_ADDR}))[ \t]*'
)


@functools.lru_cache(maxsize=4096)
def _parsed(value: str) -> Address | str:
    """parse_address's outcome: the Address, or the description of its violation."""
    try:
        return parse_address(value, "address")
    except InvalidArgument as exc:
        return exc.violations[0].description


def envelope_recipients(rcpt_tos: list[str], limits: SendLimits, out: list[FieldViolation]) -> tuple[Address, ...]:
    """The RCPT TO addresses, sorted (like the idempotency key: a resubmission in
    another order is the same email); () with the problems added to `out`."""
    if not rcpt_tos:
        out.append(FieldViolation("rcpt", "at least one envelope recipient (RCPT TO) is required"))
        return ()
    if len(rcpt_tos) > limits.max_recipients:
        out.append(FieldViolation(
            "rcpt", f"{len(rcpt_tos)} envelope recipients; the limit is {limits.max_recipients}"
        ))
        return ()
    found = [_parsed(rcpt) for rcpt in rcpt_tos]
    refused = [FieldViolation(f"rcpt[{i}]", item) for i, item in enumerate(found) if isinstance(item, str)]
    if refused:
        out.extend(refused)
        return ()
    return tuple(sorted((a for a in found if isinstance(a, Address)), key=lambda a: a.email.casefold()))


def header_sender(found: list[str], out: list[FieldViolation]) -> Address | None:
    """The From header's mailbox, from its unfolded values (raw_mime.field_value)."""
    values = [value.strip() for value in found]
    if not values:
        out.append(FieldViolation("from", "a From header is required"))
        return None
    if len(values) > 1:
        return None  # reported as header:From by the field checks
    simple = _SIMPLE_FROM.fullmatch(found[0]) if "=?" not in found[0] else None
    if simple is not None:
        quoted = simple.group(2)
        addr_spec = simple.group(3) or simple.group(4)
        return _mailbox(addr_spec, quoted if quoted is not None else simple.group(1) or "", out)
    try:
        groups = list(email_policy.default.header_factory("From", found[0]).groups)
    except Exception:  # the stdlib's parser raises on some malformed values (IndexError, HeaderParseError)
        groups = []
    mailboxes = list(groups[0].addresses) if len(groups) == 1 and groups[0].display_name is None else []
    if len(mailboxes) != 1 or not mailboxes[0].addr_spec or "@" not in mailboxes[0].addr_spec:
        out.append(FieldViolation("from", f"must hold exactly one mailbox such as user@example.com; got {values[0]!r}"))
        return None
    return _mailbox(mailboxes[0].addr_spec, mailboxes[0].display_name, out)


def _mailbox(addr_spec: str, name: str, out: list[FieldViolation]) -> Address | None:
    address = _parsed(addr_spec)
    if isinstance(address, str):
        out.append(FieldViolation("from", address))
        return None
    if has_control_chars(name, allow_tab=True):
        out.append(FieldViolation("from", "display name decodes to control characters such as CR, LF or NUL"))
        return None
    return Address(email=address.email, name=" ".join(name.split()))
