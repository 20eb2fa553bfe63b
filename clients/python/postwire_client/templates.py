"""The TemplateService calls of `Client` and `AsyncClient` (mixins).

Reads (get, list, versions, render) need a key with the `read` scope, changes the
`admin` scope. Reads and activation are retried on UNAVAILABLE (repeating them changes
nothing more); create, update and delete are not retried (a retry could store a second
template or version, or answer NOT_FOUND for a deletion that went through).

    created = client.create_template("welcome", subject="Hi {{ name }}", html="<p>Hi {{ name }}</p>")
    tid = created.template.template_id
    client.render_template(tid, variables={"name": "Ada"}).html
    client.send(from_address="a@example.com", to=["b@example.com"], template_id=tid, variables={"name": "Ada"})
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from google.protobuf.struct_pb2 import Struct

from postwire.v1 import template_pb2, template_service_pb2_grpc
from postwire.v1 import template_service_pb2 as tpb
from postwire_client.paging import every, every_async

T = TypeVar("T")
Variant = template_pb2.TemplateVariant  # TemplateVariant(name=, weight=, subject=, html=, text=)


class TemplateFields(TypedDict, total=False):
    """The keyword arguments of `send` that render a template instead of subject and
    bodies (SendFields inherits them)."""

    template_id: str
    template_version: int  # 0: the template's active version
    variables: Mapping[str, Any]  # the template's variables (JSON values)


def struct(values: Mapping[str, Any] | None) -> Struct | None:
    """Template variables as a google.protobuf.Struct (JSON values: str, numbers, bool,
    None, lists and dicts of them)."""
    if values is None:
        return None
    if isinstance(values, Struct):
        return values
    result = Struct()
    result.update(dict(values))
    return result


def _content(subject: str, html: str, text: str, variants: Sequence[template_pb2.TemplateVariant]) -> dict[str, Any]:
    return {"subject": subject, "html": html, "text": text, "variants": list(variants)}


def render_request(template_id: str, variables: Mapping[str, Any] | None, version: int,
                   variant: str) -> tpb.RenderTemplateRequest:
    return tpb.RenderTemplateRequest(template_id=template_id, version=version, variant=variant,
                                     variables=struct(variables))


class TemplateMethods:
    """The account's templates (TemplateService) on the blocking `Client`."""

    channel: Any

    if TYPE_CHECKING:
        def _unary(self, name: str, rpc: Callable[..., T], request: Any, timeout: float | None, *,
                   retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    @functools.cached_property
    def template_stub(self) -> template_service_pb2_grpc.TemplateServiceStub:
        return template_service_pb2_grpc.TemplateServiceStub(self.channel)

    def create_template(self, name: str, *, subject: str = "", html: str = "", text: str = "",
                        variants: Sequence[template_pb2.TemplateVariant] = (),
                        timeout: float | None = None) -> tpb.CreateTemplateResponse:
        """Store a template (version 1, active): its parts, or A/B `variants` instead."""
        request = tpb.CreateTemplateRequest(name=name, **_content(subject, html, text, variants))
        return self._unary("CreateTemplate", self.template_stub.CreateTemplate, request, timeout, retry=False)

    def get_template(self, template_id: str, *, version: int = 0, timeout: float | None = None) -> tpb.GetTemplateResponse:
        """The template with its active version (or `version`)."""
        request = tpb.GetTemplateRequest(template_id=template_id, version=version)
        return self._unary("GetTemplate", self.template_stub.GetTemplate, request, timeout)

    def list_templates(self, *, page_size: int = 0, page_token: str = "",
                       timeout: float | None = None) -> tpb.ListTemplatesResponse:
        """One page of templates, newest first."""
        request = tpb.ListTemplatesRequest(page_size=page_size, page_token=page_token)
        return self._unary("ListTemplates", self.template_stub.ListTemplates, request, timeout)

    def iter_templates(self, *, timeout: float | None = None) -> Iterator[template_pb2.Template]:
        return every(lambda token: self.list_templates(page_token=token, timeout=timeout), "templates")

    def update_template(self, template_id: str, *, name: str = "", subject: str = "", html: str = "", text: str = "",
                        variants: Sequence[template_pb2.TemplateVariant] = (), draft: bool = False,
                        timeout: float | None = None) -> tpb.UpdateTemplateResponse:
        """Store the template's next version, active unless `draft`."""
        request = tpb.UpdateTemplateRequest(template_id=template_id, name=name, draft=draft,
                                            **_content(subject, html, text, variants))
        return self._unary("UpdateTemplate", self.template_stub.UpdateTemplate, request, timeout, retry=False)

    def delete_template(self, template_id: str, *, timeout: float | None = None) -> tpb.DeleteTemplateResponse:
        request = tpb.DeleteTemplateRequest(template_id=template_id)
        return self._unary("DeleteTemplate", self.template_stub.DeleteTemplate, request, timeout, retry=False)

    def list_template_versions(self, template_id: str, *, page_size: int = 0, page_token: str = "",
                               timeout: float | None = None) -> tpb.ListTemplateVersionsResponse:
        """One page of versions, newest first, without their parts."""
        request = tpb.ListTemplateVersionsRequest(template_id=template_id, page_size=page_size, page_token=page_token)
        return self._unary("ListTemplateVersions", self.template_stub.ListTemplateVersions, request, timeout)

    def activate_template_version(self, template_id: str, version: int, *,
                                  timeout: float | None = None) -> tpb.ActivateTemplateVersionResponse:
        request = tpb.ActivateTemplateVersionRequest(template_id=template_id, version=version)
        return self._unary("ActivateTemplateVersion", self.template_stub.ActivateTemplateVersion, request, timeout)

    def render_template(self, template_id: str, *, variables: Mapping[str, Any] | None = None, version: int = 0,
                        variant: str = "", timeout: float | None = None) -> tpb.RenderTemplateResponse:
        """The rendered subject, html and text; nothing is sent."""
        request = render_request(template_id, variables, version, variant)
        return self._unary("RenderTemplate", self.template_stub.RenderTemplate, request, timeout)


class AsyncTemplateMethods:
    """The calls of `TemplateMethods` on `AsyncClient`, with the same retries."""

    channel: Any

    if TYPE_CHECKING:
        async def _unary(self, name: str, rpc: Callable[..., Awaitable[T]], request: Any, timeout: float | None, *,
                         retry_deadline_exceeded: bool = False, retry: bool = True) -> T: ...

    @functools.cached_property
    def template_stub(self) -> template_service_pb2_grpc.TemplateServiceStub:
        return template_service_pb2_grpc.TemplateServiceStub(self.channel)

    async def create_template(self, name: str, *, subject: str = "", html: str = "", text: str = "",
                              variants: Sequence[template_pb2.TemplateVariant] = (),
                              timeout: float | None = None) -> tpb.CreateTemplateResponse:
        request = tpb.CreateTemplateRequest(name=name, **_content(subject, html, text, variants))
        return await self._unary("CreateTemplate", self.template_stub.CreateTemplate, request, timeout, retry=False)

    async def get_template(self, template_id: str, *, version: int = 0,
                           timeout: float | None = None) -> tpb.GetTemplateResponse:
        request = tpb.GetTemplateRequest(template_id=template_id, version=version)
        return await self._unary("GetTemplate", self.template_stub.GetTemplate, request, timeout)

    async def list_templates(self, *, page_size: int = 0, page_token: str = "",
                             timeout: float | None = None) -> tpb.ListTemplatesResponse:
        request = tpb.ListTemplatesRequest(page_size=page_size, page_token=page_token)
        return await self._unary("ListTemplates", self.template_stub.ListTemplates, request, timeout)

    async def iter_templates(self, *, timeout: float | None = None) -> AsyncIterator[template_pb2.Template]:
        async for template in every_async(lambda token: self.list_templates(page_token=token, timeout=timeout),
                                          "templates"):
            yield template

    async def update_template(self, template_id: str, *, name: str = "", subject: str = "", html: str = "",
                              text: str = "", variants: Sequence[template_pb2.TemplateVariant] = (),
                              draft: bool = False, timeout: float | None = None) -> tpb.UpdateTemplateResponse:
        request = tpb.UpdateTemplateRequest(template_id=template_id, name=name, draft=draft,
                                            **_content(subject, html, text, variants))
        return await self._unary("UpdateTemplate", self.template_stub.UpdateTemplate, request, timeout, retry=False)

    async def delete_template(self, template_id: str, *, timeout: float | None = None) -> tpb.DeleteTemplateResponse:
        request = tpb.DeleteTemplateRequest(template_id=template_id)
        return await self._unary("DeleteTemplate", self.template_stub.DeleteTemplate, request, timeout, retry=False)

    async def list_template_versions(self, template_id: str, *, page_size: int = 0, page_token: str = "",
                                     timeout: float | None = None) -> tpb.ListTemplateVersionsResponse:
        request = tpb.ListTemplateVersionsRequest(template_id=template_id, page_size=page_size, page_token=page_token)
        return await self._unary("ListTemplateVersions", self.template_stub.ListTemplateVersions, request, timeout)

    async def activate_template_version(self, template_id: str, version: int, *,
                                        timeout: float | None = None) -> tpb.ActivateTemplateVersionResponse:
        request = tpb.ActivateTemplateVersionRequest(template_id=template_id, version=version)
        return await self._unary("ActivateTemplateVersion", self.template_stub.ActivateTemplateVersion, request,
                                 timeout)

    async def render_template(self, template_id: str, *, variables: Mapping[str, Any] | None = None, version: int = 0,
                              variant: str = "", timeout: float | None = None) -> tpb.RenderTemplateResponse:
        request = render_request(template_id, variables, version, variant)
        return await self._unary("RenderTemplate", self.template_stub.RenderTemplate, request, timeout)
