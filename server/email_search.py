"""ListEmails' mapping between protobuf and core.emails.search (and nothing else)."""

from __future__ import annotations

from core.emails import search
from core.emails.model import Status
from core.emails.search import EmailSearch, EmailSummary
from core.errors import FieldViolation, InvalidArgument
from postwire.v1 import email_pb2
from postwire.v1 import email_service_pb2 as pb
from server.convert import datetime_or_none, status_to_proto, timestamp

_STATUSES = {status_to_proto(s): s for s in Status}


def statuses_from_proto(values: list[int]) -> list[Status]:
    violations = [FieldViolation(f"status[{i}]", "unknown email status") for i, v in enumerate(values)
                  if v not in _STATUSES]
    if violations:
        raise InvalidArgument(violations)
    return [_STATUSES[v] for v in values]


def summary_to_proto(summary: EmailSummary) -> pb.EmailSummary:
    return pb.EmailSummary(
        message_id=summary.message_id, status=status_to_proto(summary.status),  # type: ignore[arg-type]
        from_address=summary.from_address, to=summary.to, cc=summary.cc, subject=summary.subject,
        tags=summary.tags, metadata=summary.metadata, template_id=summary.template_id,
        template_version=summary.template_version, template_variant=summary.template_variant,
        created_at=timestamp(summary.created_at), updated_at=timestamp(summary.updated_at),
        content_pruned_at=timestamp(summary.content_pruned_at),
    )


async def list_emails(searcher: EmailSearch, account_id: int, request: pb.ListEmailsRequest) -> pb.ListEmailsResponse:
    wanted = search.filters(
        statuses_from_proto(list(request.status)), request.recipient, request.from_address, list(request.tag),
        list(request.metadata), request.template_id, datetime_or_none(request, "created_after"),
        datetime_or_none(request, "created_before"),
    )
    found, token = await searcher.list(account_id, wanted, page_size=request.page_size, page_token=request.page_token)
    return pb.ListEmailsResponse(emails=[summary_to_proto(s) for s in found], next_page_token=token)


assert email_pb2.EMAIL_STATUS_UNSPECIFIED not in _STATUSES
