"""The common message shapes written directly as bytes, the same bytes that
core.emails.mime.render gets from the stdlib's EmailMessage, at a fraction of the cost
(building an EmailMessage, its header objects and the generator's folding is ~0.5 ms).

Covered: ASCII addresses (no SMTPUTF8), no attachments, text and/or HTML bodies, header
values that mime.render writes raw (folded at spaces, or RFC 2047 words for non-ASCII).
Anything else returns None and mime.render builds the message as before. The body
encodings come from the stdlib's own heuristic (email.contentmanager), so 7bit,
quoted-printable and base64 are chosen and written exactly as EmailMessage does.
tests/unit/test_mime_fast.py compares the two renderers byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from email import contentmanager
from email.policy import EmailPolicy
from email.utils import format_datetime

from core.emails.content import EmailContent

# A Message-ID the header parser leaves exactly as written (short, no specials).
_SIMPLE_ID = re.compile(r"[A-Za-z0-9_.+-]{1,50}@[A-Za-z0-9.-]{1,60}")
_MULTIPART = 'Content-Type: multipart/alternative;\r\n boundary="{}"\r\n'


def render_fast(
    content: EmailContent,
    *,
    message_id: str,
    date: datetime,
    policy: EmailPolicy,
    mailbox: Callable[..., str],
    unstructured: Callable[[str, str], str | None],
    boundary: Callable[[], str],
) -> bytes | None:
    """`content` rendered, or None when it is not a shape covered here. `mailbox` and
    `unstructured` are mime.render's own header writers (an address as `name <spec>`; a
    raw header value, None when the stdlib's folder would write it); `boundary` the
    multipart/alternative boundary."""
    if content.attachments or not _SIMPLE_ID.fullmatch(message_id) or len(message_id) > 60:
        return None
    head: list[str] = []

    def raw(name: str, value: str) -> None:
        head.append(f"{name}: " + "\r\n".join(value.splitlines()) + "\r\n")

    raw("From", mailbox(content.from_address))
    if content.to:
        raw("To", ",\r\n ".join(mailbox(a) for a in content.to))
    elif not content.cc:
        head.append("To: undisclosed-recipients:;\r\n")
    if content.cc:
        raw("Cc", ",\r\n ".join(mailbox(a) for a in content.cc))
    if content.reply_to is not None:
        raw("Reply-To", mailbox(content.reply_to))
    subject_at = len(head) + 1
    for name, value in (("Subject", content.subject), *content.headers.items()):
        written = unstructured(name, value)
        if written is None:
            return None
        raw(name, written)
        if len(head) == subject_at:  # Date, Message-ID and MIME-Version follow the Subject
            head.append(f"Date: {format_datetime(date)}\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n")
    if content.text_body and content.html_body:
        mark = boundary()
        head.append(_MULTIPART.format(mark))
        text = _part(content.text_body, "plain", policy)
        html = _part(content.html_body, "html", policy)
        body = f"--{mark}\r\n{text}\r\n--{mark}\r\n{html}\r\n--{mark}--\r\n"
        return ("".join(head) + "\r\n" + body).encode("ascii")
    if content.html_body:
        return ("".join(head) + _part(content.html_body, "html", policy)).encode("ascii")
    return ("".join(head) + _part(content.text_body, "plain", policy)).encode("ascii")


def _part(text: str, subtype: str, policy: EmailPolicy) -> str:
    """A text part's Content-* headers, the blank line and the encoded body, as
    EmailMessage.set_content writes them."""
    cte, payload = contentmanager._encode_text(text, "utf-8", None, policy)  # type: ignore[attr-defined]
    if "\r" in payload:
        payload = payload.replace("\r\n", "\n").replace("\r", "\n")
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
            + payload.replace("\n", "\r\n"))
