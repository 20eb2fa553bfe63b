"""The SendRequest that the `postwire send` flags describe: bodies from files or stdin,
NAME=VALUE pairs, attachments by path, times with offsets."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postwire.v1 import email_pb2

if TYPE_CHECKING:
    from postwire.v1 import email_service_pb2 as pb


def _read_body(value: str | None, file: str | None, flag: str) -> str:
    """A body from --text/--html (TEXT or @PATH) or --text-file/--html-file (PATH or -)."""
    if value and file:
        raise SystemExit(f"error: give --{flag} or --{flag}-file, not both")
    if file:
        return sys.stdin.read() if file == "-" else Path(file).read_text()
    if value and value.startswith("@"):
        return Path(value[1:]).read_text()
    return value or ""


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"error: {flag} takes NAME=VALUE, got {value!r}")
        out[name] = val
    return out


def _attachment(spec: str, inline: bool) -> email_pb2.Attachment:
    """--attach PATH[:CONTENT_TYPE], --inline PATH:CONTENT_ID[:CONTENT_TYPE]; the type is
    guessed from the file name when not given. A PATH that exists is taken whole."""
    from postwire_client.sdk import attachment

    if not inline and Path(spec).is_file():
        return attachment(spec)
    parts = spec.split(":")
    path, rest = parts[0], parts[1:]
    content_id = rest.pop(0) if inline and rest else ""
    if inline and not content_id:
        raise SystemExit(f"error: --inline takes PATH:CONTENT_ID[:TYPE], got {spec!r}")
    if not Path(path).is_file():
        raise SystemExit(f"error: no such file: {path}")
    return attachment(path, rest[0] if rest else None, content_id=content_id)


def _timestamp(value: str) -> datetime:
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise SystemExit(f"error: {value!r} needs a UTC offset, e.g. 2026-12-01T09:00:00+00:00")
    return stamp


def base_request(args: argparse.Namespace) -> pb.SendRequest:
    """The SendRequest the flags describe (each --batch line is merged over it)."""
    from postwire_client.sdk import build_send_request
    from postwire_client.template_commands import template_fields

    stdin_readers = [f for f in (args.text_file, args.html_file, args.batch) if f == "-"]
    if len(stdin_readers) > 1:
        raise SystemExit("error: only one of --text-file, --html-file and --batch can read stdin (-)")
    fields: dict[str, Any] = dict(
        from_address=args.from_address or "", to=args.to, cc=args.cc, bcc=args.bcc, reply_to=args.reply_to or "",
        subject=args.subject or "", text_body=_read_body(args.text, args.text_file, "text"),
        html_body=_read_body(args.html, args.html_file, "html"), headers=_pairs(args.header, "--header"),
        tags=args.tag, metadata=_pairs(args.meta, "--meta"),
        attachments=[_attachment(a, False) for a in args.attach] + [_attachment(a, True) for a in args.inline],
        send_at=_timestamp(args.send_at) if args.send_at else None,
        expires_at=_timestamp(args.expires_at) if args.expires_at else None,
        unsubscribe=getattr(args, "unsubscribe", None),
        track_opens=getattr(args, "track_opens", None), track_clicks=getattr(args, "track_clicks", None),
    )
    fields.update(template_fields(args))
    return build_send_request(None, fields, auto_idempotency_key=False)  # type: ignore[arg-type]
