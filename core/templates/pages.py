"""Page tokens of ListTemplates and ListTemplateVersions (AIP-158), made by
core.storage.page_tokens: opaque, bound to the account's list they page, pointing just
past the last entry of their page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.storage import page_tokens


@dataclass(frozen=True)
class Position:
    """The last template of a page: the next page starts after it."""

    created_at: datetime
    template_id: str


def templates_token(account_id: int, created_at: datetime, template_id: str) -> str:
    return page_tokens.encode("ListTemplates", str(account_id), created_at, template_id)


def templates_position(account_id: int, token: str) -> Position:
    created_at, template_id = page_tokens.decode(token, "ListTemplates", str(account_id), str)
    assert isinstance(template_id, str)
    return Position(created_at, template_id)


def versions_token(account_id: int, template_id: str, version: int) -> str:
    return page_tokens.encode("ListTemplateVersions", f"{account_id}:{template_id}", page_tokens.EPOCH, version)


def versions_before(account_id: int, template_id: str, token: str) -> int:
    """The version number the next page starts below."""
    _, version = page_tokens.decode(token, "ListTemplateVersions", f"{account_id}:{template_id}", int)
    assert isinstance(version, int)
    return version
