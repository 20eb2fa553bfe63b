"""Send by template: the accept path's step that turns a request naming a template
into the email it asks for. The template's rendered parts become the email's subject
and bodies, so the stored email is what was sent, and a later edit of the template
changes no stored email. The request's other fields are validated as for any Send,
after rendering (Send's limits apply to the rendered parts)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.emails.content import EmailContent
from core.emails.service import SendOptions
from core.emails.validation import SendLimits, validate_send
from core.errors import FieldViolation, InvalidArgument, PostwireError
from core.templates import variants
from core.templates.limits import CALL_RENDER_SECONDS
from core.templates.manager import TemplateManager
from core.templates.model import TemplateUse
from core.templates.render import check_variables, render


@dataclass(frozen=True)
class TemplatedSend:
    """A Send naming a template, not yet rendered: `fields` are validate_send's keyword
    arguments (subject, text_body and html_body as given: they must be empty)."""

    fields: dict[str, Any]
    template_id: str
    version: int  # 0: the active version
    variables: dict[str, Any]
    options: SendOptions


def _digest(variables: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(variables, sort_keys=True, default=str).encode()).hexdigest()


async def resolve(manager: TemplateManager | None, account_id: int, item: TemplatedSend,
                  limits: SendLimits) -> tuple[EmailContent, SendOptions]:
    """The email and options of a templated Send; InvalidArgument naming what is wrong."""
    given = [FieldViolation(name, "leave empty when template_id is set: the template gives it")
             for name in ("subject", "text_body", "html_body") if item.fields.get(name)]
    if given:
        raise InvalidArgument(given)
    if manager is None:
        raise InvalidArgument([FieldViolation("template_id", "templates are not available on this server")])
    compiled = await manager.for_send(account_id, item.template_id, item.version)
    check_variables(item.variables)
    variant = variants.pick(compiled.choices())
    parts = render(compiled.compiled(variant), item.variables)
    content = validate_send(**{**item.fields, "subject": parts.subject, "text_body": parts.text,
                               "html_body": parts.html}, limits=limits)
    request = (item.template_id, item.version, _digest(item.variables)) if item.options.idempotency_key else ("", 0, "")
    use = TemplateUse(item.template_id, compiled.version, variant.name, request)
    return content, dataclasses.replace(item.options, template=use)


async def resolve_all(manager: TemplateManager | None, account_id: int, items: Sequence[Any],
                      limits: SendLimits) -> list[Any]:
    """The items of a SendBatch or SendStream group with each TemplatedSend rendered (or
    replaced by the error refusing it alone). Renders yield to the event loop between
    them, and once a call has spent CALL_RENDER_SECONDS rendering, its remaining
    templated emails are refused: a thousand slow templates cannot hold a server."""
    spent_until = time.monotonic() + CALL_RENDER_SECONDS
    result = list(items)
    for index, item in enumerate(items):
        if not isinstance(item, TemplatedSend):
            continue
        if time.monotonic() > spent_until:
            result[index] = InvalidArgument([FieldViolation("template_id", (
                f"this call's templates took more than {CALL_RENDER_SECONDS:g} s to render: send fewer emails per call"
            ))])
            continue
        try:
            result[index] = await resolve(manager, account_id, item, limits)
        except PostwireError as exc:
            result[index] = exc
        await asyncio.sleep(0)  # let other calls run between renders
    return result
