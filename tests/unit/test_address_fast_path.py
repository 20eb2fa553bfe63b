"""The ASCII dot-atom fast path of address parsing agrees with email-validator, which
it skips for the local part: same acceptance, same normalised address."""

import random
import string

from email_validator import EmailNotValidError, validate_email

from core.emails.addresses import _addr_spec, _Invalid

_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_DOMAINS = [
    "example.com", "EXAMPLE.Com", "mail.example.co.uk", "a.b.c.d.example.org", "xn--bcher-kva.de", "xn--zz.de",
    "localhost", "foo.test", "a.invalid", "x.local", "y.onion", "host.arpa", "com", "1.2.3.4", "[1.2.3.4]",
    "-bad.com", "bad-.com", "under_score.com", "example.com.", ".example.com", "ex..ample.com", "e.x", "a.123",
    "l" * 63 + ".com", "l" * 64 + ".com", ".".join(["abcdefghi"] * 25) + ".com", "exa mple.com", "",
]


def _reference(spec: str) -> str | None:
    try:
        return validate_email(spec, check_deliverability=False, allow_smtputf8=True).normalized
    except EmailNotValidError:
        return None


def _ours(spec: str) -> str | None:
    try:
        return _addr_spec(spec)
    except _Invalid:
        return None


def _local(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.1:
        return rng.choice([".a", "a.", "a..b", "", "a" * 64, "a" * 65, '"quoted"', "a(b)", "ü"])
    words = ["".join(rng.choice(_ATEXT) for _ in range(rng.randint(1, 12))) for _ in range(rng.randint(1, 4))]
    return ".".join(words)


def test_the_fast_path_accepts_and_normalises_exactly_as_email_validator() -> None:
    rng = random.Random(19)
    specs = [f"{_local(rng)}@{rng.choice(_DOMAINS)}" for _ in range(5000)]
    specs += ["a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"]  # 254 and 255 characters long
    specs += ["a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"]
    disagreements = [(spec, _ours(spec), _reference(spec)) for spec in specs if _ours(spec) != _reference(spec)]
    assert disagreements == []
