"""Recognising opens and clicks that no person made: privacy proxies that fetch every
image when a message arrives, and security scanners that follow every link.

    apple-mpp           Apple Mail Privacy Protection: fetched from Apple's 17.0.0.0/8
    google-image-proxy  Gmail's image proxy (GoogleImageProxy in the user agent)
    scanner             a known link scanner, preview bot or HTTP library user agent
    head                a HEAD request (scanners check links that way; browsers GET)
    no-user-agent       no User-Agent header at all

Best effort by design: a scanner that passes for a browser from an ordinary address is
not recognised. The client address is the peer's, or behind a trusted proxy (Envoy,
POSTWIRE_TRUSTED_PROXIES) the last one it added to x-forwarded-for.
"""

from __future__ import annotations

import ipaddress

APPLE = ipaddress.ip_network("17.0.0.0/8")
_SCANNERS = (
    "barracuda", "mimecast", "proofpoint", "symantec", "trendmicro", "trend micro", "forcepoint", "sophos",
    "fireeye", "cisco", "ironport", "safelinks", "bingpreview", "yahoomailproxy", "microsoft office existence",
    "ms-office", "python-requests", "python-urllib", "aiohttp", "httpx", "go-http-client", "curl/", "wget",
    "java/", "okhttp", "libwww", "headlesschrome", "phantomjs", "bot", "crawler", "spider", "scanner",
    "slurp", "preview",
)


def client_address(peer: str, forwarded_for: str, trusted: frozenset[str]) -> str:
    """The client's IP: the peer's, or behind a trusted proxy the last x-forwarded-for entry."""
    if peer in trusted:
        forwarded = [a.strip() for a in forwarded_for.split(",") if a.strip()]
        if forwarded:
            return forwarded[-1]
    return peer


def machine_reason(address: str, user_agent: str, method: str) -> str:
    """Why the hit looks like a machine's ("" when it does not)."""
    try:
        if ipaddress.ip_address(address) in APPLE:
            return "apple-mpp"
    except ValueError:
        pass
    agent = user_agent.lower()
    if "googleimageproxy" in agent:
        return "google-image-proxy"
    if method == "HEAD":
        return "head"
    if not agent.strip():
        return "no-user-agent"
    if any(word in agent for word in _SCANNERS):
        return "scanner"
    return ""


def detail(first: bool, machine: str, user_agent: str, url: str = "") -> str:
    """An OPENED/CLICKED event's detail: `first` or `repeat` (the first open/click of the
    email by that recipient, or not), then `; machine: <reason>` when recognised, the
    link (`; url: ...`, clicks) and the user agent last (it may hold `;`)."""
    parts = ["first" if first else "repeat"]
    if machine:
        parts.append(f"machine: {machine}")
    if url:
        parts.append(f"url: {url[:500]}")
    parts.append(f"user agent: {user_agent[:300]}")
    return "; ".join(parts)[:1000]
