"""A verified sending domain for end-to-end tests: created through DomainService, its
DKIM record published in the test's DNS server, then verified."""

from __future__ import annotations

import secrets

from postwire.v1 import domain_pb2, domain_service_pb2_grpc
from postwire.v1 import domain_service_pb2 as dpb
from postwire_client import Client
from tests.support.dns import DnsServer


def verified_domain(client: Client, dns: DnsServer) -> str:
    """The name of a new domain of the client's account, verified (its DKIM key in `dns`)."""
    name = f"send-{secrets.token_hex(3)}.example.com"
    stub = domain_service_pb2_grpc.DomainServiceStub(client.channel)
    created = stub.CreateDomain(dpb.CreateDomainRequest(name=name), metadata=client.metadata, timeout=30).domain
    for record in created.records:
        if record.purpose == domain_pb2.DNS_RECORD_PURPOSE_DKIM:
            dns.add(record.name, "TXT", record.value)
    verified = stub.VerifyDomain(dpb.VerifyDomainRequest(domain_id=created.domain_id),
                                 metadata=client.metadata, timeout=30).domain
    assert verified.state == domain_pb2.DOMAIN_STATE_VERIFIED, verified
    return name
