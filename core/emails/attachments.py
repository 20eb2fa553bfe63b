"""Attachments of a send request: names, MIME types, content ids and sizes checked,
every problem reported (core.emails.validation calls this)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from core.emails.addresses import has_control_chars
from core.emails.content import Attachment
from core.errors import FieldViolation


class AttachmentInput(Protocol):
    """What validate_send reads from each attachment: a postwire.v1.Attachment
    message, a core.emails.content.Attachment or anything with these attributes."""

    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_id(self) -> str: ...


# type/subtype of RFC 2045 token characters; parameters are not accepted.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
# RFC 5322 atext plus "." and "@": the inside of a msg-id (dot-atom "@" dot-atom)
# loosely, so ids like "logo" or "logo.png@example.com" pass; no "<>", spaces,
# quotes or control characters.
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+")
_MAX_FILENAME_LENGTH = 255
_MAX_CONTENT_ID_LENGTH = 255


def base64_size(n: int) -> int:
    """Bytes of base64 for n bytes of data (line breaks not counted)."""
    return -(-n // 3) * 4


def check_attachments(
    attachments: Sequence[AttachmentInput], has_html: bool, max_attachments: int, out: list[FieldViolation]
) -> tuple[Attachment, ...]:
    """Check each attachment and return them as Attachments. Entries whose content
    is not bytes are reported and left out (their size is unknown)."""
    if len(attachments) > max_attachments:
        out.append(FieldViolation(
            "attachments", f"{len(attachments)} attachments; the limit is {max_attachments}"
        ))
    result: list[Attachment] = []
    seen_ids: set[str] = set()
    for index, item in enumerate(attachments):
        path = f"attachments[{index}]"
        filename = item.filename
        content_type = item.content_type
        content = item.content
        content_id = getattr(item, "content_id", "") or ""

        if not filename.strip():
            out.append(FieldViolation(f"{path}.filename", "is required"))
        elif has_control_chars(filename):
            out.append(FieldViolation(f"{path}.filename", "must not contain control characters such as CR, LF or NUL"))
        elif "/" in filename or "\\" in filename:
            out.append(FieldViolation(f"{path}.filename", "must be a bare file name without '/' or '\\'"))
        elif filename in (".", ".."):
            out.append(FieldViolation(f"{path}.filename", "must not be '.' or '..'"))
        if len(filename) > _MAX_FILENAME_LENGTH:
            out.append(FieldViolation(
                f"{path}.filename", f"is {len(filename)} characters; the limit is {_MAX_FILENAME_LENGTH}"
            ))

        if not content_type:
            out.append(FieldViolation(f"{path}.content_type", "is required"))
        elif not _CONTENT_TYPE.fullmatch(content_type):
            out.append(FieldViolation(f"{path}.content_type", (
                "must be a MIME type like 'application/pdf' (type/subtype, no parameters)"
            )))
        elif content_type.split("/", 1)[0].lower() in ("multipart", "message"):
            out.append(FieldViolation(f"{path}.content_type", (
                "multipart/* and message/* cannot be attached; use application/octet-stream"
            )))

        if not isinstance(content, (bytes, bytearray, memoryview)):
            out.append(FieldViolation(f"{path}.content", "must be bytes"))
            continue
        data = bytes(content)
        if not data:
            out.append(FieldViolation(f"{path}.content", "must not be empty"))

        if content_id:
            id_path = f"{path}.content_id"
            if not _CONTENT_ID.fullmatch(content_id):
                out.append(FieldViolation(id_path, (
                    "must be a bare id like 'logo@example.com': printable ASCII without "
                    "'<', '>', spaces, quotes or control characters"
                )))
            elif len(content_id) > _MAX_CONTENT_ID_LENGTH:
                out.append(FieldViolation(id_path, (
                    f"is {len(content_id)} characters; the limit is {_MAX_CONTENT_ID_LENGTH}"
                )))
            elif content_id.casefold() in seen_ids:
                out.append(FieldViolation(id_path, "content_id given twice (compared case-insensitively)"))
            if not has_html:
                out.append(FieldViolation(id_path, "inline parts (content_id set) need an html_body"))
            seen_ids.add(content_id.casefold())
        result.append(Attachment(
            filename=filename, content_type=content_type, content=data, content_id=content_id
        ))
    return tuple(result)
