"""UnsubscribeService servicer: the one-click unsubscribe link's pages (HTML through
Envoy, as google.api.HttpBody). Public: the signed token is the authority."""

from __future__ import annotations

import html

import grpc
from google.api import httpbody_pb2

from core.returns.unsubscribe import ONE_CLICK, OneClick
from postwire.v1 import unsubscribe_service_pb2 as pb
from postwire.v1 import unsubscribe_service_pb2_grpc

HTML = "text/html; charset=utf-8"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto; padding: 0 1em">
<h1>{title}</h1>
{body}
</body></html>
"""


def page(title: str, body: str) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type=HTML, data=_PAGE.format(title=html.escape(title), body=body).encode())


def masked(address: str) -> str:
    """`a•••@example.org`: enough for its owner to recognise, little for anyone else."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


class UnsubscribeServicer(unsubscribe_service_pb2_grpc.UnsubscribeServiceServicer):
    def __init__(self, one_click: OneClick) -> None:
        self.one_click = one_click

    async def ShowUnsubscribe(
        self, request: pb.ShowUnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        _, address = await self.one_click.recipient(request.token)
        return page("Unsubscribe", (
            f"<p>Stop emails from this sender to <strong>{html.escape(masked(address))}</strong>?</p>\n"
            '<form method="post">'
            f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
            '<button type="submit">Unsubscribe</button></form>'
        ))

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        address, _ = await self.one_click.unsubscribe(request.token, request.body.content_type, request.body.data)
        return page("Unsubscribed", (
            f"<p><strong>{html.escape(masked(address))}</strong> will receive no more emails from this sender.</p>"
        ))
