"""SuppressionService servicer: the calling account's suppression list (reads need
the read scope, changes the admin scope; see server/policy.py)."""

from __future__ import annotations

import grpc

from core.errors import FieldViolation, InvalidArgument
from core.suppressions import manager as suppressions
from core.suppressions.manager import Outcome, SuppressionManager
from core.suppressions.store import SuppressionRecord
from core.suppressions.write import COMPLAINT, HARD_BOUNCE, MANUAL, UNSUBSCRIBE
from postwire.v1 import suppression_pb2, suppression_service_pb2_grpc
from postwire.v1 import suppression_service_pb2 as pb
from server.convert import datetime_or_none, timestamp
from server.interceptors import current_principal

_KINDS = {HARD_BOUNCE: suppression_pb2.SUPPRESSION_KIND_HARD_BOUNCE, COMPLAINT: suppression_pb2.SUPPRESSION_KIND_COMPLAINT,
          UNSUBSCRIBE: suppression_pb2.SUPPRESSION_KIND_UNSUBSCRIBE, MANUAL: suppression_pb2.SUPPRESSION_KIND_MANUAL}
_KIND_NAMES = {value: name for name, value in _KINDS.items()}


def suppression_to_proto(record: SuppressionRecord) -> suppression_pb2.Suppression:
    return suppression_pb2.Suppression(
        address=record.address, kind=_KINDS.get(record.kind, 0), reason=record.reason,
        message_id=record.message_id, created_at=timestamp(record.created_at),
    )


def result_to_proto(outcome: Outcome) -> pb.SuppressionResult:
    if outcome.error is not None:
        error = pb.SuppressionError(code=grpc.StatusCode[outcome.error.code].value[0], message=outcome.error.message,
                                    field=outcome.error.field)
        return pb.SuppressionResult(address=outcome.address, error=error)
    assert outcome.record is not None
    return pb.SuppressionResult(address=outcome.address, suppression=suppression_to_proto(outcome.record),
                                created=outcome.created)


class SuppressionServicer(suppression_service_pb2_grpc.SuppressionServiceServicer):
    def __init__(self, manager: SuppressionManager) -> None:
        self.manager = manager

    async def ListSuppressions(self, request: pb.ListSuppressionsRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListSuppressionsResponse:
        if request.kind != suppression_pb2.SUPPRESSION_KIND_UNSPECIFIED and request.kind not in _KIND_NAMES:
            raise InvalidArgument([FieldViolation("kind", "unknown suppression kind")])
        wanted = suppressions.filters(
            _KIND_NAMES.get(request.kind, ""), datetime_or_none(request, "created_after"),
            datetime_or_none(request, "created_before"), request.address_prefix,
        )
        records, token = await self.manager.list(
            current_principal.get().account_id, wanted, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListSuppressionsResponse(suppressions=[suppression_to_proto(r) for r in records], next_page_token=token)

    async def GetSuppression(self, request: pb.GetSuppressionRequest,
                             context: grpc.aio.ServicerContext) -> pb.GetSuppressionResponse:
        record = await self.manager.get(current_principal.get().account_id, request.address)
        return pb.GetSuppressionResponse(suppression=suppression_to_proto(record))

    async def AddSuppression(self, request: pb.AddSuppressionRequest,
                             context: grpc.aio.ServicerContext) -> pb.AddSuppressionResponse:
        record, created = await self.manager.add(current_principal.get().account_id, request.address, request.reason)
        return pb.AddSuppressionResponse(suppression=suppression_to_proto(record), created=created)

    async def RemoveSuppression(self, request: pb.RemoveSuppressionRequest,
                                context: grpc.aio.ServicerContext) -> pb.RemoveSuppressionResponse:
        record = await self.manager.remove(current_principal.get().account_id, request.address)
        return pb.RemoveSuppressionResponse(suppression=suppression_to_proto(record))

    async def BatchAddSuppressions(self, request: pb.BatchAddSuppressionsRequest,
                                   context: grpc.aio.ServicerContext) -> pb.BatchAddSuppressionsResponse:
        outcomes = await self.manager.batch_add(
            current_principal.get().account_id, list(request.addresses), request.reason
        )
        return pb.BatchAddSuppressionsResponse(results=[result_to_proto(o) for o in outcomes])

    async def BatchRemoveSuppressions(self, request: pb.BatchRemoveSuppressionsRequest,
                                      context: grpc.aio.ServicerContext) -> pb.BatchRemoveSuppressionsResponse:
        outcomes = await self.manager.batch_remove(current_principal.get().account_id, list(request.addresses))
        return pb.BatchRemoveSuppressionsResponse(results=[result_to_proto(o) for o in outcomes])
