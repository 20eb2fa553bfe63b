"""AddressService servicer: check addresses before sending to them (read scope)."""

from __future__ import annotations

import grpc

from core.domains.address_check import AddressCheck, AddressChecker
from postwire.v1 import address_service_pb2 as pb
from postwire.v1 import address_service_pb2_grpc
from server.interceptors import current_principal

_VERDICTS = {"deliverable": pb.ADDRESS_VERDICT_DELIVERABLE, "undeliverable": pb.ADDRESS_VERDICT_UNDELIVERABLE,
             "risky": pb.ADDRESS_VERDICT_RISKY, "unknown": pb.ADDRESS_VERDICT_UNKNOWN}
_DOMAIN = {"mx": pb.MAIL_DOMAIN_STATUS_MX, "a_fallback": pb.MAIL_DOMAIN_STATUS_A_FALLBACK,
           "null_mx": pb.MAIL_DOMAIN_STATUS_NULL_MX, "no_such_domain": pb.MAIL_DOMAIN_STATUS_NO_SUCH_DOMAIN,
           "no_mail_host": pb.MAIL_DOMAIN_STATUS_NO_MAIL_HOST, "lookup_failed": pb.MAIL_DOMAIN_STATUS_LOOKUP_FAILED,
           "not_checked": pb.MAIL_DOMAIN_STATUS_NOT_CHECKED}


def check_to_proto(c: AddressCheck) -> pb.AddressCheck:
    return pb.AddressCheck(
        address=c.address, normalized=c.normalized, verdict=_VERDICTS[c.verdict], reason=c.reason,
        syntax_valid=c.syntax_valid, domain_status=_DOMAIN[c.domain_status], mail_hosts=c.mail_hosts,
        suppressed=c.suppressed, suppression_reason=c.suppression_reason, role=c.role, disposable=c.disposable,
    )


class AddressServicer(address_service_pb2_grpc.AddressServiceServicer):
    def __init__(self, checker: AddressChecker) -> None:
        self.checker = checker

    async def ValidateAddress(self, request: pb.ValidateAddressRequest,
                              context: grpc.aio.ServicerContext) -> pb.ValidateAddressResponse:
        check = await self.checker.check(current_principal.get().account_id, request.address)
        return pb.ValidateAddressResponse(check=check_to_proto(check))

    async def ValidateAddresses(self, request: pb.ValidateAddressesRequest,
                                context: grpc.aio.ServicerContext) -> pb.ValidateAddressesResponse:
        checks = await self.checker.check_many(current_principal.get().account_id, list(request.addresses))
        return pb.ValidateAddressesResponse(checks=[check_to_proto(c) for c in checks])
