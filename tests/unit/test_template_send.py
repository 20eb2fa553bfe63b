"""The accept path's template step (core.templates.send) with a fake template lookup:
parts given next to a template refused, rendered parts validated as Send's, and the
per-call render budget that keeps a batch of slow templates from holding the server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from core.emails.service import SendOptions
from core.emails.validation import SendLimits
from core.errors import InvalidArgument
from core.templates.model import Content, Parts
from core.templates.render import CompiledVersion, compile_content
from core.templates.send import TemplatedSend, resolve, resolve_all

SLOW = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"


class Lookup:
    def __init__(self, parts: Parts) -> None:
        self.compiled = compile_content("tpl_x", 4, Content(parts))

    async def for_send(self, account_id: int, template_id: str, version: int) -> CompiledVersion:
        return self.compiled


def item(**fields: Any) -> TemplatedSend:
    base = dict(from_address="a@example.com", to=["b@example.com"], cc=[], bcc=[], reply_to="", subject="",
                text_body="", html_body="", headers={}, tags=[], metadata={}, attachments=[], unsubscribe=None)
    return TemplatedSend({**base, **fields}, "tpl_x", 0, {"name": "Ada"}, SendOptions())


def test_the_rendered_parts_become_the_email_and_the_use_is_recorded() -> None:
    lookup = Lookup(Parts("Hi {{ name }}", "<p>{{ name }}</p>", "Hello {{ name }}"))
    content, options = asyncio.run(resolve(lookup, 1, item(), SendLimits()))  # type: ignore[arg-type]
    assert (content.subject, content.html_body, content.text_body) == ("Hi Ada", "<p>Ada</p>", "Hello Ada")
    assert options.template is not None and (options.template.template_id, options.template.version,
                                             options.template.variant) == ("tpl_x", 4, "")


def test_subject_or_bodies_next_to_a_template_are_refused() -> None:
    lookup = Lookup(Parts("s", "", "t"))
    with pytest.raises(InvalidArgument) as caught:
        asyncio.run(resolve(lookup, 1, item(subject="mine", html_body="<p>x</p>"), SendLimits()))  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == ["subject", "html_body"]


def test_a_rendered_subject_is_checked_like_any_subject() -> None:
    lookup = Lookup(Parts("{{ name * 100 }}", "", "t"))
    with pytest.raises(InvalidArgument) as caught:
        asyncio.run(resolve(lookup, 1, item(), SendLimits(max_subject_length=50)))  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == ["subject"]


def test_a_call_stops_rendering_once_its_budget_is_spent() -> None:
    lookup = Lookup(Parts("s", "", SLOW))  # each render stops at its 250 ms deadline
    started = time.monotonic()
    results = asyncio.run(resolve_all(lookup, 1, [item() for _ in range(30)], SendLimits()))  # type: ignore[arg-type]
    assert time.monotonic() - started < 4  # not 30 x 250 ms
    assert all(isinstance(r, InvalidArgument) for r in results)
    assert "stopped after" in str(results[0]) and "send fewer emails per call" in str(results[-1])
