"""AUTH for the SMTP submission listener: PLAIN and LOGIN, the password is an API key.

aiosmtpd's `authenticator=` hook is synchronous, and looking a key up is not (the
database), so the two mechanisms are implemented here as the handler's `auth_PLAIN` /
`auth_LOGIN` (aiosmtpd awaits those and lets them replace its own). The user name is
free (`apikey` by convention); the key must have the `send` scope.

- Wrong, unknown, revoked or expired key: `535 5.7.8`. A valid key without the send
  scope: `535 5.7.8` saying so.
- Failed logins count per client address (server.auth_failures, shared with the gRPC
  API: POSTWIRE_AUTH_FAILURES_PER_MINUTE, on the same limiter); past it the address
  gets `454 4.7.0` without its keys being looked up until the budget allows.
- The password never reaches a log line.
"""

from __future__ import annotations

import binascii
import ipaddress
import logging
from base64 import b64decode
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult
from prometheus_client import Counter

from core.errors import Unauthenticated, Unavailable
from core.keys.manager import KeyManager, Principal
from core.limits.interface import RateLimiter
from core.observability.metrics import metric
from server.auth_failures import FailedLogins

log = logging.getLogger(__name__)

SEND_SCOPE = "send"
INVALID = "535 5.7.8 Authentication credentials invalid"
NO_SEND_SCOPE = "535 5.7.8 Authentication credentials invalid: this API key lacks the send scope"
TEMPORARY = "454 4.7.0 Temporary authentication failure, please try again later"

MESSAGES = metric(
    Counter,
    "postwire_submission_messages_total",
    "SMTP submission outcomes: accepted (250 after the email is stored), rejected (5xx), deferred"
    " (4xx: database down, rate limit), auth_failed (AUTH refused).",
    ["outcome"],
)


def peer_address(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class SubmissionAuth:
    """The AUTH half of the submission handler (mixed into SubmissionHandler)."""

    def __init__(self, keys: KeyManager, limiter: RateLimiter, failures_per_minute: int) -> None:
        self.keys = keys
        self.limiter = limiter
        self.failures = FailedLogins(limiter, failures_per_minute)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        parts = bytes(blob).split(b"\x00")  # authzid NUL authcid NUL password (RFC 4616)
        if len(parts) != 3:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Can't split auth value")
        return await self.check_key(server, parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(SMTP.AuthLoginUsernameChallenge)
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                b64decode(args[1].encode(), validate=True)  # the user name: free
            except (binascii.Error, ValueError):
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        password = await server.challenge_auth(SMTP.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self.check_key(server, bytes(password))

    async def check_key(self, server: SMTP, password: bytes) -> AuthResult:
        """The API key in `password` as the session's Principal, or the refusal."""
        address = peer_address(server.session)
        blocked = self.failures.blocked_for(address)
        if blocked > 0:
            return self._refused(f"454 4.7.0 Too many failed authentications from {address}; retry in {blocked:.0f}s")
        key = password.decode("utf-8", "replace").strip()
        try:
            principal = await self.keys.authenticate(key)
        except Unauthenticated:
            log.info("submission: AUTH refused for %s (invalid key)", address)
            await self.failures.failed(address)
            return self._refused(INVALID)
        except Unavailable:
            log.warning("submission: cannot check a key for %s (database unavailable)", address)
            return self._refused(TEMPORARY)
        if SEND_SCOPE not in principal.scopes:
            log.info("submission: AUTH refused for %s (key %s lacks the send scope)", address, principal.key_id)
            return self._refused(NO_SEND_SCOPE)
        log.info("submission: %s authenticated with key %s", address, principal.key_id)
        return AuthResult(success=True, auth_data=principal)

    def _refused(self, reply: str) -> AuthResult:
        MESSAGES.labels(outcome="auth_failed").inc()
        return AuthResult(success=False, handled=False, message=reply)


def session_principal(session: Any) -> Principal | None:
    data = getattr(session, "auth_data", None)
    return data if isinstance(data, Principal) else None
