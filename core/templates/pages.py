"""Page tokens of ListTemplates and ListTemplateVersions (AIP-158), made by the
suppression list's helper (core.suppressions.pages): opaque, bound to the list they
page (a fingerprint of its name) and pointing just past the last entry of their page."""

from __future__ import annotations

from datetime import UTC, datetime

from core.errors import FieldViolation, InvalidArgument
from core.suppressions import pages
from core.suppressions.pages import Position

_TEMPLATES = pages.Filters(kind="templates")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _versions(template_id: str) -> pages.Filters:
    return pages.Filters(kind="template_versions", address_prefix=template_id)


def _decode(token: str, filters: pages.Filters, rpc: str) -> Position:
    try:
        return pages.decode(token, filters)
    except InvalidArgument:
        raise InvalidArgument([FieldViolation("page_token", f"not a page token returned by {rpc} for this list")]) from None


def templates_token(created_at: datetime, template_id: str) -> str:
    return pages.encode(_TEMPLATES, Position(created_at, template_id))


def templates_position(token: str) -> Position:
    return _decode(token, _TEMPLATES, "ListTemplates")


def versions_token(template_id: str, version: int) -> str:
    return pages.encode(_versions(template_id), Position(_EPOCH, str(version)))


def versions_before(template_id: str, token: str) -> int:
    """The version number the next page starts below."""
    position = _decode(token, _versions(template_id), "ListTemplateVersions")
    return int(position.address) if position.address.isdigit() else 0
