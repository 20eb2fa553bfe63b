"""The records a sending domain publishes, how lookups compare with them, and the
state a check settles on (core.domains.records: pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.domains.records import (
    ACTIVE,
    DIFFERENT,
    FOUND,
    LOOKUP_FAILED,
    MISSING,
    PENDING,
    RETIRED,
    Check,
    KeyRecord,
    compare,
    covers,
    expected,
    judge,
    normalize_domain,
)

NOW = datetime(2026, 12, 6, tzinfo=UTC)
HOST = "mta.example.net"


def key(id_: int, state: str, p: str = "AAAA", algorithm: str = "rsa-sha256") -> KeyRecord:
    k = "ed25519" if algorithm.startswith("ed") else "rsa"
    return KeyRecord(id_, f"sel{id_}", algorithm, state, f"v=DKIM1; k={k}; p={p}{id_}", NOW, None)


@pytest.mark.parametrize(("given", "normal"), [
    ("Example.COM", "example.com"), ("example.com.", "example.com"), (" mail.example.org ", "mail.example.org"),
    ("bücher.example", "xn--bcher-kva.example"),
])
def test_domain_names_are_stored_in_their_ascii_lower_case_form(given: str, normal: str) -> None:
    assert normalize_domain(given) == normal


@pytest.mark.parametrize("bad", ["", "localhost", "127.0.0.1", "-bad.com", "a..b", "x" * 64 + ".com", "exa mple.com"])
def test_names_that_are_not_domains_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_domain(bad)


def test_a_domain_covers_itself_and_its_subdomains_only() -> None:
    assert covers("example.com", "example.com") and covers("example.com", "mail.example.com")
    assert not covers("example.com", "badexample.com") and not covers("mail.example.com", "example.com")


def test_the_records_list_dkim_first_then_spf_dmarc_and_return_path() -> None:
    records = expected("example.com", [key(1, ACTIVE), key(2, PENDING), key(3, RETIRED)], HOST, "bounces")
    assert [(r.purpose, r.name) for r in records] == [
        ("dkim", "sel2._domainkey.example.com"), ("dkim", "sel1._domainkey.example.com"),
        ("dkim", "sel3._domainkey.example.com"), ("spf", "example.com"), ("dmarc", "_dmarc.example.com"),
        ("return_path", "bounces.example.com"),
    ]
    assert [r.required for r in records[:3]] == [True, True, False]
    assert records[3].value == f"v=spf1 a:{HOST} ~all" and records[5].value == f"10 {HOST}"


def test_a_dkim_record_is_found_whatever_its_spacing_and_different_with_another_key() -> None:
    [record, *_] = expected("example.com", [key(1, PENDING, "MIIB")], HOST, "bounces")
    assert compare(record, ["v=DKIM1;k=rsa;  p=MIIB1"], HOST).status == FOUND
    assert compare(record, ["v=DKIM1; k=rsa; p=OTHER"], HOST) == Check(DIFFERENT, ("v=DKIM1; k=rsa; p=OTHER",))
    assert compare(record, ["some other text"], HOST).status == MISSING
    assert compare(record, [], HOST).status == MISSING


def test_spf_is_found_when_it_names_the_sending_host() -> None:
    spf = expected("example.com", [], HOST, "bounces")[0]
    assert compare(spf, [f"v=spf1 include:_spf.google.com a:{HOST} -all", "google-site-verification=x"], HOST).status == FOUND
    assert compare(spf, ["v=spf1 include:_spf.google.com -all"], HOST).status == DIFFERENT
    assert compare(spf, ["google-site-verification=x"], HOST).status == MISSING


def _checks(records: list, statuses: dict[str, str]) -> dict[str, Check]:
    return {r.key: Check(statuses.get(r.selector or r.purpose, MISSING)) for r in records}


def test_a_pending_key_found_activates_and_verifies_the_domain() -> None:
    keys = [key(1, PENDING)]
    records = expected("example.com", keys, HOST, "bounces")
    outcome = judge("pending", keys, records, _checks(records, {"sel1": FOUND}))
    assert (outcome.state, outcome.activate) == ("verified", (1,))


def test_a_missing_record_keeps_a_new_domain_pending_and_fails_a_verified_one() -> None:
    keys = [key(1, PENDING)]
    records = expected("example.com", keys, HOST, "bounces")
    pending = judge("pending", keys, records, _checks(records, {}))
    assert pending.state == "pending" and "sel1._domainkey.example.com" in pending.reason
    lost = judge("verified", [key(1, ACTIVE)], records, _checks(records, {}))
    assert lost.state == "failed"
    assert judge("pending", keys, records, _checks(records, {"sel1": DIFFERENT})).state == "failed"


def test_a_failed_lookup_changes_nothing() -> None:
    keys = [key(1, ACTIVE)]
    records = expected("example.com", keys, HOST, "bounces")
    outcome = judge("verified", keys, records, _checks(records, {"sel1": LOOKUP_FAILED}))
    assert (outcome.state, outcome.activate, outcome.drop) == ("verified", (), ())


def test_rotation_retires_the_old_key_once_the_new_one_is_found_and_drops_it_when_its_record_goes() -> None:
    keys = [key(1, ACTIVE), key(2, PENDING)]
    records = expected("example.com", keys, HOST, "bounces")
    waiting = judge("verified", keys, records, _checks(records, {"sel1": FOUND}))
    assert (waiting.state, waiting.activate, waiting.retire) == ("verified", (), ())
    swapped = judge("verified", keys, records, _checks(records, {"sel1": FOUND, "sel2": FOUND}))
    assert (swapped.state, swapped.activate, swapped.retire) == ("verified", (2,), (1,))
    # The user already removed the old record when publishing the new one: still fine.
    early = judge("verified", keys, records, _checks(records, {"sel2": FOUND}))
    assert (early.state, early.activate, early.retire) == ("verified", (2,), (1,))
    later = [key(1, RETIRED), key(2, ACTIVE)]
    records = expected("example.com", later, HOST, "bounces")
    kept = judge("verified", later, records, _checks(records, {"sel1": FOUND, "sel2": FOUND}))
    assert kept.drop == () and kept.state == "verified"
    gone = judge("verified", later, records, _checks(records, {"sel2": FOUND}))
    assert gone.drop == (1,) and gone.state == "verified"


def test_a_second_algorithm_key_does_not_retire_the_first() -> None:
    keys = [key(1, ACTIVE), key(2, PENDING, algorithm="ed25519-sha256")]
    records = expected("example.com", keys, HOST, "bounces")
    outcome = judge("verified", keys, records, _checks(records, {"sel1": FOUND, "sel2": FOUND}))
    assert (outcome.activate, outcome.retire) == ((2,), ())
