"""EmailService servicer: read the request, call the domain, map the result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from core.emails.content import EmailContent
from core.emails.model import Status
from core.emails.search import EmailSearch
from core.emails.service import MAX_BATCH, EmailService, Heartbeat, SendOptions
from core.emails.validation import SendLimits, validate_send
from core.errors import FieldViolation, InvalidArgument, PostwireError
from core.events.cursor import decode_cursor
from core.templates import send as templated
from core.templates.manager import TemplateManager
from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from server.convert import (
    datetime_or_none,
    event_to_proto,
    event_types_from_proto,
    send_result,
    status_response,
    status_to_proto,
    timestamp,
)
from server.decoding import nul_fields
from server.email_search import list_emails
from server.interceptors import current_principal
from server.metrics import count_bulk
from server.ratelimit import stream_charge
from server.send_stream import send_stream
from server.structs import struct_to_dict
from server.tracking_fields import tracking_fields


class EmailServicer(email_service_pb2_grpc.EmailServiceServicer):
    def __init__(self, service: EmailService, limits: SendLimits, stream_window: int,
                 templates: TemplateManager | None = None) -> None:
        self.service = service
        self.limits = limits
        self.stream_window = stream_window  # unacknowledged emails per SendStream (POSTWIRE_SEND_STREAM_WINDOW)
        self.templates = templates
        self.search = EmailSearch(service.store.engine)

    def _email(self, request: pb.SendRequest, test: bool) -> tuple[EmailContent, SendOptions] | templated.TemplatedSend:
        """The email a SendRequest asks for (one naming a template is rendered by
        _rendered); InvalidArgument when it is not valid."""
        fields = dict(
            from_address=request.from_address,
            to=list(request.to),
            cc=list(request.cc),
            bcc=list(request.bcc),
            reply_to=request.reply_to,
            subject=request.subject,
            text_body=request.text_body,
            html_body=request.html_body,
            headers=dict(request.headers),
            tags=list(request.tags),
            metadata=dict(request.metadata),
            attachments=list(request.attachments),
            unsubscribe=request.unsubscribe if request.HasField("unsubscribe") else None,
            **tracking_fields(request),
        )
        options = SendOptions(
            send_at=datetime_or_none(request, "send_at"),
            expires_at=datetime_or_none(request, "expires_at"),
            idempotency_key=request.idempotency_key,
            test=test,
        )
        if request.template_id:
            return templated.TemplatedSend(fields, request.template_id, request.template_version,
                                           struct_to_dict(request.variables), options)
        return validate_send(**fields, limits=self.limits), options  # type: ignore[arg-type]

    async def _rendered(self, account_id: int, item: Any) -> Any:
        """A templated Send rendered into its email (or the error refusing it); other items as they are."""
        if not isinstance(item, templated.TemplatedSend):
            return item
        try:
            return await templated.resolve(self.templates, account_id, item, self.limits)
        except PostwireError as exc:
            return exc

    def _item(self, request: pb.SendRequest, test: bool) -> Any:
        """One email of a batch or stream, or the error that refuses it alone (the
        decoder leaves NUL checks of these requests to this, item by item)."""
        try:
            nul = [FieldViolation(path, "must not contain NUL characters") for path in nul_fields(request)]
            if nul:
                raise InvalidArgument(nul)
            return self._email(request, test)
        except PostwireError as exc:
            return exc

    async def _store(self, method: str, account_id: int, items: list[Any]) -> list[tuple[str, Status] | Exception]:
        if any(isinstance(item, templated.TemplatedSend) for item in items):
            items = await templated.resolve_all(self.templates, account_id, items, self.limits)
        outcomes = await self.service.send_batch(account_id, items)
        count_bulk(method, outcomes)
        return outcomes

    async def Send(self, request: pb.SendRequest, context: grpc.aio.ServicerContext) -> pb.SendResponse:
        caller = current_principal.get()
        email = await self._rendered(caller.account_id, self._email(request, caller.test))
        if isinstance(email, PostwireError):
            raise email
        message_id, status = await self.service.send(caller.account_id, *email)
        return pb.SendResponse(message_id=message_id, status=status_to_proto(status))  # type: ignore[arg-type]

    async def SendBatch(self, request: pb.SendBatchRequest, context: grpc.aio.ServicerContext) -> pb.SendBatchResponse:
        caller = current_principal.get()
        count = len(request.messages)
        if not 1 <= count <= MAX_BATCH:
            raise InvalidArgument([FieldViolation("messages", f"1 to {MAX_BATCH} emails per call, got {count}")])
        items = [self._item(message, caller.test) for message in request.messages]
        outcomes = await self._store("SendBatch", caller.account_id, items)
        return pb.SendBatchResponse(results=[send_result(outcome) for outcome in outcomes])

    async def SendStream(
        self, requests: AsyncIterator[pb.SendStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SendStreamResponse]:
        caller = current_principal.get()
        # Headers now: a client waits for them before writing, so that a call refused by
        # the interceptors (a bad key, say) reaches it as its status; writes racing a
        # refusal make grpc report "Internal error from Core" instead.
        await context.send_initial_metadata(())
        acks = send_stream(
            requests,
            parse=lambda message: self._item(message, caller.test),
            store=lambda items: self._store("SendStream", caller.account_id, items),
            charge=stream_charge.get(),
            window=self.stream_window,
            stopping=self.service.stopping,
        )
        async for reply in acks:
            yield reply

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatusResponse:
        record = await self.service.get_status(current_principal.get().account_id, request.message_id)
        return status_response(record)

    async def CancelScheduled(
        self, request: pb.CancelScheduledRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelScheduledResponse:
        status = await self.service.cancel_scheduled(current_principal.get().account_id, request.message_id)
        return pb.CancelScheduledResponse(message_id=request.message_id, status=status_to_proto(status))  # type: ignore[arg-type]

    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        after = decode_cursor(request.after)
        types = event_types_from_proto(list(request.types))
        async for item in self.service.follow_events(
            current_principal.get().account_id,
            after=after,
            from_now=request.from_now,
            message_ids=list(request.message_ids),
            types=types,
            tags=list(request.tags),
        ):
            if isinstance(item, Heartbeat):
                yield pb.StreamEventsResponse(heartbeat=timestamp(item.at))
            else:
                yield pb.StreamEventsResponse(event=event_to_proto(item))

    async def ListEmails(self, request: pb.ListEmailsRequest, context: grpc.aio.ServicerContext) -> pb.ListEmailsResponse:
        return await list_emails(self.search, current_principal.get().account_id, request)
