"""Attachments for SendRequest, read from files."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from postwire.v1 import email_pb2


def attachment(
    path: str | Path, content_type: str | None = None, *, filename: str | None = None, content_id: str = ""
) -> email_pb2.Attachment:
    """An attachment read from a file; the content type is guessed from its name when not
    given. With `content_id`, an inline part the HTML references as `cid:<content_id>`."""
    path = Path(path)
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return email_pb2.Attachment(
        filename=filename or path.name, content_type=content_type or guessed, content=path.read_bytes(),
        content_id=content_id,
    )
