"""The content of an email as the domain sees it: validated, ready to render."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Address:
    """One mailbox: `email` is the addr-spec, `name` the optional display name."""

    email: str
    name: str = ""

    def __str__(self) -> str:  # for logs and simple display only; MIME uses core.emails.mime
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class Attachment:
    """A file sent with the email. A non-empty `content_id` makes it an inline part
    (e.g. an image) that the HTML body references as `cid:<content_id>`; the id is
    bare, without angle brackets."""

    filename: str
    content_type: str  # "type/subtype", no parameters
    content: bytes
    content_id: str = ""

    @property
    def inline(self) -> bool:
        return bool(self.content_id)


@dataclass(frozen=True)
class EmailContent:
    """A validated email. Bcc recipients are envelope-only, never rendered."""

    from_address: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: Address | None = None
    subject: str = ""
    text_body: str = ""
    html_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    # List-Unsubscribe (RFC 8058) for the one recipient: None until Send resolves it
    # with the account's default (core.returns.unsubscribe), then True or False.
    unsubscribe: bool | None = None
    # Open pixel / tracked links (core/tracking): None leaves it to the account's default,
    # which the delivery worker reads.
    track_opens: bool | None = None
    track_clicks: bool | None = None
    # A message submitted over SMTP (core.emails.submission), sent as is by
    # core.emails.raw_mime.render_raw instead of being rendered: its recipients are the
    # envelope's, in bcc, and the fields above other than from/subject/tags/metadata stay empty.
    raw: bytes = b""

    @property
    def recipients(self) -> tuple[Address, ...]:
        """Every envelope recipient: to, cc and bcc."""
        return self.to + self.cc + self.bcc


def _address_dict(address: Address) -> dict[str, str]:
    return {"email": address.email, "name": address.name}


def _address(data: dict[str, str]) -> Address:
    return Address(email=data["email"], name=data.get("name", ""))


def _attachment_dict(attachment: Attachment) -> dict[str, str]:
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "content": base64.b64encode(attachment.content).decode("ascii"),
        "content_id": attachment.content_id,
    }


def _attachment(data: dict[str, str]) -> Attachment:
    return Attachment(
        filename=data["filename"],
        content_type=data["content_type"],
        content=base64.b64decode(data["content"], validate=True),
        content_id=data.get("content_id", ""),
    )


def content_to_dict(content: EmailContent) -> dict[str, object]:
    """JSON-ready form, as stored with the email."""
    return {
        "from": _address_dict(content.from_address),
        "to": [_address_dict(a) for a in content.to],
        "cc": [_address_dict(a) for a in content.cc],
        "bcc": [_address_dict(a) for a in content.bcc],
        "reply_to": _address_dict(content.reply_to) if content.reply_to else None,
        "subject": content.subject,
        "text_body": content.text_body,
        "html_body": content.html_body,
        "headers": dict(content.headers),
        "tags": list(content.tags),
        "metadata": dict(content.metadata),
        "attachments": [_attachment_dict(a) for a in content.attachments],
        **({"unsubscribe": True} if content.unsubscribe else {}),  # absent when off: older rows match
        **{k: v for k, v in (("track_opens", content.track_opens), ("track_clicks", content.track_clicks)) if v is not None},
        **({"raw": base64.b64encode(content.raw).decode("ascii")} if content.raw else {}),
    }


def content_from_dict(data: dict[str, Any]) -> EmailContent:
    """Inverse of content_to_dict. Rows stored before attachments existed have no
    "attachments" key and load with none."""
    return EmailContent(
        from_address=_address(data["from"]),
        to=tuple(_address(a) for a in data["to"]),
        cc=tuple(_address(a) for a in data["cc"]),
        bcc=tuple(_address(a) for a in data["bcc"]),
        reply_to=_address(data["reply_to"]) if data.get("reply_to") else None,
        subject=data["subject"],
        text_body=data["text_body"],
        html_body=data["html_body"],
        headers=dict(data["headers"]),
        tags=tuple(data["tags"]),
        metadata=dict(data["metadata"]),
        attachments=tuple(_attachment(a) for a in data.get("attachments") or ()),
        unsubscribe=data.get("unsubscribe"),  # True, or None when off (not stored)
        raw=base64.b64decode(data["raw"], validate=True) if data.get("raw") else b"",
        track_opens=data.get("track_opens"),
        track_clicks=data.get("track_clicks"),
    )
