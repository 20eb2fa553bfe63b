"""Which webhook URLs are acceptable: http(s) only, and (unless private addresses are
allowed) a host that resolves only to public addresses. Checked when an endpoint is
created or changed, and again on every connection (DNS can change)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from core.errors import FieldViolation

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """The host resolves to an address webhooks may not reach (or does not resolve)."""


def refusal(address: IPAddress) -> str:
    """Why the address may not be used ("" if it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for reason in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:
        return "not public"
    return ""


def url_violations(url: str, field: str = "url") -> list[FieldViolation]:
    """Syntax only: http(s), a host, at most MAX_URL_LENGTH characters."""
    if not url:
        return [FieldViolation(field, "required")]
    if len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        return [FieldViolation(field, f"at most {MAX_URL_LENGTH} characters, no spaces")]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return [FieldViolation(field, "not a valid URL")]
    if parts.scheme not in ("http", "https"):
        return [FieldViolation(field, "must be an http or https URL")]
    if not parts.hostname:
        return [FieldViolation(field, "must name a host")]
    if parts.fragment:
        return [FieldViolation(field, "must not have a fragment")]
    return []


async def resolve_allowed(host: str, port: int, allow_private: bool) -> list[str]:
    """The host's addresses, every one allowed; AddressRefused otherwise."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as exc:  # ValueError: not encodable as IDNA (UnicodeError), NUL
            raise AddressRefused(f"host {host!r} does not resolve") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise AddressRefused(f"host {host!r} resolves to a {reason} address ({address})")
    return addresses


async def check_url(url: str, allow_private: bool, field: str = "url") -> list[FieldViolation]:
    """Syntax, then the host's addresses."""
    violations = url_violations(url, field)
    if violations:
        return violations
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await resolve_allowed(parts.hostname or "", port, allow_private)
    except AddressRefused as exc:
        return [FieldViolation(field, str(exc))]
    return []
