"""The SDK's and CLI's pure parts for sending domains and address checks: algorithm
names, the records table, domain and check lines, and the `domains` / `validate`
arguments."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import domain_pb2
from postwire_client.cli import build_parser
from postwire_client.domain_commands import (
    algorithms,
    check_line,
    domain_text,
    domains_lines,
    records_table,
    table,
)
from postwire_client.domains import create_domain_request, dkim_algorithm

RSA, ED = domain_pb2.DKIM_ALGORITHM_RSA_SHA256, domain_pb2.DKIM_ALGORITHM_ED25519_SHA256
DKIM_VALUE = "v=DKIM1; k=rsa; p=" + "M" * 392


def domain() -> domain_pb2.Domain:
    return domain_pb2.Domain(
        domain_id="dom_abc", name="example.com", state=domain_pb2.DOMAIN_STATE_PENDING,
        reason="publish the TXT record at pw1._domainkey.example.com (not found in DNS)",
        created_at=Timestamp(seconds=1_796_000_000),
        records=[
            domain_pb2.DnsRecord(purpose=domain_pb2.DNS_RECORD_PURPOSE_DKIM, type="TXT",
                                 name="pw1._domainkey.example.com", value=DKIM_VALUE, required=True,
                                 status=domain_pb2.DNS_RECORD_STATUS_DIFFERENT, found=["v=DKIM1; p=OLD"],
                                 selector="pw1"),
            domain_pb2.DnsRecord(purpose=domain_pb2.DNS_RECORD_PURPOSE_SPF, type="TXT", name="example.com",
                                 value="v=spf1 a:mta.example.net ~all", status=domain_pb2.DNS_RECORD_STATUS_MISSING),
            domain_pb2.DnsRecord(purpose=domain_pb2.DNS_RECORD_PURPOSE_RETURN_PATH, type="MX",
                                 name="bounces.example.com", value="10 mta.example.net",
                                 status=domain_pb2.DNS_RECORD_STATUS_FOUND),
        ],
        dkim_keys=[domain_pb2.DkimKey(selector="pw1", algorithm=RSA, state=domain_pb2.DKIM_KEY_STATE_PENDING,
                                      created_at=Timestamp(seconds=1_796_000_000))],
    )


@pytest.mark.parametrize(("given", "value"), [
    ("rsa", RSA), ("RSA-SHA256", RSA), ("ed25519", ED), (" Ed25519-sha256 ", ED),
    ("DKIM_ALGORITHM_ED25519_SHA256", ED), (ED, ED), (0, 0),
])
def test_dkim_algorithms_are_taken_by_short_name_enum_name_or_value(given: int | str, value: int) -> None:
    assert dkim_algorithm(given) == value


def test_an_unknown_algorithm_name_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="use rsa or ed25519"):
        dkim_algorithm("dsa")


def test_create_request_converts_every_algorithm() -> None:
    request = create_domain_request("example.com", ["rsa", ED])
    assert request.name == "example.com" and list(request.dkim_algorithms) == [RSA, ED]
    assert list(create_domain_request("example.com").dkim_algorithms) == []


def test_table_pads_columns_and_lets_a_cell_over_its_cap_run_over() -> None:
    lines = table([["A", "BB", "C"], ["aaa", "b" * 10, "c"], ["x", "y", "z"]], (None, 4))
    assert lines == ["A    BB    C", "aaa  bbbbbbbbbb  c", "x    y     z"]


def test_records_table_lists_purpose_type_name_whole_value_and_status() -> None:
    lines = records_table(domain().records)
    assert lines[0].split() == ["PURPOSE", "TYPE", "NAME", "VALUE", "STATUS"]
    dkim = [cell.strip() for cell in lines[1].split("  ")]
    assert [c for c in dkim if c] == ["DKIM*", "TXT", "pw1._domainkey.example.com", DKIM_VALUE, "DIFFERENT"]
    assert lines[2] == "    found: v=DKIM1; p=OLD"
    assert lines[3].split()[:3] == ["SPF", "TXT", "example.com"] and lines[3].endswith("  MISSING")
    assert "v=spf1 a:mta.example.net ~all" in lines[3]
    assert lines[4].split()[:2] == ["RETURN-PATH", "MX"] and lines[4].endswith("  FOUND")
    # Short values share one column: their statuses line up.
    assert lines[3].index("MISSING") == lines[4].index("FOUND")
    assert lines[-1].startswith("* required")


def test_domain_text_shows_name_state_id_reason_times_records_and_keys() -> None:
    text = domain_text(domain())
    first, reason, created = text.splitlines()[:3]
    assert first == "example.com  PENDING  dom_abc"
    assert reason == "  reason:       publish the TXT record at pw1._domainkey.example.com (not found in DNS)"
    assert created.startswith("  created:      2026-")
    assert "DNS records to publish:" in text and "last checked" not in text
    keys = text.split("DKIM keys:\n")[1].splitlines()
    assert keys[0].split() == ["SELECTOR", "ALGORITHM", "STATE", "CREATED", "ACTIVATED"]
    assert keys[1].split()[:3] == ["pw1", "RSA_SHA256", "PENDING"] and keys[1].endswith("-")


def test_domains_lines_are_one_per_domain_or_a_hint_when_there_are_none() -> None:
    lines = domains_lines([domain(), domain_pb2.Domain(name="b.example", state=domain_pb2.DOMAIN_STATE_VERIFIED,
                                                       domain_id="dom_b")])
    assert [line.split() for line in lines] == [["NAME", "STATE", "ID", "LAST", "CHECKED"],
                                               ["example.com", "PENDING", "dom_abc", "-"],
                                               ["b.example", "VERIFIED", "dom_b", "-"]]
    assert "postwire domains create" in domains_lines([])[0]


def test_a_check_line_says_the_verdict_why_and_where_mail_goes() -> None:
    ok = apb.AddressCheck(address="ada@example.com", verdict=apb.ADDRESS_VERDICT_DELIVERABLE,
                          reason="valid syntax and the domain accepts mail via its MX hosts",
                          mail_hosts=["mx1.example.com", "mx2.example.com"])
    assert check_line(ok) == ("ada@example.com  deliverable  valid syntax and the domain accepts mail via its MX "
                              "hosts (mx1.example.com, mx2.example.com)")
    bad = apb.AddressCheck(address="x@nowhere.example", verdict=apb.ADDRESS_VERDICT_UNDELIVERABLE,
                           reason="the domain nowhere.example does not exist")
    assert check_line(bad) == "x@nowhere.example  undeliverable  the domain nowhere.example does not exist"


@pytest.mark.parametrize(("flags", "chosen"), [
    ([], [RSA]), (["--rsa"], [RSA]), (["--ed25519"], [ED]), (["--ed25519", "--rsa"], [RSA, ED]),
])
def test_domains_create_takes_the_name_and_the_key_algorithms(flags: list[str], chosen: list[int]) -> None:
    args = build_parser().parse_args(["domains", "create", "example.com", *flags])
    assert args.name == "example.com" and algorithms(args) == chosen and args.json is False


def test_every_domains_action_takes_an_id_or_name_and_json_where_it_prints_a_domain() -> None:
    parser = build_parser()
    for action in ("get", "verify", "rotate-key"):
        args = parser.parse_args(["domains", action, "example.com", "--json", "--address", "h:1"])
        assert args.domain_id == "example.com" and args.json and args.address == "h:1"
    assert parser.parse_args(["domains", "delete", "dom_x"]).domain_id == "dom_x"
    assert parser.parse_args(["domains", "list", "--json"]).json
    assert parser.parse_args(["domains", "rotate-key", "dom_x", "--ed25519"]).ed25519


def test_domains_needs_an_action_and_validate_an_address(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for argv in (["domains"], ["validate"], ["domains", "get"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 2
    assert "required" in capsys.readouterr().err
    args = parser.parse_args(["validate", "a@example.com", "b@example.com", "--json"])
    assert args.addresses == ["a@example.com", "b@example.com"] and args.json
