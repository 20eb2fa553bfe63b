"""Render validated EmailContent into RFC 5322 bytes, and list its envelope recipients.

Pure functions over the stdlib `email` package. Headers are written in this order:
From, To, Cc, Reply-To, Subject, Date, Message-ID, MIME-Version, then the caller's
custom headers, then Content-*. Bcc is envelope-only and never rendered.

Policy: `email.policy.SMTP` (CRLF, RFC 2047 encoded words for non-ASCII subjects,
display names and custom header values), cloned with `cte_type="7bit"` so non-ASCII
bodies go out as quoted-printable or base64 UTF-8 and survive relays without
8BITMIME. Domains are written in their IDNA (ASCII) form. If any address has a
non-ASCII local part there is no ASCII form, so the message is rendered with
`email.policy.SMTPUTF8` (raw UTF-8 headers) and must be sent with SMTPUTF8; check
`requires_smtputf8()` first.

Attachments (see core.emails.content.Attachment) change the body structure:

    no attachments       text/plain | text/html | multipart/alternative(text/plain, text/html)
    inline parts + HTML  the text/html part becomes
                         multipart/related(text/html, inline parts...)
    regular attachments  multipart/mixed(body, attachments...)

so text + HTML + inline + attachment is
multipart/mixed(multipart/alternative(text/plain, multipart/related(text/html, images...)),
attachments...). Every attachment and inline part is base64 with a
Content-Disposition (`attachment` or `inline`) and its filename (RFC 2231-encoded
when not ASCII); inline parts carry `Content-ID: <id>`. Inline parts in a message
without HTML (validation refuses those) are sent as ordinary attachments. Each
multipart gets its own deterministic boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import Group
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formataddr

from core.emails.addresses import ascii_email
from core.emails.content import Address, Attachment, EmailContent
from core.emails.mime_fast import render_fast

# refold_source="none": values set with set_raw (see _unstructured) go out as written.
_ASCII_POLICY: EmailPolicy = email_policy.SMTP.clone(cte_type="7bit", refold_source="none")
_UTF8_POLICY: EmailPolicy = email_policy.SMTPUTF8.clone(cte_type="7bit")


def requires_smtputf8(content: EmailContent) -> bool:
    """True if some address (including bcc) has no ASCII form, so delivery needs
    the SMTPUTF8 extension and render() uses UTF-8 headers; for a submitted (raw)
    message, also when its header section holds non-ASCII bytes (RFC 6532)."""
    if content.raw and not content.raw.split(b"\r\n\r\n", 1)[0].isascii():
        return True
    addresses = (content.from_address, *content.recipients)
    if content.reply_to is not None:
        addresses += (content.reply_to,)
    return any(ascii_email(a.email) is None for a in addresses)


def envelope_recipients(content: EmailContent) -> list[str]:
    """Addr-specs for RCPT TO: to, cc then bcc, first occurrence kept, compared
    case-insensitively. The ASCII (IDNA) form is used where one exists."""
    seen: set[str] = set()
    result: list[str] = []
    for address in content.recipients:
        key = address.email.casefold()
        if key not in seen:
            seen.add(key)
            result.append(ascii_email(address.email) or address.email)
    return result


def render(content: EmailContent, *, message_id: str, date: datetime) -> bytes:
    """Render `content` as a complete message with CRLF line endings.

    `message_id` is the bare id such as `msg_abc@example.com`; the angle brackets are
    added here. `date` must be timezone-aware.
    """
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    if not message_id or any(c in message_id for c in "<> \t\r\n") or "@" not in message_id:
        raise ValueError("message_id must be a bare id like 'msg_abc@example.com'")
    utf8 = requires_smtputf8(content)
    if not utf8:  # the common shapes, written directly (the same bytes)
        fast = render_fast(content, message_id=message_id, date=date, policy=_ASCII_POLICY, mailbox=_mailbox,
                           unstructured=_raw_value, boundary=lambda: _boundary(message_id, content, "alternative"))
        if fast is not None:
            return fast
    msg = EmailMessage(policy=_UTF8_POLICY if utf8 else _ASCII_POLICY)

    _addresses(msg, "From", [content.from_address], utf8)
    if content.to:
        _addresses(msg, "To", content.to, utf8)
    elif not content.cc:
        msg["To"] = Group("undisclosed-recipients")
    if content.cc:
        _addresses(msg, "Cc", content.cc, utf8)
    if content.reply_to is not None:
        _addresses(msg, "Reply-To", [content.reply_to], utf8)
    _unstructured(msg, "Subject", content.subject, utf8)
    msg["Date"] = date
    msg["Message-ID"] = f"<{message_id}>"
    msg["MIME-Version"] = "1.0"
    for name, value in content.headers.items():
        _unstructured(msg, name, value, utf8)

    has_html = bool(content.html_body)
    inline = [a for a in content.attachments if a.content_id and has_html]
    attached = [a for a in content.attachments if not (a.content_id and has_html)]
    if content.text_body and content.html_body:
        msg.set_content(content.text_body)
        msg.add_alternative(content.html_body, subtype="html")
        html_part = msg.get_payload(1)
    elif content.html_body:
        msg.set_content(content.html_body, subtype="html")
        html_part = msg
    else:
        msg.set_content(content.text_body)
        html_part = None
    if html_part is not None:
        for attachment in inline:  # turns the text/html part into multipart/related
            html_part.add_related(attachment.content, **_part_args(attachment, "inline"))
    for attachment in attached:  # turns the whole body into multipart/mixed
        msg.add_attachment(attachment.content, **_part_args(attachment, "attachment"))

    for part in msg.walk():
        if part is not msg:  # add_alternative and friends stamp MIME-Version on parts
            del part["MIME-Version"]
        if part.get_content_type() == "multipart/related":
            part.set_param("type", "text/html")  # required by RFC 2387
        if part.is_multipart():
            part.set_boundary(_boundary(message_id, content, part.get_content_subtype()))
    return msg.as_bytes()


def _unstructured(msg: EmailMessage, name: str, value: str, utf8: bool) -> None:
    """Set an unstructured header (Subject, a custom header). ASCII values are folded
    at spaces only (fold_at_spaces). Non-ASCII values are
    written as RFC 2047 encoded words by email.header.Header, which keeps spaces inside
    the words: the policy's own folder (Python 3.11) can fold at a space between two
    encoded words, and RFC 2047 readers drop whitespace there, so "a b" arrived as "ab"."""
    written = _raw_value(name, value) if value.isascii() or not utf8 else None
    if written is not None:
        msg.set_raw(name, written)
    else:
        msg[name] = value


def _raw_value(name: str, value: str) -> str | None:
    """An unstructured value as written without SMTPUTF8; None when the policy's folder
    writes it (an ASCII word too long for a line)."""
    if value.isascii():
        return fold_at_spaces(name, value)
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def fold_at_spaces(name: str, value: str, width: int = 78) -> str | None:
    """An ASCII value folded only before a space, lines kept within `width` where the
    spaces allow (a longer word stays whole); None when a word is too long for the
    998-character line limit even so. Unfolding gives the value back exactly. The stdlib folder would turn a long word, such as
    the URL in List-Unsubscribe, into RFC 2047 encoded words, which receivers do not
    decode in such headers."""
    words = value.split(" ")
    out, length = words[0], len(name) + 2 + len(words[0])
    for word in words[1:]:
        if word and length + 1 + len(word) > width and length > len(name) + 2:
            out += "\r\n " + word
            length = 1 + len(word)
        else:
            out += " " + word
            length += 1 + len(word)
    return out if all(len(line) <= 998 - len(name) - 2 for line in out.split("\r\n")) else None


def _part_args(attachment: Attachment, disposition: str) -> dict[str, object]:
    maintype, _, subtype = attachment.content_type.partition("/")
    args: dict[str, object] = {
        "maintype": maintype,
        "subtype": subtype,
        "cte": "base64",
        "disposition": disposition,
        "filename": attachment.filename,
    }
    if attachment.content_id:
        args["cid"] = f"<{attachment.content_id}>"
    return args


def _boundary(message_id: str, content: EmailContent, subtype: str) -> str:
    """Deterministic, so the same input renders the same bytes. "=_" cannot occur in
    quoted-printable or base64 output, and the digest covers the bodies and the
    attachments, so a 7bit body cannot contain its own boundary. Distinct per
    multipart subtype (a message has at most one of each); multipart/alternative
    without attachments keeps the boundary it had before attachments existed."""
    seed = "\0".join((message_id, content.text_body, content.html_body))
    for a in content.attachments:
        seed += "\0" + "\0".join((
            a.filename, a.content_type, a.content_id, hashlib.sha256(a.content).hexdigest()
        ))
    if subtype != "alternative":
        seed += "\0" + subtype
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass"))
    return f"=_pw_{digest.hexdigest()[:32]}"


def _addresses(msg: EmailMessage, name: str, addresses: Sequence[Address], utf8: bool) -> None:
    """Set an address header. Without SMTPUTF8, written by hand, one address a line:
    ASCII names quoted as needed, non-ASCII ones as encoded words with their spaces
    inside (the policy's folder can leave a space between two encoded words,
    which RFC 2047 readers drop: see _unstructured)."""
    if utf8:
        msg[name] = [_header_address(a, utf8) for a in addresses]
        return
    msg.set_raw(name, ",\r\n ".join(_mailbox(a) for a in addresses))


def _mailbox(address: Address) -> str:
    """`name <spec>`: an ASCII name quoted as needed, a non-ASCII one as encoded words."""
    spec = ascii_email(address.email) or address.email
    if address.name.isascii():
        return formataddr((address.name, spec))
    name = Header(address.name, "utf-8").encode(linesep="\r\n")
    return f"{name}\r\n <{spec}>"


def _header_address(address: Address, utf8: bool) -> HeaderAddress:
    spec = address.email if utf8 else (ascii_email(address.email) or address.email)
    # username/domain rather than addr_spec: the stdlib's addr_spec parser refuses
    # non-ASCII local parts even under SMTPUTF8; the address is already validated.
    local, _, domain = spec.rpartition("@")
    return HeaderAddress(display_name=address.name, username=local, domain=domain)
