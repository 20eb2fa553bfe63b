"""TemplateService servicer: the calling account's templates (reads need the read
scope, changes the admin scope; see server/policy.py)."""

from __future__ import annotations

import grpc

from core.templates.manager import TemplateManager
from core.templates.model import Parts, TemplateRecord, Variant, Version
from postwire.v1 import template_pb2, template_service_pb2_grpc
from postwire.v1 import template_service_pb2 as pb
from server.convert import timestamp
from server.interceptors import current_principal
from server.structs import struct_to_dict


def version_to_proto(version: Version, active: int, *, parts: bool = True) -> template_pb2.TemplateVersion:
    content = version.content
    return template_pb2.TemplateVersion(
        version=version.version, active=version.version == active, created_at=timestamp(version.created_at),
        subject=content.parts.subject if parts else "", html=content.parts.html if parts else "",
        text=content.parts.text if parts else "",
        variants=[template_pb2.TemplateVariant(
            name=v.name, weight=v.weight, subject=v.parts.subject if parts else "", html=v.parts.html if parts else "",
            text=v.parts.text if parts else "",
        ) for v in content.variants],
    )


def template_to_proto(record: TemplateRecord) -> template_pb2.Template:
    return template_pb2.Template(
        template_id=record.template_id, name=record.name, active_version=record.active_version,
        latest_version=record.latest_version, created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        version=version_to_proto(record.version, record.active_version) if record.version is not None else None,
    )


def _variants(request: pb.CreateTemplateRequest | pb.UpdateTemplateRequest) -> list[Variant]:
    return [Variant(v.name, v.weight, Parts(v.subject, v.html, v.text)) for v in request.variants]


class TemplateServicer(template_service_pb2_grpc.TemplateServiceServicer):
    def __init__(self, manager: TemplateManager) -> None:
        self.manager = manager

    async def CreateTemplate(self, request: pb.CreateTemplateRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateTemplateResponse:
        record = await self.manager.create(current_principal.get().account_id, request.name,
                                           Parts(request.subject, request.html, request.text), _variants(request))
        return pb.CreateTemplateResponse(template=template_to_proto(record))

    async def GetTemplate(self, request: pb.GetTemplateRequest, context: grpc.aio.ServicerContext) -> pb.GetTemplateResponse:
        record = await self.manager.get(current_principal.get().account_id, request.template_id, request.version)
        return pb.GetTemplateResponse(template=template_to_proto(record))

    async def ListTemplates(self, request: pb.ListTemplatesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListTemplatesResponse:
        records, token = await self.manager.list(current_principal.get().account_id, request.page_size,
                                                 request.page_token)
        return pb.ListTemplatesResponse(templates=[template_to_proto(r) for r in records], next_page_token=token)

    async def UpdateTemplate(self, request: pb.UpdateTemplateRequest,
                             context: grpc.aio.ServicerContext) -> pb.UpdateTemplateResponse:
        record = await self.manager.update(
            current_principal.get().account_id, request.template_id, request.name,
            Parts(request.subject, request.html, request.text), _variants(request), activate=not request.draft,
        )
        return pb.UpdateTemplateResponse(template=template_to_proto(record))

    async def DeleteTemplate(self, request: pb.DeleteTemplateRequest,
                             context: grpc.aio.ServicerContext) -> pb.DeleteTemplateResponse:
        await self.manager.delete(current_principal.get().account_id, request.template_id)
        return pb.DeleteTemplateResponse(template_id=request.template_id)

    async def ListTemplateVersions(self, request: pb.ListTemplateVersionsRequest,
                                   context: grpc.aio.ServicerContext) -> pb.ListTemplateVersionsResponse:
        record, versions, token = await self.manager.versions(
            current_principal.get().account_id, request.template_id, request.page_size, request.page_token
        )
        return pb.ListTemplateVersionsResponse(
            versions=[version_to_proto(v, record.active_version, parts=False) for v in versions], next_page_token=token
        )

    async def ActivateTemplateVersion(self, request: pb.ActivateTemplateVersionRequest,
                                      context: grpc.aio.ServicerContext) -> pb.ActivateTemplateVersionResponse:
        record = await self.manager.activate(current_principal.get().account_id, request.template_id, request.version)
        return pb.ActivateTemplateVersionResponse(template=template_to_proto(record))

    async def RenderTemplate(self, request: pb.RenderTemplateRequest,
                             context: grpc.aio.ServicerContext) -> pb.RenderTemplateResponse:
        parts, version, variant = await self.manager.render(
            current_principal.get().account_id, request.template_id, request.version, request.variant,
            struct_to_dict(request.variables),
        )
        return pb.RenderTemplateResponse(subject=parts.subject, html=parts.html, text=parts.text, version=version,
                                         variant=variant)
