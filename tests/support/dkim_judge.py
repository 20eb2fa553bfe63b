"""Independent DKIM verifiers for tests, each reading public keys from a DNS server
(normally tests.support.dns.DnsServer on loopback):

    mail_dkim(message, dns)   Perl's Mail::DKIM (tests/support/dkim_verify.pl); skips the
                              test when perl or Mail::DKIM is missing
    dkimpy(message, dns)      dkimpy's verifier, keys looked up through dnspython

Both return one Verdict per DKIM-Signature header, top to bottom; result is "pass",
"fail", "invalid" (unusable signature or key: missing record, unsupported algorithm)
or "none" (no signature at all).
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver
import pytest

SCRIPT = Path(__file__).with_name("dkim_verify.pl")


class Nameserver(Protocol):
    host: str
    port: int


@dataclass(frozen=True)
class Verdict:
    result: str
    domain: str
    selector: str
    algorithm: str
    detail: str = ""


@functools.cache
def mail_dkim_version() -> str | None:
    """Mail::DKIM's version, or None when perl or the module is missing."""
    if shutil.which("perl") is None:
        return None
    proc = subprocess.run(["perl", "-MMail::DKIM", "-MMail::DKIM::Verifier", "-e", "print $Mail::DKIM::VERSION"],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else None


def mail_dkim(message: bytes, server: Nameserver) -> list[Verdict]:
    """Verify with Perl's Mail::DKIM; pytest.skip when it is not installed
    (scripts/ensure-test-tools.sh installs it)."""
    if mail_dkim_version() is None:
        pytest.skip("perl with Mail::DKIM is missing: run `bash scripts/ensure-test-tools.sh` "
                    "(Debian package libmail-dkim-perl)")
    proc = subprocess.run(["perl", str(SCRIPT), server.host, str(server.port)], input=message,
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"dkim_verify.pl failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    verdicts = []
    for line in proc.stdout.decode().splitlines():
        result, domain, selector, algorithm, *detail = line.split(" ", 4)
        verdicts.append(Verdict(result, domain, selector, algorithm, " ".join(detail).strip()))
    return verdicts


def dkimpy(message: bytes, server: Nameserver) -> list[Verdict]:
    """Verify every signature with dkimpy (`dkim.DKIM(message).verify(idx, dnsfunc=...)`,
    what `dkim.verify` does for the first one)."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), dns.rdatatype.TXT, lifetime=timeout,
                                      raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        except dns.exception.Timeout as e:
            raise dkim.DnsTimeoutError(str(e)) from e
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None

    errors = _Errors()
    logger = logging.getLogger("tests.dkim_judge")
    logger.propagate = False
    logger.addHandler(errors)
    try:
        verifier = dkim.DKIM(message, logger=logger)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        if not count:
            return [Verdict("none", "-", "-", "-")]
        return [_one(verifier, idx, dnsfunc, errors) for idx in range(count)]
    finally:
        logger.removeHandler(errors)


def _one(verifier: dkim.DKIM, idx: int, dnsfunc: object, errors: _Errors) -> Verdict:
    errors.messages.clear()
    verifier.signature_fields = {}
    try:
        ok = verifier.verify(idx, dnsfunc=dnsfunc)
        result = "pass" if ok else ("invalid" if errors.messages else "fail")
        detail = "; ".join(errors.messages)
    except dkim.ValidationError as e:  # e.g. body hash mismatch
        result, detail = ("fail" if "mismatch" in str(e) else "invalid"), str(e)
    except dkim.DKIMException as e:
        result, detail = "invalid", str(e)
    fields = verifier.signature_fields
    return Verdict(result, _text(fields.get(b"d")), _text(fields.get(b"s")), _text(fields.get(b"a")), detail)


def _text(value: bytes | None) -> str:
    return value.decode("ascii", "replace") if value else "-"


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
