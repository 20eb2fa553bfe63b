"""Sending domains and address checks through the SDK and the `postwire` command, on the
shared stack and its DNS server: create a domain, publish its DKIM record, verify it;
the CLI's tables, JSON and one-line errors; `postwire validate` against real lookups.

Every test uses domain names of its own (the stack and its DNS zone last the session)
and publishes a record before the first lookup of its name (answers are cached).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess

import pytest

from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import domain_pb2
from postwire_client import AsyncClient, Client, InvalidArgument, NotFound, PermissionDenied
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import create_key
from tests.support.dns import DnsServer
from tests.support.processes import POSTWIRE, REPO, base_env

DKIM = domain_pb2.DNS_RECORD_PURPOSE_DKIM
FOUND = domain_pb2.DNS_RECORD_STATUS_FOUND


def unique(prefix: str, parent: str = "example.test") -> str:
    return f"{prefix}-{secrets.token_hex(3)}.{parent}"


def mail_domain(prefix: str) -> str:
    """A name for addresses: Send's syntax rules (and so validation) refuse `.test`."""
    return unique(prefix, "example.com")


@pytest.fixture(scope="module")
def admin_key(stack: Stack) -> str:
    """An admin key (DomainService) on an account of this module's own."""
    return create_key(stack, f"domains-cli-{secrets.token_hex(3)}", "--scope", "admin", "--scope", "read")


def cli(stack: Stack, key: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([POSTWIRE, *args], env=base_env(address=stack.address, api_key=key), cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    if ok:
        assert result.returncode == 0, f"postwire {args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def publish_dkim(dns: DnsServer, domain: domain_pb2.Domain) -> list[domain_pb2.DnsRecord]:
    """Publish every DKIM record the domain lists, exactly as listed."""
    records = [r for r in domain.records if r.purpose == DKIM]
    for record in records:
        assert record.type == "TXT" and record.value.startswith("v=DKIM1;")
        dns.add(record.name, "TXT", record.value)
    return records


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("algorithms", [(), ("rsa", "ed25519")], ids=["rsa", "rsa+ed25519"])
def test_a_domain_whose_dkim_records_are_published_verifies(
    stack: Stack, dns: DnsServer, admin_key: str, algorithms: tuple[str, ...]
) -> None:
    name = unique("sdk")
    with Client(stack.address, admin_key) as client:
        created = client.create_domain(name, dkim_algorithms=algorithms).domain
        assert created.name == name and created.domain_id.startswith("dom_")
        assert created.state == domain_pb2.DOMAIN_STATE_PENDING
        dkim = [r for r in created.records if r.purpose == DKIM]
        assert len(dkim) == max(1, len(algorithms)) and all(r.required for r in dkim)
        assert all(r.status == domain_pb2.DNS_RECORD_STATUS_NOT_CHECKED for r in created.records)
        publish_dkim(dns, created)

        verified = client.verify_domain(created.domain_id).domain
        assert verified.state == domain_pb2.DOMAIN_STATE_VERIFIED, verified.reason
        assert [r.status for r in verified.records if r.purpose == DKIM] == [FOUND] * len(dkim)
        assert all(k.state == domain_pb2.DKIM_KEY_STATE_ACTIVE for k in verified.dkim_keys)
        assert verified.reason == "" and verified.HasField("verified_at")

        assert client.get_domain(name).domain.domain_id == created.domain_id  # by name too
        assert created.domain_id in [d.domain_id for d in client.iter_domains(page_size=1)]
        client.delete_domain(name)
        with pytest.raises(NotFound):
            client.get_domain(created.domain_id)


def test_iter_domains_follows_the_page_tokens(stack: Stack, admin_key: str) -> None:
    names = sorted(unique(f"page{i}") for i in range(3))
    with Client(stack.address, admin_key) as client:
        for name in names:
            client.create_domain(name)
        first = client.list_domains(page_size=2)
        assert len(first.domains) == 2 and first.next_page_token
        listed = [d.name for d in client.iter_domains(page_size=2)]
        assert [n for n in listed if n in names] == names and listed == sorted(listed)
        for name in names:
            client.delete_domain(name)


def test_the_async_client_manages_domains_and_validates_addresses(stack: Stack, dns: DnsServer, admin_key: str) -> None:
    name = mail_domain("aio")
    dns.add(name, "MX", f"10 mx.{name}.")
    dns.add(f"mx.{name}", "A", "127.0.0.2")

    async def run() -> None:
        async with AsyncClient(stack.address, admin_key) as client:
            created = (await client.create_domain(name)).domain
            assert [d.name async for d in client.iter_domains() if d.name == name] == [name]
            assert (await client.get_domain(created.domain_id)).domain.name == name
            with pytest.raises(InvalidArgument, match="already waiting for its DNS record"):
                await client.rotate_dkim_key(name)  # the first key is not published yet
            check = (await client.validate_address(f"ada@{name}")).check
            assert check.verdict == apb.ADDRESS_VERDICT_DELIVERABLE and list(check.mail_hosts) == [f"mx.{name}"]
            await client.delete_domain(name)

    asyncio.run(run())


def test_the_cli_creates_lists_verifies_shows_and_deletes_a_domain(stack: Stack, dns: DnsServer, admin_key: str) -> None:
    name = unique("cli")
    created = cli(stack, admin_key, "domains", "create", name).stdout
    first = created.splitlines()[0].split()
    assert first[:2] == [name, "PENDING"] and first[2].startswith("dom_")
    domain_id = first[2]
    header = next(line for line in created.splitlines() if line.startswith("PURPOSE"))
    assert header.split() == ["PURPOSE", "TYPE", "NAME", "VALUE", "STATUS"]
    dkim_row = next(line for line in created.splitlines() if line.startswith("DKIM*"))
    assert "._domainkey." + name in dkim_row and "v=DKIM1; k=rsa; p=" in dkim_row and dkim_row.endswith("NOT_CHECKED")
    for purpose in ("SPF", "DMARC", "RETURN-PATH"):
        assert any(line.startswith(purpose + " ") for line in created.splitlines()), created
    assert f"postwire domains verify {name}" in created

    as_json = json.loads(cli(stack, admin_key, "domains", "get", name, "--json").stdout)
    assert as_json["domain"]["domain_id"] == domain_id and as_json["domain"]["state"] == "DOMAIN_STATE_PENDING"
    [record] = [r for r in as_json["domain"]["records"] if r["purpose"] == "DNS_RECORD_PURPOSE_DKIM"]
    assert record["value"] in dkim_row  # the table shows the value whole
    dns.add(record["name"], "TXT", record["value"])

    verified = cli(stack, admin_key, "domains", "verify", domain_id).stdout
    assert verified.splitlines()[0] == f"{name}  VERIFIED  {domain_id}"
    assert next(line for line in verified.splitlines() if line.startswith("DKIM*")).endswith("  FOUND")
    assert "ACTIVE" in verified.split("DKIM keys:")[1]

    listed = cli(stack, admin_key, "domains", "list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "STATE", "ID", "LAST", "CHECKED"]
    [row] = [line.split() for line in listed if line.startswith(name + " ")]
    assert row[:3] == [name, "VERIFIED", domain_id] and row[3].endswith("Z")
    names = [d["name"] for d in json.loads(cli(stack, admin_key, "domains", "list", "--json").stdout)["domains"]]
    assert name in names

    shown = cli(stack, admin_key, "domains", "get", domain_id).stdout
    assert shown.splitlines()[0] == f"{name}  VERIFIED  {domain_id}" and "verified:" in shown

    rotated = cli(stack, admin_key, "domains", "rotate-key", name).stdout
    dkim_rows = [line for line in rotated.splitlines() if line.startswith("DKIM*")]
    assert len(dkim_rows) == 2 and dkim_rows[0].endswith("NOT_CHECKED") and dkim_rows[1].endswith("FOUND")
    assert "New key pw" in rotated

    deleted = cli(stack, admin_key, "domains", "delete", name)
    assert deleted.stdout.startswith(f"deleted {name}")
    gone = cli(stack, admin_key, "domains", "get", domain_id, ok=False)
    assert_one_line_error(gone, "NOT_FOUND", domain_id)


def test_a_missing_domain_or_a_bad_name_exits_1_with_one_sentence(stack: Stack, admin_key: str) -> None:
    missing = unique("missing")
    for action in ("get", "verify", "delete", "rotate-key"):
        assert_one_line_error(cli(stack, admin_key, "domains", action, missing, ok=False),
                              f"error: NOT_FOUND: no domain '{missing}'")
    bad = cli(stack, admin_key, "domains", "create", "not a domain", ok=False)
    assert bad.returncode == 1 and bad.stdout == "" and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: INVALID_ARGUMENT: ") and "  name: " in bad.stderr


def test_domain_commands_need_an_admin_key(stack: Stack) -> None:
    result = cli(stack, stack.key_a, "domains", "list", ok=False)
    assert_one_line_error(result, "PERMISSION_DENIED", "'admin' scope")
    with stack.client() as client, pytest.raises(PermissionDenied):
        client.create_domain(unique("scope"))


def test_validate_says_deliverable_for_a_domain_with_an_mx_and_undeliverable_without(
    stack: Stack, dns: DnsServer
) -> None:
    good, absent = mail_domain("mx"), mail_domain("absent")
    dns.add(good, "MX", f"10 mx1.{good}.")
    dns.add(f"mx1.{good}", "A", "127.0.0.2")

    one = cli(stack, stack.key_a, "validate", f"ada@{good}").stdout
    assert one == f"ada@{good}  deliverable  valid syntax and the domain accepts mail via its MX hosts (mx1.{good})\n"

    many = cli(stack, stack.key_a, "validate", f"bob@{absent}", f"carol@{good}", "not-an-address").stdout.splitlines()
    assert many[0] == f"bob@{absent}  undeliverable  the domain {absent} does not exist"
    assert many[1].startswith(f"carol@{good}  deliverable  ")
    assert many[2].startswith("not-an-address  undeliverable  ")

    ndjson = cli(stack, stack.key_a, "validate", "--json", f"dan@{good}", f"eve@{absent}").stdout.splitlines()
    checks = [json.loads(line) for line in ndjson]
    assert [(c["address"], c["verdict"], c["domain_status"]) for c in checks] == [
        (f"dan@{good}", "ADDRESS_VERDICT_DELIVERABLE", "MAIL_DOMAIN_STATUS_MX"),
        (f"eve@{absent}", "ADDRESS_VERDICT_UNDELIVERABLE", "MAIL_DOMAIN_STATUS_NO_SUCH_DOMAIN"),
    ]
