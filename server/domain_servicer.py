"""DomainService servicer: the calling account's sending domains (admin scope)."""

from __future__ import annotations

import grpc

from core.domains import dkim
from core.domains.manager import DomainManager
from core.domains.records import KeyRecord
from core.domains.store import DomainRecord
from core.errors import FieldViolation, InvalidArgument
from postwire.v1 import domain_pb2, domain_service_pb2_grpc
from postwire.v1 import domain_service_pb2 as pb
from server.convert import timestamp
from server.interceptors import current_principal

_STATES = {"pending": domain_pb2.DOMAIN_STATE_PENDING, "verified": domain_pb2.DOMAIN_STATE_VERIFIED,
           "failed": domain_pb2.DOMAIN_STATE_FAILED}
_PURPOSES = {"dkim": domain_pb2.DNS_RECORD_PURPOSE_DKIM, "spf": domain_pb2.DNS_RECORD_PURPOSE_SPF,
             "dmarc": domain_pb2.DNS_RECORD_PURPOSE_DMARC, "return_path": domain_pb2.DNS_RECORD_PURPOSE_RETURN_PATH}
_STATUSES = {"not_checked": domain_pb2.DNS_RECORD_STATUS_NOT_CHECKED, "found": domain_pb2.DNS_RECORD_STATUS_FOUND,
             "missing": domain_pb2.DNS_RECORD_STATUS_MISSING, "different": domain_pb2.DNS_RECORD_STATUS_DIFFERENT,
             "lookup_failed": domain_pb2.DNS_RECORD_STATUS_LOOKUP_FAILED}
_KEY_STATES = {"pending": domain_pb2.DKIM_KEY_STATE_PENDING, "active": domain_pb2.DKIM_KEY_STATE_ACTIVE,
               "retired": domain_pb2.DKIM_KEY_STATE_RETIRED}
_ALGORITHMS = {domain_pb2.DKIM_ALGORITHM_UNSPECIFIED: dkim.RSA, domain_pb2.DKIM_ALGORITHM_RSA_SHA256: dkim.RSA,
               domain_pb2.DKIM_ALGORITHM_ED25519_SHA256: dkim.ED25519}
_ALGORITHM_VALUES = {dkim.RSA: domain_pb2.DKIM_ALGORITHM_RSA_SHA256, dkim.ED25519: domain_pb2.DKIM_ALGORITHM_ED25519_SHA256}


def _algorithm(value: int, field: str) -> str:
    if value not in _ALGORITHMS:
        raise InvalidArgument([FieldViolation(field, "unknown DKIM algorithm")])
    return _ALGORITHMS[value]


def key_to_proto(key: KeyRecord) -> domain_pb2.DkimKey:
    return domain_pb2.DkimKey(
        selector=key.selector, algorithm=_ALGORITHM_VALUES.get(key.algorithm, 0), state=_KEY_STATES.get(key.state, 0),
        created_at=timestamp(key.created_at), activated_at=timestamp(key.activated_at),
    )


class DomainServicer(domain_service_pb2_grpc.DomainServiceServicer):
    def __init__(self, domains: DomainManager) -> None:
        self.domains = domains

    def _proto(self, record: DomainRecord) -> domain_pb2.Domain:
        records = [
            domain_pb2.DnsRecord(
                purpose=_PURPOSES[r.purpose], type=r.type, name=r.name, value=r.value, required=r.required,
                status=_STATUSES.get(c.status, 0), found=list(c.found), selector=r.selector,
            )
            for r, c in self.domains.records(record)
        ]
        return domain_pb2.Domain(
            domain_id=record.public_id, name=record.name, state=_STATES.get(record.state, 0), records=records,
            dkim_keys=[key_to_proto(k) for k in record.keys], created_at=timestamp(record.created_at),
            last_checked_at=timestamp(record.last_checked_at), verified_at=timestamp(record.verified_at),
            next_check_at=timestamp(record.next_check_at), reason=record.reason,
        )

    async def CreateDomain(self, request: pb.CreateDomainRequest,
                           context: grpc.aio.ServicerContext) -> pb.CreateDomainResponse:
        algorithms = [_algorithm(a, f"dkim_algorithms[{i}]") for i, a in enumerate(request.dkim_algorithms)]
        record = await self.domains.create(current_principal.get().account_id, request.name, algorithms)
        return pb.CreateDomainResponse(domain=self._proto(record))

    async def GetDomain(self, request: pb.GetDomainRequest, context: grpc.aio.ServicerContext) -> pb.GetDomainResponse:
        record = await self.domains.get(current_principal.get().account_id, request.domain_id)
        return pb.GetDomainResponse(domain=self._proto(record))

    async def ListDomains(self, request: pb.ListDomainsRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListDomainsResponse:
        records, token = await self.domains.list(current_principal.get().account_id, request.page_size, request.page_token)
        return pb.ListDomainsResponse(domains=[self._proto(r) for r in records], next_page_token=token)

    async def VerifyDomain(self, request: pb.VerifyDomainRequest,
                           context: grpc.aio.ServicerContext) -> pb.VerifyDomainResponse:
        record = await self.domains.verify(current_principal.get().account_id, request.domain_id)
        return pb.VerifyDomainResponse(domain=self._proto(record))

    async def DeleteDomain(self, request: pb.DeleteDomainRequest,
                           context: grpc.aio.ServicerContext) -> pb.DeleteDomainResponse:
        await self.domains.delete(current_principal.get().account_id, request.domain_id)
        return pb.DeleteDomainResponse()

    async def RotateDkimKey(self, request: pb.RotateDkimKeyRequest,
                            context: grpc.aio.ServicerContext) -> pb.RotateDkimKeyResponse:
        algorithm = _algorithm(request.algorithm, "algorithm")
        record, key = await self.domains.rotate(current_principal.get().account_id, request.domain_id, algorithm)
        return pb.RotateDkimKeyResponse(domain=self._proto(record), key=key_to_proto(key))
