"""Sending domains, DKIM and direct-to-MX delivery on a real stack of its own.

The stack (server, worker, scheduler processes on PostgreSQL, RabbitMQ and Redis)
delivers straight to MX hosts (POSTWIRE_DELIVERY_ROUTE=mx) and refuses unverified From
domains. The internet is stood up on loopback: a real DNS server (dnslib) serving the
zones, and aiosmtpd receivers on 127.0.0.2, .3 and .4 standing for the recipients' MX
hosts, all on one port (POSTWIRE_MX_PORT). Signatures are checked by independent
verifiers (Perl's Mail::DKIM and dkimpy) that read the keys from that DNS server.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import address_service_pb2_grpc, domain_pb2, domain_service_pb2_grpc, email_pb2, event_pb2
from postwire.v1 import domain_service_pb2 as dpb
from postwire.v1 import email_service_pb2 as epb
from postwire_client import Client
from postwire_client.errors import FailedPrecondition
from tests.support import dkim_judge
from tests.support.dns import DnsServer
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import run, running_stack
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

HOST = "mta.postwire.test"
FINAL = {email_pb2.EMAIL_STATUS_SENT, email_pb2.EMAIL_STATUS_BOUNCED, email_pb2.EMAIL_STATUS_FAILED}


@dataclass
class MxStack:
    address: str
    env: dict[str, str]
    dns: DnsServer
    mx: dict[str, Recorder]  # receiver address -> what it got
    key: str  # account "dom-a", every scope
    key_b: str  # account "dom-b", every scope
    test_key: str  # account "dom-a", a test key

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, key or self.key)


class _Domains:
    """DomainService calls with the client's key and a 30 s deadline."""

    def __init__(self, client: Client) -> None:
        self.stub = domain_service_pb2_grpc.DomainServiceStub(client.channel)
        self.metadata = client.metadata

    def __getattr__(self, name: str) -> Any:
        rpc = getattr(self.stub, name)
        return lambda request: rpc(request, metadata=self.metadata, timeout=30)


def _domains(client: Client) -> Any:
    return _Domains(client)


def _tls_context(tmp: Path) -> ssl.SSLContext:
    ca = trustme.CA()
    cert = ca.issue_cert("mx-tls.recipient.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def mx_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MxStack]:
    logs = tmp_path_factory.mktemp("mx-stack")
    port, grpc_port = free_port(), free_port()
    receivers = {
        "127.0.0.2": SmtpServer("127.0.0.2", port),
        "127.0.0.3": SmtpServer("127.0.0.3", port, tls_context=_tls_context(logs)),
        "127.0.0.4": SmtpServer("127.0.0.4", port),
    }
    with DnsServer() as dns, fresh_database("postwire_mx") as database_url, fresh_queue_prefix("mx") as prefix:
        for server in receivers.values():
            server.__enter__()
        try:
            env = stack_env(
                database_url=database_url, queue_prefix=prefix, grpc_port=grpc_port, smtp_relays="[]",
                delivery_route="mx", require_verified_domains="true", dns_servers=json.dumps([dns.host]),
                dns_port=str(dns.port), dns_timeout="1", mx_port=str(port), sending_host=HOST,
                metrics_port="0", worker_metrics_port="0", domain_recheck_hours="0.001",
            )
            run(["migrate"], env)
            keys = [
                make_key(env, a, *kind, *scopes, name=n)
                for n, a, kind in (("a", "dom-a", []), ("b", "dom-b", []), ("t", "dom-a", ["--kind", "test"]))
                for scopes in [["--scope", "send", "--scope", "read", "--scope", "events", "--scope", "admin"]]
            ]
            with running_stack(env, logs, f"127.0.0.1:{grpc_port}"):
                yield MxStack(f"127.0.0.1:{grpc_port}", env, dns, {h: s.recorder for h, s in receivers.items()},
                              *keys)
        finally:
            for server in receivers.values():
                server.__exit__()


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}.example.com"


def _recipient_domain(stack: MxStack, *hosts: tuple[int, str]) -> str:
    """A recipient domain whose MX records name these (preference, address) hosts."""
    domain = _name("rcpt")
    for i, (preference, address) in enumerate(hosts):
        host = f"mx{i}.{domain}"
        stack.dns.add(domain, "MX", f"{preference} {host}.")
        stack.dns.add(host, "A", address)
    return domain


def _dkim_records(domain: domain_pb2.Domain) -> list[domain_pb2.DnsRecord]:
    return [r for r in domain.records if r.purpose == domain_pb2.DNS_RECORD_PURPOSE_DKIM]


def _verified_domain(stack: MxStack, *algorithms: int) -> domain_pb2.Domain:
    with stack.client() as client:
        created = _domains(client).CreateDomain(dpb.CreateDomainRequest(name=_name("send"), dkim_algorithms=algorithms)).domain
        for record in _dkim_records(created):
            stack.dns.add(record.name, "TXT", record.value)
        verified = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=created.domain_id)).domain
    assert verified.state == domain_pb2.DOMAIN_STATE_VERIFIED, verified
    return verified


def _send(client: Client, sender: str, to: list[str], **fields: object) -> str:
    reply = client.send(epb.SendRequest(from_address=sender, to=to, subject=str(fields.pop("subject", "hello")),
                                        text_body=str(fields.pop("text_body", "body")), **fields))  # type: ignore[arg-type]
    return reply.message_id


def _final(client: Client, message_id: str, timeout: float = 30) -> epb.GetStatusResponse:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_status(message_id)
        if status.status in FINAL:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{message_id} not final after {timeout}s: {status}")


def _received(recorder: Recorder, message_id: str, timeout: float = 20) -> bytes:
    return recorder.wait_for(message_id, timeout).data


# Sending domains --------------------------------------------------------------------------


def test_send_from_an_unverified_domain_is_refused_naming_the_domain(mx_stack: MxStack) -> None:
    domain = _name("nope")
    with mx_stack.client() as client, pytest.raises(FailedPrecondition) as caught:
        _send(client, f"app@{domain}", ["x@example.com"])
    assert domain in caught.value.message


def test_verification_reports_missing_then_different_then_found(mx_stack: MxStack) -> None:
    with mx_stack.client() as client:
        domain = _domains(client).CreateDomain(dpb.CreateDomainRequest(name=_name("verify"))).domain
        assert domain.state == domain_pb2.DOMAIN_STATE_PENDING
        [dkim_record] = _dkim_records(domain)
        assert dkim_record.name.endswith(f"._domainkey.{domain.name}") and dkim_record.required
        assert dkim_record.value.startswith("v=DKIM1; k=rsa; p=")
        assert "PRIVATE" not in str(domain)
        purposes = {r.purpose: r for r in domain.records}
        assert purposes[domain_pb2.DNS_RECORD_PURPOSE_SPF].value == f"v=spf1 a:{HOST} ~all"
        assert purposes[domain_pb2.DNS_RECORD_PURPOSE_RETURN_PATH].name == f"bounces.{domain.name}"
        assert purposes[domain_pb2.DNS_RECORD_PURPOSE_DMARC].name == f"_dmarc.{domain.name}"

        missing = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=domain.domain_id)).domain
        assert missing.state == domain_pb2.DOMAIN_STATE_PENDING and missing.last_checked_at.seconds > 0
        assert _dkim_records(missing)[0].status == domain_pb2.DNS_RECORD_STATUS_MISSING
        assert dkim_record.name in missing.reason

        mx_stack.dns.add(dkim_record.name, "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong")
        wrong = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=domain.name)).domain
        record = _dkim_records(wrong)[0]
        assert wrong.state == domain_pb2.DOMAIN_STATE_FAILED
        assert record.status == domain_pb2.DNS_RECORD_STATUS_DIFFERENT and "wrong" in record.found[0]

        mx_stack.dns.set(dkim_record.name, "TXT", dkim_record.value)
        mx_stack.dns.add(domain.name, "TXT", f"v=spf1 a:{HOST} -all")
        found = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=domain.domain_id)).domain
        assert found.state == domain_pb2.DOMAIN_STATE_VERIFIED and found.verified_at.seconds > 0 and not found.reason
        statuses = {r.purpose: r.status for r in found.records}
        assert statuses[domain_pb2.DNS_RECORD_PURPOSE_DKIM] == domain_pb2.DNS_RECORD_STATUS_FOUND
        assert statuses[domain_pb2.DNS_RECORD_PURPOSE_SPF] == domain_pb2.DNS_RECORD_STATUS_FOUND
        assert statuses[domain_pb2.DNS_RECORD_PURPOSE_DMARC] == domain_pb2.DNS_RECORD_STATUS_MISSING
        assert found.dkim_keys[0].state == domain_pb2.DKIM_KEY_STATE_ACTIVE
        assert found.next_check_at.seconds > found.last_checked_at.seconds


def test_the_scheduler_rechecks_domains_without_being_asked(mx_stack: MxStack) -> None:
    with mx_stack.client() as client:
        domain = _domains(client).CreateDomain(dpb.CreateDomainRequest(name=_name("recheck"))).domain
        [record] = _dkim_records(domain)
        mx_stack.dns.add(record.name, "TXT", record.value)
        deadline = time.monotonic() + 20
        while _domains(client).GetDomain(dpb.GetDomainRequest(domain_id=domain.domain_id)).domain.state \
                != domain_pb2.DOMAIN_STATE_VERIFIED:
            assert time.monotonic() < deadline, "never re-checked"
            time.sleep(0.2)
        mx_stack.dns.remove(record.name)  # the record disappears: the next check fails the domain
        while _domains(client).GetDomain(dpb.GetDomainRequest(domain_id=domain.domain_id)).domain.state \
                != domain_pb2.DOMAIN_STATE_FAILED:
            assert time.monotonic() < deadline + 20, "a lost record was never noticed"
            time.sleep(0.2)
        with pytest.raises(FailedPrecondition):
            _send(client, f"app@{domain.name}", ["x@example.com"])


def test_one_account_never_sees_or_sends_from_another_accounts_domain(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    with mx_stack.client(mx_stack.key_b) as other:
        for call in (lambda: _domains(other).GetDomain(dpb.GetDomainRequest(domain_id=domain.domain_id)),
                     lambda: _domains(other).GetDomain(dpb.GetDomainRequest(domain_id=domain.name)),
                     lambda: _domains(other).DeleteDomain(dpb.DeleteDomainRequest(domain_id=domain.domain_id))):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        listed = _domains(other).ListDomains(dpb.ListDomainsRequest()).domains
        assert domain.name not in {d.name for d in listed}
        with pytest.raises(FailedPrecondition):
            _send(other, f"app@{domain.name}", ["x@example.com"])


def test_a_test_key_sends_from_any_domain_without_dns(mx_stack: MxStack) -> None:
    with mx_stack.client(mx_stack.test_key) as client:
        message_id = _send(client, f"app@{_name('anything')}", ["x@example.com"])
        assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT


# DKIM on the wire -------------------------------------------------------------------------


def test_every_delivered_message_carries_signatures_that_verify_against_dns(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack, domain_pb2.DKIM_ALGORITHM_RSA_SHA256, domain_pb2.DKIM_ALGORITHM_ED25519_SHA256)
    rcpt = _recipient_domain(mx_stack, (10, "127.0.0.2"))
    cases = [
        {"subject": "plain"},
        {"subject": "Grüße aus Köln — ünïcödé", "text_body": "Hällo wörld\n" * 20, "html_body": "<p>Hällo</p>"},
        {"subject": "long", "text_body": "x" * 5000 + "\n" + "word " * 3000},
        {"subject": "attached", "attachments": [email_pb2.Attachment(
            filename="report.bin", content_type="application/octet-stream", content=bytes(range(256)) * 40)]},
        {"subject": "unsubscribe", "headers": {"List-Unsubscribe": "<https://example.test/u/1>",
                                                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}},
    ]
    with mx_stack.client() as client:
        ids = [_send(client, f"Äpp Sender <app@{domain.name}>", [f"user@{rcpt}"], **case) for case in cases]
        for message_id in ids:
            assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT
    for message_id in ids:
        data = _received(mx_stack.mx["127.0.0.2"], message_id)
        for judge in (dkim_judge.dkimpy, dkim_judge.mail_dkim):
            verdicts = judge(data, mx_stack.dns)
            assert len(verdicts) == 2, verdicts
            rsa, ed = verdicts
            assert rsa.result == "pass" and rsa.domain == domain.name, (judge.__name__, rsa)
            if judge is dkim_judge.dkimpy or ed.result != "invalid":  # Mail::DKIM may not know ed25519
                assert ed.result == "pass", (judge.__name__, ed)


def test_a_subdomain_of_a_verified_domain_sends_signed_by_the_parent(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    rcpt = _recipient_domain(mx_stack, (10, "127.0.0.2"))
    with mx_stack.client() as client:
        message_id = _send(client, f"app@mail.{domain.name}", [f"user@{rcpt}"])
        assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT
    [verdict] = dkim_judge.dkimpy(_received(mx_stack.mx["127.0.0.2"], message_id), mx_stack.dns)
    assert verdict.result == "pass" and verdict.domain == domain.name


def test_rotation_signs_with_the_new_key_once_its_record_verifies(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    old = domain.dkim_keys[0].selector
    rcpt = _recipient_domain(mx_stack, (10, "127.0.0.2"))

    def selector_of_next_send() -> str:
        message_id = _send(client, f"app@{domain.name}", [f"user@{rcpt}"])
        assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT
        [verdict] = dkim_judge.dkimpy(_received(mx_stack.mx["127.0.0.2"], message_id), mx_stack.dns)
        assert verdict.result == "pass"
        return verdict.selector

    with mx_stack.client() as client:
        rotated = _domains(client).RotateDkimKey(dpb.RotateDkimKeyRequest(domain_id=domain.domain_id))
        new = rotated.key.selector
        assert new != old and rotated.key.state == domain_pb2.DKIM_KEY_STATE_PENDING
        assert {r.selector for r in _dkim_records(rotated.domain)} == {old, new}
        assert selector_of_next_send() == old  # the new record is not published yet
        new_record = next(r for r in _dkim_records(rotated.domain) if r.selector == new)
        mx_stack.dns.add(new_record.name, "TXT", new_record.value)
        after = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=domain.domain_id)).domain
        states = {k.selector: k.state for k in after.dkim_keys}
        assert states == {new: domain_pb2.DKIM_KEY_STATE_ACTIVE, old: domain_pb2.DKIM_KEY_STATE_RETIRED}
        old_record = next(r for r in _dkim_records(after) if r.selector == old)
        assert not old_record.required  # still listed, until it is removed from DNS
        time.sleep(6)  # the worker's key cache (5 s)
        assert selector_of_next_send() == new
        mx_stack.dns.remove(old_record.name)
        cleaned = _domains(client).VerifyDomain(dpb.VerifyDomainRequest(domain_id=domain.domain_id)).domain
        assert [k.selector for k in cleaned.dkim_keys] == [new]
        assert cleaned.state == domain_pb2.DOMAIN_STATE_VERIFIED


# Direct-to-MX -----------------------------------------------------------------------------


def test_mail_goes_to_the_most_preferred_mx_and_falls_back_when_it_is_down(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    preferred = _recipient_domain(mx_stack, (20, "127.0.0.4"), (10, "127.0.0.2"))
    down = _recipient_domain(mx_stack, (10, "127.0.0.9"), (20, "127.0.0.4"))  # nothing listens on .9
    with mx_stack.client() as client:
        first = _send(client, f"app@{domain.name}", [f"a@{preferred}"])
        second = _send(client, f"app@{domain.name}", [f"b@{down}"])
        for message_id in (first, second):
            assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT
    assert mx_stack.mx["127.0.0.2"].by_message_id(first) and not mx_stack.mx["127.0.0.4"].by_message_id(first)
    assert mx_stack.mx["127.0.0.4"].by_message_id(second)


def test_starttls_is_used_when_offered_and_recorded_in_the_event(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    tls_domain = _recipient_domain(mx_stack, (10, "127.0.0.3"))
    with mx_stack.client() as client:
        message_id = _send(client, f"app@{domain.name}", [f"a@{tls_domain}"])
        status = _final(client, message_id)
    assert status.status == email_pb2.EMAIL_STATUS_SENT
    sent = [e for e in status.events if e.type == event_pb2.EVENT_TYPE_SENT]
    assert sent and "TLS" in sent[0].detail, sent
    assert mx_stack.mx["127.0.0.3"].by_message_id(message_id)


def test_null_mx_and_nxdomain_bounce_without_any_connection(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    null = _name("null")
    mx_stack.dns.add(null, "MX", "0 .")
    with mx_stack.client() as client:
        ids = [_send(client, f"app@{domain.name}", [f"a@{null}"]), _send(client, f"app@{domain.name}", [f"a@{_name('gone')}"])]
        statuses = [_final(client, i) for i in ids]
    for status in statuses:
        assert status.status == email_pb2.EMAIL_STATUS_BOUNCED, status
    assert "null MX" in str(statuses[0]) and "5.1.10" in str(statuses[0])
    for recorder in mx_stack.mx.values():
        assert not any(recorder.by_message_id(i) for i in ids)


def test_servfail_is_retried_until_dns_answers(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    flaky = _recipient_domain(mx_stack, (10, "127.0.0.2"))
    mx_stack.dns.servfail(flaky)
    with mx_stack.client() as client:
        message_id = _send(client, f"app@{domain.name}", [f"a@{flaky}"])
        deadline = time.monotonic() + 15
        while client.get_status(message_id).status != email_pb2.EMAIL_STATUS_DEFERRED:
            assert time.monotonic() < deadline, "never deferred"
            time.sleep(0.1)
        mx_stack.dns.servfail(flaky, False)
        assert _final(client, message_id).status == email_pb2.EMAIL_STATUS_SENT
    assert mx_stack.mx["127.0.0.2"].by_message_id(message_id)


def test_one_rejected_recipient_does_not_fail_the_other_of_the_same_domain(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    rcpt = _recipient_domain(mx_stack, (10, "127.0.0.4"))
    mx_stack.mx["127.0.0.4"].rcpt_faults[f"bad@{rcpt}"] = ["550 5.1.1 no such user"]
    with mx_stack.client() as client:
        message_id = _send(client, f"app@{domain.name}", [f"good@{rcpt}", f"bad@{rcpt}"])
        status = _final(client, message_id)
    by_address = {r.address: r.status for r in status.recipients}
    assert by_address == {f"good@{rcpt}": email_pb2.EMAIL_STATUS_SENT, f"bad@{rcpt}": email_pb2.EMAIL_STATUS_BOUNCED}
    [received] = mx_stack.mx["127.0.0.4"].by_message_id(message_id)
    assert received.rcpt_tos == [f"good@{rcpt}"]


# Address checks ---------------------------------------------------------------------------


def test_address_checks_say_why_through_the_same_resolver_and_the_suppression_list(mx_stack: MxStack) -> None:
    domain = _verified_domain(mx_stack)
    rcpt = _recipient_domain(mx_stack, (10, "127.0.0.4"))
    mx_stack.mx["127.0.0.4"].rcpt_faults[f"gone@{rcpt}"] = ["550 5.1.1 no such user"]
    null, a_only = _name("null"), _name("aonly")
    mx_stack.dns.add(null, "MX", "0 .")
    mx_stack.dns.add(a_only, "A", "127.0.0.4")
    mx_stack.dns.add("mailinator.com", "MX", "10 mx0.mailinator.com.")
    with mx_stack.client() as client:
        _final(client, _send(client, f"app@{domain.name}", [f"gone@{rcpt}"]))  # a 550: now suppressed
        stub = address_service_pb2_grpc.AddressServiceStub(client.channel)
        addresses = [f"someone@{rcpt}", f"gone@{rcpt}", f"x@{null}", f"x@{_name('nxdomain')}", f"x@{a_only}",
                     f"postmaster@{rcpt}", "x@mailinator.com", "not an address"]
        checks = stub.ValidateAddresses(apb.ValidateAddressesRequest(addresses=addresses),
                                        metadata=client.metadata, timeout=30).checks
        one = stub.ValidateAddress(apb.ValidateAddressRequest(address=f"Someone@{rcpt.upper()}"),
                                   metadata=client.metadata, timeout=30).check
    got = [(c.verdict, c.domain_status) for c in checks]
    assert got == [
        (apb.ADDRESS_VERDICT_DELIVERABLE, apb.MAIL_DOMAIN_STATUS_MX),
        (apb.ADDRESS_VERDICT_UNDELIVERABLE, apb.MAIL_DOMAIN_STATUS_MX),
        (apb.ADDRESS_VERDICT_UNDELIVERABLE, apb.MAIL_DOMAIN_STATUS_NULL_MX),
        (apb.ADDRESS_VERDICT_UNDELIVERABLE, apb.MAIL_DOMAIN_STATUS_NO_SUCH_DOMAIN),
        (apb.ADDRESS_VERDICT_DELIVERABLE, apb.MAIL_DOMAIN_STATUS_A_FALLBACK),
        (apb.ADDRESS_VERDICT_RISKY, apb.MAIL_DOMAIN_STATUS_MX),
        (apb.ADDRESS_VERDICT_RISKY, apb.MAIL_DOMAIN_STATUS_MX),
        (apb.ADDRESS_VERDICT_UNDELIVERABLE, apb.MAIL_DOMAIN_STATUS_NOT_CHECKED),
    ], checks
    assert checks[0].mail_hosts == [f"mx0.{rcpt}"] and "accepts mail" in checks[0].reason
    assert checks[1].suppressed and "550" in checks[1].suppression_reason
    assert checks[5].role and checks[6].disposable and not checks[7].syntax_valid
    assert all(c.reason for c in checks)
    assert one.normalized == f"Someone@{rcpt}" and one.verdict == apb.ADDRESS_VERDICT_DELIVERABLE
